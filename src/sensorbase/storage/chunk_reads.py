"""Reading points, on both backends (the layout: sqlite/__init__.py): a series' chunks in the
range merged with its points in the write log, the log winning; aggregates from chunk stats
where they can. A backend gives its chunks as a `ChunkSource` (sqlite/chunks.py,
postgres/chunks.py) and its log as a `LogPoints` (sqlite/log.py, postgres/log.py), both of one
read snapshot."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from sensorbase.model import AggregateRow, PointColumns, ResolvedBatch, TimeRange
from sensorbase.storage.chunks import Chunk, blocks_of, chunk_of_row


class ChunkSource(Protocol):
    """A backend's chunks, as one read snapshot sees them. Rows are CHUNK_COLUMNS'
    (storage/chunks.py)."""

    def chunks(self, series_id: int, time_range: TimeRange, order: str = "asc") -> Iterable[Chunk]:
        """The series' chunks holding points of the range, in time order (or reversed)."""

    def newest(self, series_id: int) -> tuple[int, float, bool] | None:
        """The newest chunk's end_us and last, and whether it holds no extras."""

    def days(self, series_id: int, time_range: TimeRange) -> list[tuple[Any, ...]]:
        """The series' day summaries reaching into the range (ROLLUP_COLUMNS of
        storage/rollups.py), in any order."""

    def chunk_rows(
        self, series_id: int, time_range: TimeRange, days: list[int]
    ) -> list[tuple[Any, ...]]:
        """The rows of the chunks reaching into the range that start in the UTC days `days`
        (ascending), in time order; a backend may leave their time and value blobs None
        (`rows_at` reads them)."""

    def rows_at(self, series_id: int, starts: list[int]) -> list[tuple[Any, ...]]:
        """The whole rows of the chunks starting at `starts`."""

    def summaries(self, series_id: int, lo: int, hi: int) -> list[tuple[Any, ...]]:
        """(start_us, end_us, min, max, first, last) of the chunks reaching into [lo, hi)."""

    def chunk_at(self, series_id: int, start_us: int) -> Chunk: ...

    def stored_count(self, series_id: int) -> int: ...

    def series_counts(self, series_sql: str, param: int) -> tuple[int, list[int]]:
        """The points the chunks of the series `series_sql` selects hold, and those series."""


class LogPoints(Protocol):
    """A backend's write log, as one read snapshot sees it."""

    def points(self, series_id: int, time_range: TimeRange) -> PointColumns:
        """The series' log points in the range, in time order, a later write winning."""


def series_points(
    source: ChunkSource, log: LogPoints, series_id: int, time_range: TimeRange
) -> PointColumns:
    """Every point of the series in the range, in time order."""
    stored = PointColumns.concat([c.points() for c in source.chunks(series_id, time_range)])
    recent = log.points(series_id, time_range)
    return _merged(stored, recent).within(time_range)


def _merged(stored: PointColumns, recent: PointColumns) -> PointColumns:
    """Chunk points (in time order: chunks are disjoint) with the log's over them."""
    return PointColumns.concat([stored, recent]).latest_wins() if len(recent) else stored


def read_range(
    source: ChunkSource,
    log: LogPoints,
    series_id: int,
    time_range: TimeRange,
    limit: int,
    order: str,
    offset: int,
) -> PointColumns:
    """PointColumns of the range in time order (or reversed), `offset` skipped, at most `limit`:
    chunks are decoded from the near end only as far as the page needs."""
    recent = log.points(series_id, time_range)
    wanted = offset + limit
    taken: list[PointColumns] = []
    held = 0
    edge: int | None = None  # how far the decoded chunks reach
    for chunk in source.chunks(series_id, time_range, order):
        points = chunk.points().within(time_range)
        taken.append(points)
        held += len(points)
        edge = chunk.end_us if order != "desc" else chunk.start_us
        if held >= wanted:  # (a log point adds a point or replaces one: never fewer)
            break
    else:
        edge = None  # every chunk of the range was read
    in_order = taken[::-1] if order == "desc" else taken
    merged = _merged(PointColumns.concat(in_order), recent).within(time_range)
    if edge is not None:  # only what the chunks read cover is complete
        t = merged.time_us
        cut = (
            int(np.searchsorted(t, edge, side="right"))
            if order != "desc"
            else int(np.searchsorted(t, edge, side="left"))
        )
        merged = merged.take(slice(0, cut) if order != "desc" else slice(cut, len(t)))
    if order == "desc":
        merged = merged.take(slice(None, None, -1))
    return merged.take(slice(offset, offset + limit)).trimmed()


def read_latest(source: ChunkSource, log: LogPoints, series_id: int, n: int) -> PointColumns:
    """The newest `n` points, newest first. The newest point alone is the newest chunk's
    `end_us` and `last`, read without decoding the chunk, unless the log holds a point as new
    or the chunk holds extras."""
    if n == 1:
        row = source.newest(series_id)
        recent = log.points(series_id, TimeRange(None, None))
        if len(recent) and (row is None or int(recent.time_us[-1]) >= row[0]):
            return recent.take(slice(-1, None)).trimmed()
        if row is None:
            return PointColumns.empty()
        if row[2]:
            return PointColumns(np.array([row[0]], np.int64), np.array([row[1]], np.float64), None)
    return read_range(source, log, series_id, TimeRange(None, None), n, "desc", 0)


def read_by_value(
    source: ChunkSource,
    log: LogPoints,
    series_id: int,
    time_range: TimeRange,
    limit: int,
    order: str,
) -> PointColumns:
    points = series_points(source, log, series_id, time_range)
    index = np.lexsort((points.time_us, points.value))
    if order == "desc":
        index = index[::-1]
    return points.take(index[:limit]).trimmed()


Keys = Callable[[npt.NDArray[np.int64]], npt.NDArray[np.int64]]  # the interval of each time


@dataclass(slots=True)
class _Parts:
    """Partial aggregates of disjoint sets of points (days, chunks, blocks, runs of points),
    each under the key of the interval it lies in: count, min, max, sum, first (time, value)
    and last (time, value) per part, reduced per key at the end in one vectorised pass."""

    columns: list[list[npt.NDArray[Any]]] = field(default_factory=lambda: [[] for _ in range(9)])

    def add(self, key: npt.NDArray[np.int64], *stats: npt.NDArray[Any]) -> None:
        """`stats`: count, min, max, sum, first time, first value, last time, last value."""
        if len(key):
            for column, values in zip(self.columns, (key, *stats), strict=True):
                column.append(np.asarray(values))

    def add_points(self, key: npt.NDArray[np.int64], points: PointColumns) -> None:
        """Time-ordered points, their keys ascending."""
        if not len(points):
            return
        t, v = points.time_us, points.value
        starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
        ends = np.r_[starts[1:], len(key)]
        self.add(
            key[starts],
            ends - starts,
            np.minimum.reduceat(v, starts),
            np.maximum.reduceat(v, starts),
            np.add.reduceat(v, starts),
            t[starts],
            v[starts],
            t[ends - 1],
            v[ends - 1],
        )

    def rows(self, aggregates: tuple[str, ...]) -> list[tuple[int, dict[str, float | int | None]]]:
        if not self.columns[0]:
            return []
        key, count, mn, mx, sm, ft, fv, lt, lv = (np.concatenate(c) for c in self.columns)
        # Parts may overlap in time (the log's points and those of the chunks it touched are
        # one part per interval): first and last are those of the least first time and the
        # greatest last time.
        by_last = lv[np.lexsort((lt, key))]
        order = np.lexsort((ft, key))
        key, count, mn, mx, sm, fv = (a[order] for a in (key, count, mn, mx, sm, fv))
        starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
        ends = np.r_[starts[1:], len(key)]
        counts = np.add.reduceat(count, starts).tolist()
        sums = np.add.reduceat(sm, starts).tolist()
        every = {
            "count": counts,
            "min": np.minimum.reduceat(mn, starts).tolist(),
            "max": np.maximum.reduceat(mx, starts).tolist(),
            "sum": sums,
            "avg": [a / b for a, b in zip(sums, counts, strict=True)],
            "first": fv[starts].tolist(),
            "last": by_last[ends - 1].tolist(),
        }
        columns = [every[name] for name in aggregates]
        return [
            (k, dict(zip(aggregates, values, strict=True)))
            for k, *values in zip(key[starts].tolist(), *columns, strict=True)
        ]


def _touched(
    recent: PointColumns, start: npt.NDArray[np.int64], end: npt.NDArray[np.int64]
) -> npt.NDArray[np.bool_]:
    """Whether the log holds a point between each start and end (inclusive)."""
    if not len(recent):
        return np.zeros(len(start), bool)
    at = np.searchsorted(recent.time_us, start)
    return (at < len(recent)) & (recent.time_us[np.minimum(at, len(recent) - 1)] <= end)


def _whole(
    keys: Keys,
    time_range: TimeRange,
    recent: PointColumns,
    start: npt.NDArray[np.int64],
    end: npt.NDArray[np.int64],
) -> npt.NDArray[np.bool_]:
    """Which parts [start, end] count by their summaries: inside the range and one interval,
    and untouched by the log."""
    lo, hi = time_range.start_us, time_range.end_us
    whole = keys(start) == keys(end)
    if lo is not None:
        whole &= start >= lo
    if hi is not None:
        whole &= end < hi
    return whole & ~_touched(recent, start, end)


def _reduce(
    source: ChunkSource, log: LogPoints, series_id: int, time_range: TimeRange, keys: Keys
) -> _Parts:
    """The parts of the range's points per interval (`keys`): from the day summaries
    (storage/rollups.py) of days inside one interval and the range and untouched by the log;
    in the other days, from the stats of such chunks; in the other chunks, from the summaries
    of such blocks (chunks.py); and from the points of the blocks left and of the log, merged.
    Over the 1M-point 1 Hz series in hours, that decodes the one or two blocks (512 points)
    at each hour's edge instead of the ~57% of the (then 2,048-point) chunks that straddle
    one; over a whole series it reads a row per day."""
    recent = log.points(series_id, time_range)
    parts = _Parts()
    days = source.days(series_id, time_range)
    rows: list[tuple[Any, ...]] = []
    if days:
        day, start, end, count, mn, mx, sm, first, last = (
            np.array(c) for c in zip(*days, strict=True)
        )
        whole = _whole(keys, time_range, recent, start, end)
        parts.add(
            keys(start[whole]), *(x[whole] for x in (count, mn, mx, sm, start, first, end, last))
        )
        if not whole.all():
            rows = source.chunk_rows(series_id, time_range, np.sort(day[~whole]).tolist())
    loose = _reduce_chunks(source, series_id, rows, time_range, keys, recent, parts)
    points = _merged(PointColumns.concat(loose), recent).within(time_range)
    parts.add_points(keys(points.time_us), points)
    return parts


def _reduce_chunks(
    source: ChunkSource,
    series_id: int,
    rows: list[tuple[Any, ...]],
    time_range: TimeRange,
    keys: Keys,
    recent: PointColumns,
    parts: _Parts,
) -> list[PointColumns]:
    """`_reduce` over chunks (rows of CHUNK_COLUMNS): their parts, and the points left loose."""
    if not rows:
        return []
    start, end, count, mn, mx, sm, first, last = (
        np.array(c) for c in zip(*(r[:8] for r in rows), strict=True)
    )
    touched = _touched(recent, start, end)
    whole = _whole(keys, time_range, recent, start, end)
    parts.add(keys(start[whole]), *(x[whole] for x in (count, mn, mx, sm, start, first, end, last)))
    whole_rows = _with_blobs(source, series_id, rows, np.flatnonzero(touched).tolist())
    loose = [chunk_of_row(row).points() for row in whole_rows]
    split = np.flatnonzero(~whole & ~touched).tolist()
    if not split:
        return loose
    b = blocks_of([rows[i][11] for i in split])
    block_whole = _whole(keys, time_range, recent, b.start_us, b.end_us)
    parts.add(
        keys(b.start_us[block_whole]),
        *(x[block_whole] for x in (b.count, b.min, b.max, b.sum, b.start_us, b.first)),
        b.end_us[block_whole],
        b.last[block_whole],
    )
    rest = ~block_whole
    if time_range.start_us is not None:
        rest &= b.end_us >= time_range.start_us
    if time_range.end_us is not None:
        rest &= b.start_us < time_range.end_us
    if rest.any():
        which = np.flatnonzero(rest).tolist()
        needed = sorted(set(b.chunk[which].tolist()))
        blobs: list[tuple[bytes, bytes]] = [(b"", b"")] * len(split)
        for at, row in zip(
            needed, _with_blobs(source, series_id, rows, [split[i] for i in needed]), strict=True
        ):
            blobs[at] = (row[8], row[9])
        loose.append(b.points(blobs, which))
    return loose


def _with_blobs(
    source: ChunkSource, series_id: int, rows: list[tuple[Any, ...]], which: list[int]
) -> list[tuple[Any, ...]]:
    """The rows `which`, whole: those read without their blobs read again with them."""
    missing = [i for i in which if rows[i][8] is None]
    found = dict(
        zip(missing, source.rows_at(series_id, [rows[i][0] for i in missing]), strict=True)
    )
    return [found.get(i, rows[i]) for i in which]


def _one_key(t: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    return np.zeros(len(t), np.int64)


def _values(
    rows: list[tuple[int, dict[str, float | int | None]]], aggregates: tuple[str, ...]
) -> dict[str, float | int | None]:
    if rows:
        return rows[0][1]
    empty: dict[str, float | int | None] = {
        "count": 0,
        "min": None,
        "max": None,
        "sum": None,
        "avg": None,
        "first": None,
        "last": None,
    }
    return {name: empty[name] for name in aggregates}


def count(source: ChunkSource, log: LogPoints, series_id: int, time_range: TimeRange) -> int:
    found = _values(
        _reduce(source, log, series_id, time_range, _one_key).rows(("count",)), ("count",)
    )
    return int(found["count"] or 0)


def aggregate(
    source: ChunkSource,
    log: LogPoints,
    series_id: int,
    time_range: TimeRange,
    aggregates: tuple[str, ...],
) -> AggregateRow:
    rows = _reduce(source, log, series_id, time_range, _one_key).rows(aggregates)
    return AggregateRow(None, _values(rows, aggregates))


def aggregate_fixed(
    source: ChunkSource,
    log: LogPoints,
    series_id: int,
    time_range: TimeRange,
    every_us: int,
    origin_us: int,
    aggregates: tuple[str, ...],
) -> list[AggregateRow]:
    """Per interval, as `aggregate` per range (`_reduce`)."""

    def keys(t: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        return (t - origin_us) // every_us

    rows = _reduce(source, log, series_id, time_range, keys).rows(aggregates)
    return [AggregateRow(origin_us + k * every_us, values) for k, values in rows]


def points_of(source: ChunkSource, log: LogPoints, series_sql: str, param: int) -> int:
    """How many points the series `series_sql` selects hold."""
    total, series_ids = source.series_counts(series_sql, param)
    everything = TimeRange(None, None)
    for series_id in series_ids:
        if len(log.points(series_id, everything)):  # a log point adds one or replaces one
            total += count(source, log, series_id, everything) - source.stored_count(series_id)
    return total


def every_point(
    source: ChunkSource, log: LogPoints, series_ids: list[int], batch_points: int
) -> Iterator[ResolvedBatch]:
    """Every point of the series (for a dump), a page of at most `batch_points` at a time."""
    for series_id in series_ids:
        start: int | None = None
        while True:
            page = read_range(
                source, log, series_id, TimeRange(start, None), batch_points, "asc", 0
            )
            if len(page):
                yield ResolvedBatch(
                    np.full(len(page), series_id, np.int64), page.time_us, page.value,
                    page.extra,
                )  # fmt: skip
            if len(page) < batch_points:
                break
            start = int(page.time_us[-1]) + 1
