"""What the SQLite-only storage tests share: a store in a temporary directory, and a series."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from sensorbase.settings import Settings
from sensorbase.storage.sqlite.store import SQLiteStore


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[SQLiteStore]:
    store = SQLiteStore(tmp_path / "sb.db", Settings(data_dir=tmp_path))
    store.open()
    yield store
    store.close()


def new_series(store: SQLiteStore) -> tuple[int, int]:
    """A series of its own organisation, bucket and source: (series id, source id)."""
    writer = store.writer()
    tx = writer.begin()
    org = tx.create_org("o", "o")
    bucket = tx.create_bucket(org.id, "b", "b", "", {})
    source = tx.create_source(org.id, bucket.id, "dev", "dev", {}, None)
    sid = tx.get_or_create_series(source.id, ["t"])["t"]
    writer.commit()
    return sid, source.id
