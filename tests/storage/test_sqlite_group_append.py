"""SQLite holds a group commit's appends and inserts them, sorted, at COMMIT: the outcome must
be exactly that of inserting each job's points in order, savepoints and deletes included."""

from __future__ import annotations

import numpy as np
import pytest

from sensorbase.model import ResolvedBatch, TimeRange
from sensorbase.storage.sqlite.store import SQLiteStore
from sensorbase.storage.sqlite.tx import SQLiteWriteTx
from sensorbase.storage.sqlite.writer import SQLiteWriter

ALL = TimeRange(None, None)


@pytest.fixture
def store(sqlite_store: SQLiteStore) -> SQLiteStore:
    return sqlite_store


def _setup(store: SQLiteStore) -> tuple[SQLiteWriter, dict[str, int], int]:
    writer = store.writer()
    tx = writer.begin()
    org = tx.create_org("o", "o")
    bucket = tx.create_bucket(org.id, "b", "b", "", {})
    source = tx.create_source(org.id, bucket.id, "dev", "dev", {}, None)
    other = tx.create_source(org.id, bucket.id, "other", "other", {}, None)
    ids = tx.get_or_create_series(source.id, ["t", "h"])
    ids["o"] = tx.get_or_create_series(other.id, ["t"])["t"]
    writer.commit()
    return writer, ids, source.id


def _batch(sid: int, times: list[int], values: list[float], extra: bool = False) -> ResolvedBatch:
    return ResolvedBatch(
        np.full(len(times), sid, np.int64),
        np.array(times, np.int64),
        np.array(values, np.float64),
        [f'{{"n":{v}}}' for v in values] if extra else None,
    )


def _points(store: SQLiteStore, sid: int) -> list[tuple[int, float, str | None]]:
    cols = store.reader().read_range(sid, ALL, 1000)
    extra = cols.extra or [None] * len(cols.time_us)
    return list(zip(cols.time_us.tolist(), cols.value.tolist(), extra, strict=True))


def test_later_job_of_a_commit_wins_and_extras_follow(store: SQLiteStore) -> None:
    writer, ids, _ = _setup(store)
    tx: SQLiteWriteTx = writer.begin()
    with tx.savepoint():
        tx.append(_batch(ids["t"], [3, 1, 2], [30.0, 10.0, 20.0]))
    with tx.savepoint():
        tx.append(_batch(ids["t"], [2, 2], [21.0, 22.0], extra=True))
        tx.append(_batch(ids["h"], [1], [5.0]))
    writer.commit()
    assert _points(store, ids["t"]) == [(1, 10.0, None), (2, 22.0, '{"n":22.0}'), (3, 30.0, None)]
    assert _points(store, ids["h"]) == [(1, 5.0, None)]


def test_a_failed_job_leaves_no_points(store: SQLiteStore) -> None:
    writer, ids, _ = _setup(store)
    tx = writer.begin()
    with tx.savepoint():
        tx.append(_batch(ids["t"], [1], [1.0]))
    with pytest.raises(RuntimeError), tx.savepoint():
        tx.append(_batch(ids["t"], [1, 2], [9.0, 9.0]))
        raise RuntimeError("job failed after appending")
    writer.commit()
    assert _points(store, ids["t"]) == [(1, 1.0, None)]


def test_delete_in_the_same_commit_drops_held_points(store: SQLiteStore) -> None:
    writer, ids, source_id = _setup(store)
    tx = writer.begin()
    with tx.savepoint():
        tx.append(_batch(ids["t"], [1], [1.0]))
        tx.append(_batch(ids["o"], [1], [7.0]))
    with tx.savepoint():
        tx.delete_source(source_id)
    writer.commit()
    assert _points(store, ids["t"]) == []
    assert _points(store, ids["o"]) == [(1, 7.0, None)]


def test_a_failed_delete_gives_the_held_points_back(store: SQLiteStore) -> None:
    writer, ids, source_id = _setup(store)
    tx = writer.begin()
    with tx.savepoint():
        tx.append(_batch(ids["t"], [1, 2], [1.0, 2.0]))
    with pytest.raises(RuntimeError), tx.savepoint():
        tx.delete_source(source_id)
        raise RuntimeError("job failed after deleting")
    writer.commit()
    assert _points(store, ids["t"]) == [(1, 1.0, None), (2, 2.0, None)]


def test_rollback_discards_held_points(store: SQLiteStore) -> None:
    writer, ids, _ = _setup(store)
    tx = writer.begin()
    tx.append(_batch(ids["t"], [1], [1.0]))
    writer.rollback()
    tx = writer.begin()
    tx.append(_batch(ids["t"], [2], [2.0]))
    writer.commit()
    assert _points(store, ids["t"]) == [(2, 2.0, None)]
