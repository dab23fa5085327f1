"""What the backend-specific storage tests share: a SQLite store in a temporary directory, a
PostgreSQL store on a database of its own, and a series."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest

from sensorbase.settings import Settings
from sensorbase.storage import open_store
from sensorbase.storage.base import Store
from sensorbase.storage.postgres.store import PostgresStore
from sensorbase.storage.sqlite.store import SQLiteStore
from tests.pg import temporary_database


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[SQLiteStore]:
    store = SQLiteStore(tmp_path / "sb.db", Settings(data_dir=tmp_path))
    store.open()
    yield store
    store.close()


Folding = SQLiteStore | PostgresStore  # the stores with fold_points()
_KEYS = itertools.count()


@pytest.fixture
def store(settings: Settings) -> Iterator[Folding]:
    """One store of the backend (SQLite, PostgreSQL) for the test, or for every example of a
    property (a module with a `store` of its own uses that)."""
    found = open_store(settings)
    assert isinstance(found, SQLiteStore | PostgresStore)
    found.open()
    yield found
    found.close()


def another_series(store: Folding) -> int:
    """A series of a source and an organisation of its own (one store may serve many)."""
    key = f"s{next(_KEYS)}"
    writer = store.writer()
    tx = writer.begin()
    org = tx.create_org(key, key)
    bucket = tx.create_bucket(org.id, "b", "b", "", {})
    source = tx.create_source(org.id, bucket.id, "dev", "dev", {}, None)
    sid = tx.get_or_create_series(source.id, ["t"])["t"]
    writer.commit()
    return sid


@pytest.fixture
def postgres_store() -> Iterator[PostgresStore]:
    with temporary_database() as url:
        store = PostgresStore(url, Settings(data_dir=Path("/nonexistent"), database_url=url))
        store.open()
        yield store
        store.close()


def new_series(store: Store) -> tuple[int, int]:
    """A series of its own organisation, bucket and source: (series id, source id)."""
    writer = store.writer()
    tx = writer.begin()
    org = tx.create_org("o", "o")
    bucket = tx.create_bucket(org.id, "b", "b", "", {})
    source = tx.create_source(org.id, bucket.id, "dev", "dev", {}, None)
    sid = tx.get_or_create_series(source.id, ["t"])["t"]
    writer.commit()
    return sid, source.id
