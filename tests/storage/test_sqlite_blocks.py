"""Hourly summaries (storage/sqlite_blocks.py): made for old hours once a query needs them,
used by later queries, deleted by any write to their hour or delete of their series, and never
changing an answer: every aggregate equals the plain scan of the points."""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import pytest

from sensorbase.model import ResolvedBatch, TimeRange
from sensorbase.settings import Settings
from sensorbase.storage.sqlite import SQLiteStore
from sensorbase.storage.sqlite_blocks import BLOCK_US, SEAL_US
from sensorbase.times import now_us
from tests.storage.conftest import new_series

SIMPLE = ("min", "max", "avg", "sum", "count")
HOUR0 = (now_us() - 40 * BLOCK_US) // BLOCK_US  # 40 hours ago: sealed
MINUTE = 60_000_000


@pytest.fixture
def store(sqlite_store: SQLiteStore) -> SQLiteStore:
    return sqlite_store


def _write(store: SQLiteStore, sid: int, times: np.ndarray, values: np.ndarray) -> None:
    writer = store.writer()
    tx = writer.begin()
    tx.append(ResolvedBatch(np.full(len(times), sid, np.int64), times, values, None))
    writer.commit()


def _scanned(store: SQLiteStore, sid: int, time_range: TimeRange) -> list[float | int | None]:
    """The aggregates by one plain scan of the points."""
    where, params = "", []
    if time_range.start_us is not None:
        where, params = where + " AND time_us >= ?", [*params, time_range.start_us]
    if time_range.end_us is not None:
        where, params = where + " AND time_us < ?", [*params, time_range.end_us]
    row = (
        store.reader()
        .conn.execute(
            "SELECT min(value), max(value), avg(value), sum(value), count(*) FROM points "
            f"WHERE series_id = ?{where}",
            [sid, *params],
        )
        .fetchone()
    )
    return list(row)


def _same(got: dict[str, float | int | None], want: list[float | int | None]) -> bool:
    for name, expected in zip(SIMPLE, want, strict=True):
        value = got[name]
        if expected is None or value is None:
            if expected is not value:
                return False
        elif not math.isclose(float(value), float(expected), rel_tol=1e-9, abs_tol=1e-9):
            return False
    return True


def _summaries(store: SQLiteStore, sid: int) -> list[tuple[int, int]]:
    rows = store.reader().conn.execute(
        "SELECT block, count FROM point_blocks WHERE series_id = ? ORDER BY block", (sid,)
    )
    return [tuple(r) for r in rows]


def _settled(store: SQLiteStore) -> None:
    summarizer = store._summarizer
    assert summarizer is not None
    deadline = time.monotonic() + 10
    while not summarizer.idle():
        assert time.monotonic() < deadline, "the summarizer did not finish"
        time.sleep(0.01)


def test_summaries_are_made_used_and_dropped_by_writes(store: SQLiteStore) -> None:
    sid, source_id = new_series(store)
    # 30 old hours of a point a minute, then the last three hours (not sealed).
    old = HOUR0 * BLOCK_US + np.arange(30 * 60, dtype=np.int64) * MINUTE
    recent = (now_us() // MINUTE - 180) * MINUTE + np.arange(180, dtype=np.int64) * MINUTE
    times = np.concatenate([old, recent])
    values = np.round(np.random.default_rng(3).normal(20, 5, len(times)), 2)
    _write(store, sid, times, values)
    everything = TimeRange(None, None)
    reader = store.reader()

    first = reader.aggregate(sid, everything, SIMPLE).values
    assert _same(first, _scanned(store, sid, everything))
    _settled(store)
    made = _summaries(store, sid)
    sealed_end = (now_us() - SEAL_US) // BLOCK_US
    hours = sorted({int(t) // BLOCK_US for t in times.tolist()})
    assert [b for b, _ in made] == [h for h in hours if h < sealed_end]
    assert [count for b, count in made if b < HOUR0 + 30] == [60] * 30

    # Later queries read the summaries: a (test-only) doctored one shows in the answer.
    conn = reader.conn
    conn.execute("PRAGMA query_only = OFF")
    conn.execute(
        "UPDATE point_blocks SET max = 1000 WHERE series_id = ? AND block = ?", (sid, HOUR0 + 5)
    )
    assert reader.aggregate(sid, everything, ("max",)).values["max"] == 1000
    conn.execute("PRAGMA query_only = ON")

    # A write into that hour deletes its summary in its own transaction.
    _write(store, sid, np.array([(HOUR0 + 5) * BLOCK_US + MINUTE], np.int64), np.array([-7.0]))
    assert HOUR0 + 5 not in [b for b, _ in _summaries(store, sid)]
    second = reader.aggregate(sid, everything, SIMPLE).values
    assert second["min"] == -7.0
    assert _same(second, _scanned(store, sid, everything))

    # A write of recent data leaves the old summaries alone.
    _settled(store)  # (the query above asked for that hour's summary again)
    before = _summaries(store, sid)
    assert HOUR0 + 5 in [b for b, _ in before]
    _write(store, sid, np.array([now_us() // MINUTE * MINUTE], np.int64), np.array([1.0]))
    assert _summaries(store, sid) == before

    # Deleting the source deletes its summaries (a later series may reuse the id).
    writer = store.writer()
    writer.begin().delete_source(source_id)
    writer.commit()
    assert _summaries(store, sid) == []


def test_every_range_equals_the_plain_scan(store: SQLiteStore) -> None:
    """Random ranges over summarized hours with gaps (hours without points, a lone point,
    partial hours at both ends) answer exactly as one scan of the points does."""
    sid, _ = new_series(store)
    rng = np.random.default_rng(11)
    hours = [h for h in range(HOUR0, HOUR0 + 36) if h % 7 != 3]  # some empty hours
    times = np.unique(
        np.concatenate(
            [h * BLOCK_US + rng.integers(0, BLOCK_US, rng.integers(1, 40)) for h in hours]
        )
    ).astype(np.int64)
    values = np.round(rng.normal(0, 10, len(times)), 3)
    _write(store, sid, times, values)
    reader = store.reader()
    reader.aggregate(sid, TimeRange(None, None), SIMPLE)  # asks for the summaries
    _settled(store)
    # Every hour with points is summarized but the first and last, which the range holds
    # only in part (it runs from the first point to the last).
    assert [b for b, _ in _summaries(store, sid)] == hours[1:-1]
    lo_all, hi_all = HOUR0 * BLOCK_US, (HOUR0 + 36) * BLOCK_US
    for _ in range(60):
        a, b = sorted(rng.integers(lo_all - BLOCK_US, hi_all + BLOCK_US, 2).tolist())
        for time_range in (TimeRange(a, b), TimeRange(a, None), TimeRange(None, b)):
            got = reader.aggregate(sid, time_range, SIMPLE).values
            assert _same(got, _scanned(store, sid, time_range)), time_range


def test_another_process_invalidates_the_summaries_it_did_not_make(tmp_path: Path) -> None:
    """Each worker has its own store; a write through one deletes the summaries another made
    (the shared flag in the writer-lock file tells it that summaries exist)."""
    settings = Settings(data_dir=tmp_path)
    maker, other = (
        SQLiteStore(tmp_path / "sb.db", settings),
        SQLiteStore(tmp_path / "sb.db", settings),
    )
    maker.open()
    other.open()
    try:
        assert not other._summaries
        sid, _ = new_series(maker)
        times = HOUR0 * BLOCK_US + np.arange(12 * 60, dtype=np.int64) * MINUTE
        _write(maker, sid, times, np.ones(len(times)))
        maker.reader().aggregate(sid, TimeRange(None, None), SIMPLE)
        _settled(maker)
        assert HOUR0 + 3 in [b for b, _ in _summaries(maker, sid)]
        assert other._summaries  # set by the maker, seen through the shared mapping
        _write(other, sid, np.array([(HOUR0 + 3) * BLOCK_US], np.int64), np.array([9.0]))
        assert HOUR0 + 3 not in [b for b, _ in _summaries(maker, sid)]
        got = maker.reader().aggregate(sid, TimeRange(None, None), SIMPLE).values
        assert got["max"] == 9.0 and _same(got, _scanned(maker, sid, TimeRange(None, None)))
    finally:
        maker.close()
        other.close()
    # A store opened where the lock file was lost sets the flag again: summaries exist.
    (tmp_path / "sb.db-writer").unlink()
    reopened = SQLiteStore(tmp_path / "sb.db", settings)
    reopened.open()
    try:
        assert reopened._summaries
    finally:
        reopened.close()


def test_mostly_empty_hours_are_scanned(store: SQLiteStore) -> None:
    """One point every other hour: after summarizing, a long range has more stretches without
    a summary than are worth a query each, and is scanned, with the same answer."""
    sid, _ = new_series(store)
    hours = list(range(HOUR0 - 200, HOUR0 + 30, 2))
    times = np.array([h * BLOCK_US + MINUTE for h in hours], np.int64)
    _write(store, sid, times, np.arange(len(times), dtype=np.float64))
    reader = store.reader()
    everything = TimeRange(None, None)
    reader.aggregate(sid, everything, SIMPLE)
    _settled(store)
    assert len(_summaries(store, sid)) > 64
    got = reader.aggregate(sid, everything, SIMPLE).values
    assert _same(got, _scanned(store, sid, everything))
    assert got["count"] == len(hours)
