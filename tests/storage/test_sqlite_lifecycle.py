"""SQLite's expiry against a fold planned before it (storage/sqlite/lifecycle.py, fold.py): the
fold must not write back chunks that expiry removed or cut, and a range delete must cover the
write log."""

from __future__ import annotations

import sqlite3

import numpy as np

from sensorbase.model import ResolvedBatch, TimeRange
from sensorbase.storage.chunks import CHUNK_POINTS
from sensorbase.storage.sqlite import fold
from sensorbase.storage.sqlite.store import SQLiteStore
from tests.storage.conftest import new_series

T0 = 1_800_000_000_000_000


def append(store: SQLiteStore, sid: int, times: list[int]) -> None:
    writer = store.writer()
    tx = writer.begin()
    n = len(times)
    tx.append(
        ResolvedBatch(
            np.full(n, sid), np.array(times, np.int64), np.arange(n, dtype=np.float64), None
        )
    )
    writer.commit()


def test_a_fold_planned_before_an_expiry_is_planned_again(sqlite_store: SQLiteStore) -> None:
    sid, _ = new_series(sqlite_store)
    n = CHUNK_POINTS + 952
    append(sqlite_store, sid, [T0 + i for i in range(n)])  # two chunks once folded
    sqlite_store.fold_points()
    append(sqlite_store, sid, [T0 + 10, T0 + CHUNK_POINTS + 452])  # into the log: both touched
    planner = sqlite3.connect(sqlite_store.path, isolation_level=None)
    plan = fold.plan_fold(planner)
    assert plan is not None and len(plan.drop) == 2
    writer = sqlite_store.writer()
    tx = writer.begin()
    assert tx.expire_points([sid], T0 + 100, True, 64) == (1, 100)  # the first chunk, cut
    writer.commit()
    conn = sqlite3.connect(sqlite_store.path, isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
    assert not fold.apply_fold(conn, plan)  # it would bring the expired points back
    conn.execute("ROLLBACK")
    sqlite_store.fold_points()
    reader = sqlite_store.reader()
    # The log's late point at T0 + 10 is older than the cutoff: it comes back with the fold
    # and is hidden by readers until the next pass expires it; nothing else before the cutoff.
    assert reader.count(sid, TimeRange(None, T0 + 100)) == 1
    assert reader.count(sid, TimeRange(T0 + 100, None)) == n - 100
    summaries = reader.read_summaries(sid, TimeRange(None, None))
    assert [(s.start_us, s.end_us, s.count) for s in summaries] == [(T0, T0 + 99, 100)]


def test_a_delete_covers_the_write_log_and_a_later_fold_keeps_it(sqlite_store: SQLiteStore) -> None:
    sid, _ = new_series(sqlite_store)
    append(sqlite_store, sid, [T0 + i for i in range(100)])
    sqlite_store.fold_points()
    append(sqlite_store, sid, [T0 + i for i in range(100, 200)])  # still in the log
    writer = sqlite_store.writer()
    tx = writer.begin()
    tx.append(ResolvedBatch(np.array([sid]), np.array([T0 + 150]), np.array([9.0]), None))
    tx.delete_points([sid], TimeRange(T0 + 50, T0 + 160))  # also the point held in this group
    tx.append(ResolvedBatch(np.array([sid]), np.array([T0 + 155]), np.array([7.0]), None))
    writer.commit()
    for _ in range(2):
        points = sqlite_store.reader().read_range(sid, TimeRange(None, None), 1000)
        kept = [T0 + i for i in [*range(50), 155, *range(160, 200)]]
        assert points.time_us.tolist() == kept
        assert points.value[points.time_us == T0 + 155].tolist() == [7.0]
        sqlite_store.fold_points()
