"""M4 on chunked points, on both backends (storage/m4.py says what it is): a column's first, last,
min and max come from the stored summaries of the chunks wholly inside it
(count/min/max/first/last, read without their blobs), and from points only where they must: the
chunks that straddle a column's edge or the range's, the chunks the write log overwrites in
part, and the log itself.

A summary gives a min's value but not its time; the one chunk holding a column's winning min
(and the one holding its max) is decoded to learn it, so a column costs at most four decoded
chunks (two straddling its edges, its min's and its max's) whatever its length: one year of a
1 Hz series (15,400 chunks) at 1,500 pixels decodes about 6,000 (benchmarks/m4.py).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import numpy as np

from sensorbase.model import PointColumns, TimeRange
from sensorbase.storage.chunk_reads import ChunkSource, LogPoints
from sensorbase.storage.chunks import Chunk
from sensorbase.storage.m4 import Column, column_edges, column_of, columns_of_points, flatten


def m4(
    source: ChunkSource, log: LogPoints, series_id: int, time_range: TimeRange, width: int
) -> PointColumns:
    edges = column_edges(time_range, width)
    lo, hi = int(edges[0]), int(edges[-1])
    recent = log.points(series_id, time_range)
    rows = source.summaries(series_id, lo, hi)
    if not rows:
        return flatten(columns_of_points(recent, edges))
    starts = np.array([r[0] for r in rows], np.int64)
    ends = np.array([r[1] for r in rows], np.int64)
    column = column_of(edges, np.clip(starts, lo, hi - 1))
    inside = (starts >= lo) & (ends < hi) & (column == column_of(edges, np.clip(ends, lo, hi - 1)))
    at = np.searchsorted(recent.time_us, starts)
    if len(recent):
        inside &= ~((at < len(recent)) & (recent.time_us[np.minimum(at, len(recent) - 1)] <= ends))

    def chunk(i: int) -> Chunk:
        return source.chunk_at(series_id, int(starts[i]))

    loose = PointColumns.concat([chunk(i).points() for i in np.flatnonzero(~inside).tolist()])
    merged = PointColumns.concat([loose, recent]).latest_wins() if len(recent) else loose
    found = columns_of_points(merged.within(time_range), edges)

    # Per column, its summarised chunks' first, last, and min and max with the chunk holding
    # each (the earliest on a tie: chunks come in time order and only a strict win replaces).
    summed: dict[int, tuple[tuple[int, float], tuple[int, float], int, int]] = {}
    for i in np.flatnonzero(inside).tolist():
        c, (start, end, mn, mx, first, last) = int(column[i]), rows[i]
        held = summed.get(c)
        if held is None:
            summed[c] = ((start, first), (end, last), i, i)
        else:
            at_min = i if mn < rows[held[2]][2] else held[2]
            at_max = i if mx > rows[held[3]][3] else held[3]
            summed[c] = (held[0], (end, last), at_min, at_max)

    for c, (first, last, at_min, at_max) in summed.items():
        points = found.get(c)
        lowest = _extreme(
            True, rows[at_min], points.min if points else None, partial(chunk, at_min)
        )
        highest = _extreme(
            False, rows[at_max], points.max if points else None, partial(chunk, at_max)
        )
        if points is None:
            found[c] = Column(first, last, lowest, highest)
        else:
            found[c] = Column(min(first, points.first), max(last, points.last), lowest, highest)
    return flatten(found)


def _extreme(
    lowest: bool,
    summary: tuple[int, int, float, float, float, float],
    from_points: tuple[int, float] | None,
    chunk: Callable[[], Chunk],
) -> tuple[int, float]:
    """A column's min (or max): the summarised chunk's, or the one among its decoded points,
    the earlier on a tie (the two never share a time); the chunk is decoded only when its
    value wins, to learn when it was."""
    start_us, value = summary[0], summary[2] if lowest else summary[3]
    if from_points is not None:
        t, v = from_points
        if (v < value if lowest else v > value) or (v == value and t < start_us):
            return from_points
    points = chunk().points()
    index = int(np.argmax(points.value == value))
    return int(points.time_us[index]), value
