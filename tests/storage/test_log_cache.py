"""The log cache (storage/log_view.py) shared by both backends: every view handed out keeps the
points it was given while folds let rows go and later rows are appended and the arrays grow,
without the lock (a reading thread may still be scanning an old view)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from sensorbase.model import TimeRange
from sensorbase.storage.log_view import LogCache, LogView

SERIES = 7
POINTS = 300  # a row's


def _row(row_id: int) -> tuple[Any, ...]:
    """Log row `row_id`: POINTS points over SERIES series, sorted by (series, time)."""
    series = np.sort(np.arange(POINTS, dtype=np.int64) % SERIES)
    times = row_id * 1_000_000 + np.arange(POINTS, dtype=np.int64)
    order = np.lexsort((times, series))
    values = (row_id * 1000 + np.arange(POINTS)).astype(np.float64)
    return (row_id, series[order].tobytes(), times[order].tobytes(), values.tobytes(), None)


def _read(ids: list[int]) -> Iterable[tuple[Any, ...]]:
    return [_row(i) for i in ids]


def _expected(first: int, last: int, series: int) -> list[tuple[int, float]]:
    found = []
    for row_id in range(first, last + 1):
        _, s, t, v, _ = _row(row_id)
        at = np.frombuffer(s, np.int64) == series
        found += zip(
            np.frombuffer(t, np.int64)[at].tolist(),
            np.frombuffer(v, np.float64)[at].tolist(),
            strict=True,
        )
    return sorted(found)


def _points(view: LogView, series: int) -> list[tuple[int, float]]:
    got = view.points(series, TimeRange(None, None))
    return list(zip(got.time_us.tolist(), got.value.tolist(), strict=True))


def test_views_keep_their_points_through_folds_and_growth() -> None:
    cache = LogCache()
    views = [(1, 10, cache.view_of(1, 10, None, _read))]
    first, last = 1, 10
    for step in range(40):  # folds let rows go, writes add them: the arrays grow and move
        first += 3 + step % 5
        last += 8 + step % 3
        views.append((first, last, cache.view_of(first, last, None, _read)))
    for a, b, view in views:  # each as it was handed out
        for series in range(SERIES):
            assert _points(view, series) == _expected(a, b, series), (a, b, series)
