"""Aggregates over long ranges read the stats of whole chunks and the points of the others
(storage/sqlite/): they must equal a plain computation over the points, whether the points are
still in the log, all folded into chunks, or some of each (a correction written after a fold
replacing a point inside a chunk)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sensorbase.model import ResolvedBatch, TimeRange
from sensorbase.storage.sqlite.store import SQLiteStore
from tests.storage.conftest import new_series

SIMPLE = ("min", "max", "avg", "sum", "count")
POINTS = 150_000


@pytest.fixture(params=["logged", "folded", "corrected"])
def loaded(
    sqlite_store: SQLiteStore, request: pytest.FixtureRequest
) -> tuple[SQLiteStore, int, np.ndarray, np.ndarray]:
    store = sqlite_store
    sid, _ = new_series(store)
    writer = store.writer()
    tx = writer.begin()
    rng = np.random.default_rng(7)
    n = POINTS
    # Dense at the start, a long gap, a sparse tail: parts of unequal (and zero) size.
    times = np.concatenate(
        [np.arange(n - 100, dtype=np.int64), 10**12 + np.arange(100, dtype=np.int64) * 10**9]
    )
    values = np.round(rng.normal(20, 5, n), 1)
    tx.append(ResolvedBatch(np.full(n, sid, np.int64), times, values, None))
    writer.commit()
    if request.param != "logged":
        assert store.fold_points() == n
    if request.param == "corrected":  # points replaced inside chunks, and one added
        fix = np.array([5, 70_000, n - 101, 10**12 + 50 * 10**9 + 1], np.int64)
        tx = writer.begin()
        tx.append(ResolvedBatch(np.full(4, sid, np.int64), fix, np.full(4, 99.0), None))
        writer.commit()
        replaced = fix[:3]
        values = values.copy()
        values[replaced] = 99.0
        at = int(np.searchsorted(times, fix[3]))
        times, values = np.insert(times, at, fix[3]), np.insert(values, at, 99.0)
    return store, sid, times, values


@pytest.mark.parametrize(
    "time_range",
    [
        TimeRange(None, None),
        TimeRange(1_000, None),
        TimeRange(None, 10**12 + 5 * 10**9),
        TimeRange(10, 10**12 + 10**15),
        TimeRange(10**12 + 1, None),  # 99 points: one scan
    ],
)
def test_aggregate_equals_the_points(
    loaded: tuple[SQLiteStore, int, np.ndarray, np.ndarray], time_range: TimeRange
) -> None:
    store, sid, times, values = loaded
    lo = time_range.start_us if time_range.start_us is not None else -(2**62)
    hi = time_range.end_us if time_range.end_us is not None else 2**62
    inside = values[(times >= lo) & (times < hi)]
    row = store.reader().aggregate(sid, time_range, (*SIMPLE, "first", "last")).values
    assert row["count"] == len(inside)
    assert row["min"] == inside.min()
    assert row["max"] == inside.max()
    assert math.isclose(row["sum"], inside.sum(), rel_tol=1e-12)  # type: ignore[arg-type]
    assert math.isclose(row["avg"], inside.mean(), rel_tol=1e-12)  # type: ignore[arg-type]
    assert row["first"] == inside[0]
    assert row["last"] == inside[-1]


def test_empty_range(loaded: tuple[SQLiteStore, int, np.ndarray, np.ndarray]) -> None:
    store, sid, _, _ = loaded
    row = store.reader().aggregate(sid, TimeRange(-100, -1), SIMPLE).values
    assert row == {"min": None, "max": None, "avg": None, "sum": None, "count": 0}
