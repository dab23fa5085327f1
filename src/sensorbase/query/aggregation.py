"""One series' aggregates of a query (`mode=aggregate`), for the one read path
(query/service.py).

The store answers its own aggregates (its fast path: count, min, max, sum, avg, first, last),
through the series' retention view (query/lifecycle.py `Visible`), which hides expired points
and adds the summaries of a bucket that keeps them. The others are reduced from the points of
the range (query/reducers.py), read over the part of the range that has not expired, so an
expired or deleted point never counts in them either. A summary holds none of them: where
summaries took part in an interval, they are null (docs/lifecycle.md). The two are merged by
bucket and the gaps filled (query/fill.py)."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from sensorbase.errors import InvalidInput, Problem, invalid
from sensorbase.model import AggregateRow, PointColumns, SeriesRef, SeriesResult, TimeRange
from sensorbase.query.calendar import bounds, fixed_origin
from sensorbase.query.fill import filled
from sensorbase.query.lifecycle import Visible, bound_of
from sensorbase.query.reducers import Value, from_points, reduce, reduce_intervals
from sensorbase.query.spec import QuerySpec
from sensorbase.storage.base import Reader

_NONE = (np.empty(0, np.int64), np.empty(0, np.float64))  # an interval without points


@dataclass(slots=True)
class Scan:
    """The raw points a query may still read for the aggregates that need every point."""

    left: int

    def read(self, reader: Reader, ref: SeriesRef, time_range: TimeRange) -> PointColumns:
        points = reader.read_values(ref.id, time_range, self.left + 1)
        if len(points) > self.left:
            reason = (
                "asks for an aggregate that reads every point, and the range holds more than "
                f"the scan limit (SENSORBASE_MAX_SCAN_POINTS) left to this query ({self.left}); "
                "narrow the range or choose fewer series"
            )
            raise invalid([Problem(reason, "aggregate", None, "too_large")])
        self.left -= len(points)
        return points


def aggregate_series(
    seen: Visible, ref: SeriesRef, spec: QuerySpec, cap: int, scan: Scan, max_result_points: int
) -> tuple[SeriesResult, int]:
    """The series' aggregates, and the buckets they took of the `cap` left to the query."""
    fast = tuple(a for a in spec.aggregates if not from_points(a))
    slow = tuple(a for a in spec.aggregates if from_points(a))
    reader = seen.reader
    if spec.every is None:
        values: dict[str, Value] = {}
        until = None
        if fast:
            row, until = seen.aggregate(ref, spec.time_range, fast)
            values.update(row.values)
        if slow:
            summarised, since = seen.summarised(ref, spec.time_range, lambda _: 0)
            until = until if until is not None else since
            if summarised:
                values.update(dict.fromkeys(slow))
            else:
                points = scan.read(reader, ref, seen.range(ref, spec.time_range))
                whole = reduce_intervals(
                    points.time_us,
                    points.value,
                    np.zeros(len(points), np.int64),
                    slow,
                    spec.integral_unit_us,
                )
                values.update(whole.get(0) or {name: reduce(name, *_NONE) for name in slow})
        row = AggregateRow(None, {name: values[name] for name in spec.aggregates})
        return SeriesResult(ref, aggregates=[row], summaries_until_us=until), 1
    start, end = spec.time_range.start_us, spec.time_range.end_us
    if start is None or end is None:
        span = seen.edges(ref, spec.time_range)
        if span is None:
            return SeriesResult(ref, aggregates=[]), 0
        start = start if start is not None else span[0]
        end = end if end is not None else span[1] + 1
    window = TimeRange(start, end)
    found: dict[int, dict[str, Value]] = {}
    gaps = spec.fill.kind != "none"
    until = None
    fixed = spec.every.fixed_us
    if fixed is not None:
        origin = fixed_origin(start, fixed, spec.tz)
        k0, k1 = (start - origin) // fixed, (end - 1 - origin) // fixed
        # fill shows every bucket, so it counts them exactly.
        buckets = k1 - k0 + 1 if gaps else (end - start) // fixed
        if buckets > cap:
            raise too_many_buckets(max_result_points)
        if fast:
            rows, until = seen.aggregate_fixed(ref, window, fixed, origin, fast)
            for r in rows:
                found[r.start_us or 0] = r.values
        if slow:
            points = scan.read(reader, ref, seen.range(ref, window))
            labels = origin + (points.time_us - origin) // fixed * fixed
            _merge(found, points, labels, slow, spec, lambda _: fixed)
            summarised, since = seen.summarised(
                ref, window, lambda t: origin + (t - origin) // fixed * fixed
            )
            until = until if until is not None else since
            _unanswered(found, summarised, slow)
        starts = [origin + k * fixed for k in range(k0, k1 + 1)] if gaps else sorted(found)
        rows = filled(starts, found, spec.aggregates, spec.fill)
        return SeriesResult(ref, aggregates=rows, summaries_until_us=until), buckets
    edges = bounds(start, end, spec.every.amount, spec.every.unit, spec.tz, cap)
    if edges[-1] < end:  # `bounds` stopped at the cap
        raise too_many_buckets(max_result_points)
    if len(edges) < 2:
        return SeriesResult(ref, aggregates=[]), 0
    # The calendar buckets cut to the range, labelled by where the whole bucket starts.
    cut = [start, *edges[1:-1], end]
    label: dict[int | None, int] = dict(zip(cut, edges, strict=True))
    if fast:
        rows, until = seen.aggregate_bounds(ref, cut, fast)
        for r in rows:
            found[label[r.start_us]] = r.values
    if slow:
        points = scan.read(reader, ref, seen.range(ref, window))
        at = np.searchsorted(np.array(cut, np.int64), points.time_us, side="right") - 1
        after = dict(itertools.pairwise(edges))
        labels = np.array(edges, np.int64)[at]
        _merge(found, points, labels, slow, spec, lambda low: after[low] - low)
        summarised, since = seen.summarised(ref, window, bound_of(cut))
        until = until if until is not None else since
        _unanswered(found, {label[s] for s in summarised}, slow)
    rows = filled(edges[:-1] if gaps else sorted(found), found, spec.aggregates, spec.fill)
    return SeriesResult(ref, aggregates=rows, summaries_until_us=until), len(edges) - 1


def too_many_buckets(cap: int) -> InvalidInput:
    reason = (
        f"gives more than {cap} buckets over the series of this query; widen 'every', "
        "narrow the range or choose fewer series"
    )
    return invalid([Problem(reason, "every")])


def _merge(
    found: dict[int, dict[str, Value]],
    points: PointColumns,
    labels: np.ndarray[Any, Any],
    slow: tuple[str, ...],
    spec: QuerySpec,
    width_us: Callable[[int], int],
) -> None:
    reduced = reduce_intervals(
        points.time_us, points.value, labels, slow, spec.integral_unit_us, width_us
    )
    for start, values in reduced.items():
        found.setdefault(start, {}).update(values)


def _unanswered(
    found: dict[int, dict[str, Value]], summarised: set[int], slow: tuple[str, ...]
) -> None:
    """The aggregates no summary holds, null in the intervals where summaries took part."""
    for start in summarised:
        found.setdefault(start, {}).update(dict.fromkeys(slow))
