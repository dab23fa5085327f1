"""M4 downsampling (Jugel et al., "M4: A Visualization-Oriented Time Series Data Aggregation",
VLDB 2014), shared by the backends: a range cut into `width` equal columns (one per pixel of a
chart), and per column that holds points its first and last points and its smallest and largest
values. A line drawn through those (up to 4 per column, in time order) is pixel for pixel the
line drawn through every point, so a one-second spike in a year survives at 1,500 pixels where
an average per column would flatten it.

Every backend answers the same points: the min and the max carry their real times (the earliest
on a tie), so a store that found a column's min in a chunk's summary decodes that one chunk to
learn when it happened (chunk_m4.py) rather than guessing.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from sensorbase.model import PointColumns, TimeRange

MAX_WIDTH = 10_000  # most columns one M4 read may cut a range into


def column_edges(time_range: TimeRange, width: int) -> npt.NDArray[np.int64]:
    """The `width + 1` edges of the columns: column i is [edges[i], edges[i + 1]). Computed on
    Python integers (span * i overflows 64 bits for far ranges); a range shorter than `width`
    microseconds leaves some columns empty, never overlapping."""
    start, end = time_range.start_us, time_range.end_us
    assert start is not None and end is not None and end > start and 1 <= width <= MAX_WIDTH
    span = end - start
    return np.array([start + span * i // width for i in range(width + 1)], np.int64)


def column_of(edges: npt.NDArray[np.int64], time_us: npt.NDArray[np.int64]) -> npt.NDArray[np.intp]:
    """The column of each time (all within [edges[0], edges[-1]))."""
    return np.searchsorted(edges, time_us, side="right") - 1


@dataclass(slots=True)
class Column:
    """(time, value) of a column's first, last, min and max points (the earliest of equal
    minima or maxima)."""

    first: tuple[int, float]
    last: tuple[int, float]
    min: tuple[int, float]
    max: tuple[int, float]


def columns_of_points(points: PointColumns, edges: npt.NDArray[np.int64]) -> dict[int, Column]:
    """Each column's first, last, min and max of time-ordered points within the edges."""
    if not len(points):
        return {}
    t, v = points.time_us, points.value
    col = column_of(edges, t)
    starts = np.flatnonzero(np.r_[True, col[1:] != col[:-1]])
    ends = np.r_[starts[1:], len(t)]
    found: dict[int, Column] = {}
    for c, lo, hi in zip(col[starts].tolist(), starts.tolist(), ends.tolist(), strict=True):
        part = v[lo:hi]
        at_min = lo + int(np.argmin(part))  # argmin/argmax: the first on a tie
        at_max = lo + int(np.argmax(part))
        found[c] = Column(
            (int(t[lo]), float(v[lo])),
            (int(t[hi - 1]), float(v[hi - 1])),
            (int(t[at_min]), float(v[at_min])),
            (int(t[at_max]), float(v[at_max])),
        )
    return found


def flatten(columns: dict[int, Column]) -> PointColumns:
    """The columns' points in time order, each once (first, min, max and last may be one)."""
    times: list[int] = []
    values: list[float] = []
    for c in sorted(columns):
        column = columns[c]
        picked = {t: v for t, v in (column.first, column.min, column.max, column.last)}
        for t in sorted(picked):
            times.append(t)
            values.append(picked[t])
    return PointColumns(np.array(times, np.int64), np.array(values, np.float64), None)


def m4_of_points(points: PointColumns, time_range: TimeRange, width: int) -> PointColumns:
    """The M4 of time-ordered points (as a backend without summaries computes it)."""
    edges = column_edges(time_range, width)
    return flatten(columns_of_points(points.within(time_range), edges))
