"""A PostgreSQL fold writes its series part by part in its one transaction: it holds one part's
chunk rows at a time, and what it writes is what a fold in one piece would."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from sensorbase.model import PointColumns, ResolvedBatch, TimeRange
from sensorbase.storage.postgres import fold
from sensorbase.storage.postgres.store import PostgresStore

ALL = TimeRange(None, None)


def append(store: PostgresStore, rows: list[tuple[int, int, float]]) -> None:
    writer = store.writer()
    tx = writer.begin()
    s, t, v = zip(*rows, strict=True)
    tx.append(ResolvedBatch(np.array(s, np.int64), np.array(t, np.int64), np.array(v), None))
    writer.commit()


def test_a_fold_writes_its_series_part_by_part(
    postgres_store: PostgresStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = postgres_store
    writer = store.writer()
    tx = writer.begin()
    org = tx.create_org("o", "o")
    bucket = tx.create_bucket(org.id, "b", "b", "", {})
    source = tx.create_source(org.id, bucket.id, "dev", "dev", {}, None)
    made = tx.get_or_create_series_of([(source.id, f"f{i}", None, {}) for i in range(10)])
    ids = sorted(made.values())
    writer.commit()
    append(store, [(s, t, float(s * 100 + t)) for s in ids for t in range(5)])
    assert store.fold_points() == 50
    append(store, [(s, t, float(-s - t)) for s in ids for t in range(3, 8)])  # 3, 4 replaced

    parts: list[list[int]] = []
    fold_part = fold._fold_part

    def spying(conn: Any, new: PointColumns, spans: list[tuple[int, int, int]]) -> None:
        parts.append([s for s, _, _ in spans])
        fold_part(conn, new, spans)

    monkeypatch.setattr(fold, "FOLD_PART_SERIES", 3)
    monkeypatch.setattr(fold, "_fold_part", spying)
    assert store.fold_points() == 50
    assert parts == [ids[0:3], ids[3:6], ids[6:9], ids[9:]]
    reader = store.reader()
    for s in ids:
        want = [float(s * 100 + t) for t in range(3)] + [float(-s - t) for t in range(3, 8)]
        assert reader.read_range(s, ALL, 100).value.tolist() == want, s
        assert reader.count(s, ALL) == 8
    rows = reader.read_latest(ids, 1)
    assert [r.value.tolist() for r in rows] == [[float(-s - 7)] for s in ids]
