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
- `integral`: the trapezoidal area under the points (value x time between the first and last
  points, no extrapolation to the interval's edges), in value x `integral_unit` (1 s unless
  given; kW over 1h gives kWh).
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
) -> dict[int, dict[str, Value]]:
    """The aggregates per interval, `labels` giving each (time-ordered) point's interval
    start (non-decreasing); only intervals holding points appear."""
    out: dict[int, dict[str, Value]] = {}
    if not len(times):
        return out
    starts = np.flatnonzero(np.r_[True, labels[1:] != labels[:-1]])
    ends = np.r_[starts[1:], len(labels)]
    for label, a, b in zip(labels[starts].tolist(), starts.tolist(), ends.tolist(), strict=True):
        t, v = times[a:b], values[a:b]
        out[int(label)] = {name: reduce(name, t, v, integral_unit_us) for name in aggregates}
    return out
