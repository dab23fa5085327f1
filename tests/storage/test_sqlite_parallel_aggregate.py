"""Aggregates over long ranges are scanned in parallel parts; they must equal one scan."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sensorbase.model import ResolvedBatch, TimeRange
from sensorbase.storage.sqlite import SQLiteStore
from sensorbase.storage.sqlite_queries import _PARALLEL_SCAN_ROWS
from tests.storage.conftest import new_series

SIMPLE = ("min", "max", "avg", "sum", "count")


@pytest.fixture
def loaded(sqlite_store: SQLiteStore) -> tuple[SQLiteStore, int, np.ndarray, np.ndarray]:
    store = sqlite_store
    sid, _ = new_series(store)
    writer = store.writer()
    tx = writer.begin()
    rng = np.random.default_rng(7)
    n = 3 * _PARALLEL_SCAN_ROWS
    # Dense at the start, a long gap, a sparse tail: parts of unequal (and zero) size.
    times = np.concatenate(
        [np.arange(n - 100, dtype=np.int64), 10**12 + np.arange(100, dtype=np.int64) * 10**9]
    )
    values = np.round(rng.normal(20, 5, n), 1)
    tx.append(ResolvedBatch(np.full(n, sid, np.int64), times, values, None))
    writer.commit()
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
def test_parallel_aggregate_equals_one_scan(
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
