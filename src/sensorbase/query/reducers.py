"""The aggregates that need every point of an interval, computed exactly from the points the
store reads (`Reader.read_range`, on both backends) rather than from chunk summaries.

The store answers `count, min, max, sum, avg, first, last` itself (SQLite from its chunks'
stats, PostgreSQL in SQL): those stay its fast path. A chunk carries no sum of squares, no
sorted values and no resets, so the others below read the raw points, within the query's
scan limit (`max_scan_points`); decoding a 2,048-point chunk costs ~20 µs, so a million points
is a few tens of ms on SQLite, while carrying more stats in every chunk would cost every
write and change the format for a few aggregates.

Definitions (docs/lifecycle.md, "Gap filling and aggregates"), over the points of one interval
(a bucket, or the whole range), in time order; an interval without points has none of them:
- `stddev`: the sample standard deviation (n - 1, as InfluxDB's STDDEV); null with one point.
- `spread`: max - min.
- `median`, `pN` (N from 0 to 100, decimals allowed: p99.9): exact percentiles, interpolated
  linearly between the two nearest ranks (numpy's default, PostgreSQL's percentile_cont);
  `median` is p50.
- `delta`: last - first (0 with one point).
- `increase`: the rise of a counter: the sum of the positive steps, a drop counting as a reset
  to zero (after which the new value is the rise); 0 with one point.
- `rate`: increase per second between the interval's first and last points; null with fewer
  than two points.
- `integral`: the time-weighted area under the line joining the points (the trapezoidal
  rule), in value x `integral_unit` (1 s unless given: kW over 1h gives kWh), between the
  range's first and last points, never extrapolated past them. With buckets, a segment joining
  the last point of one bucket to the first of the next is cut at the bucket edge (the value
  there interpolated), so that the buckets' integrals add up to the range's, as InfluxDB's
  INTEGRAL with GROUP BY time does; a bucket holding no point shows its fill.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from sensorbase.model import AGGREGATES, Float64Array, Int64Array

Value = float | int | None
FROM_POINTS = ("stddev", "spread", "median", "delta", "increase", "rate", "integral")
# p0 to p100 (p99.9, p100.0); also in the OpenAPI document's pattern of `aggregate`.
PERCENTILE_PATTERN = r"p(?:100(?:\.0{1,6})?|[0-9]{1,2}(?:\.[0-9]{1,6})?)"
_PERCENTILE = re.compile(PERCENTILE_PATTERN)
# Every name an `aggregate` parameter takes (besides pN), in the order the docs list them.
NAMES = (*AGGREGATES, *FROM_POINTS)


def percentile_of(name: str) -> float | None:
    """N of a `pN` name (0 to 100), or None when `name` is not one."""
    match = _PERCENTILE.fullmatch(name)
    if match is None:
        return None
    return float(name[1:])


def known(name: str) -> bool:
    return name in NAMES or percentile_of(name) is not None


def from_points(name: str) -> bool:
    """Whether an aggregate needs the raw points (the store's fast path answers the others)."""
    return name not in AGGREGATES


def reduce(
    name: str, times: Int64Array, values: Float64Array, integral_unit_us: int = 1_000_000
) -> Value:
    """One aggregate over one interval's points (in time order; None when there are none)."""
    n = len(values)
    if name == "count":
        return n
    if n == 0:
        return None
    if name == "stddev":
        return float(values.std(ddof=1)) if n > 1 else None
    if name == "spread":
        return float(values.max() - values.min())
    if name == "median":
        return float(np.median(values))
    if name == "delta":
        return float(values[-1] - values[0])
    if name == "increase":
        return _increase(values)
    if name == "rate":
        span_us = int(times[-1] - times[0])
        return _increase(values) * 1_000_000 / span_us if span_us > 0 else None
    if name == "integral":
        if n < 2:
            return 0.0
        steps = np.diff(times).astype(np.float64)
        area = float(((values[1:] + values[:-1]) * steps).sum()) / 2
        return area / integral_unit_us
    if name in ("min", "max", "sum", "avg", "first", "last"):
        return _simple(name, values)
    q = percentile_of(name)
    if q is None:
        raise ValueError(f"unknown aggregate {name}")
    return float(np.percentile(values, q))


def _simple(name: str, values: Float64Array) -> float:
    if name == "min":
        return float(values.min())
    if name == "max":
        return float(values.max())
    if name == "sum":
        return float(values.sum())
    if name == "avg":
        return float(values.sum() / len(values))
    return float(values[0] if name == "first" else values[-1])


def _increase(values: Float64Array) -> float:
    steps = np.diff(values)
    # After a drop the counter restarted from zero: its new value is all it rose by.
    rises = np.where(steps >= 0, steps, values[1:])
    return float(rises.sum())


def reduce_intervals(
    times: Int64Array,
    values: Float64Array,
    labels: np.ndarray[Any, Any],
    aggregates: tuple[str, ...],
    integral_unit_us: int,
    width_us: Any = None,
) -> dict[int, dict[str, Value]]:
    """The aggregates per interval, `labels` giving each (time-ordered) point's interval
    start (non-decreasing), `width_us` each interval's end from its start (for `integral`
    across interval edges; None: one interval, the whole range); only intervals holding points
    appear."""
    out: dict[int, dict[str, Value]] = {}
    if not len(times):
        return out
    starts = np.flatnonzero(np.r_[True, labels[1:] != labels[:-1]])
    ends = np.r_[starts[1:], len(labels)]
    lows = labels[starts]
    areas: list[float] = []
    if "integral" in aggregates and width_us is not None:
        highs = np.array([int(low) + width_us(int(low)) for low in lows.tolist()], np.int64)
        areas = (integrals(times, values, lows, highs) / integral_unit_us).tolist()
    rest = tuple(a for a in aggregates if not (a == "integral" and areas))
    for i, (label, a, b) in enumerate(
        zip(lows.tolist(), starts.tolist(), ends.tolist(), strict=True)
    ):
        t, v = times[a:b], values[a:b]
        found = {name: reduce(name, t, v, integral_unit_us) for name in rest}
        if areas:
            found["integral"] = areas[i]
        out[int(label)] = found
    return out


def integrals(
    times: Int64Array, values: Float64Array, lows: Int64Array, highs: Int64Array
) -> Float64Array:
    """The area (value x microseconds) under the line joining the points (time-ordered, at
    least one) over each [lows[i], highs[i]), cut to the points' own span."""
    if len(times) < 2:
        return np.zeros(len(lows), np.float64)
    t = times.astype(np.float64)
    steps = np.diff(t)
    cumulative = np.r_[0.0, np.cumsum((values[1:] + values[:-1]) / 2 * steps)]

    def area_until(x: Float64Array) -> Float64Array:
        x = np.clip(x, t[0], t[-1])
        i = np.clip(np.searchsorted(t, x, side="right") - 1, 0, len(t) - 2)
        dx = x - t[i]
        at_x = values[i] + (values[i + 1] - values[i]) * dx / steps[i]
        result: Float64Array = cumulative[i] + (values[i] + at_x) / 2 * dx
        return result

    return area_until(highs.astype(np.float64)) - area_until(lows.astype(np.float64))
