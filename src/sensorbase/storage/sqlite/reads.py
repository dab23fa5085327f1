"""Reading points (the layout: sqlite/__init__.py): a series' chunks in the range merged with
its points in the write log, the log winning; aggregates from chunk stats where they can."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

import numpy as np

from sensorbase.model import AggregateRow, PointColumns, TimeRange
from sensorbase.storage.sqlite.chunks import Chunk, chunks
from sensorbase.storage.sqlite.log import LogView


def series_points(
    conn: sqlite3.Connection, log: LogView, series_id: int, time_range: TimeRange
) -> PointColumns:
    """Every point of the series in the range, in time order."""
    stored = PointColumns.concat([c.points() for c in chunks(conn, series_id, time_range)])
    recent = log.points(series_id, time_range)
    return _merged(stored, recent).within(time_range)


def _merged(stored: PointColumns, recent: PointColumns) -> PointColumns:
    """Chunk points (in time order: chunks are disjoint) with the log's over them."""
    return PointColumns.concat([stored, recent]).latest_wins() if len(recent) else stored


def read_range(
    conn: sqlite3.Connection,
    log: LogView,
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
    for chunk in chunks(conn, series_id, time_range, order):
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


def read_latest(conn: sqlite3.Connection, log: LogView, series_id: int, n: int) -> PointColumns:
    """The newest `n` points, newest first. The newest point alone is the newest chunk's
    `end_us` and `last`, read without decoding the chunk, unless the log holds a point as new
    or the chunk holds extras."""
    if n == 1:
        row = conn.execute(
            "SELECT end_us, last, extra IS NULL FROM point_chunks WHERE series_id = ? "
            "ORDER BY start_us DESC LIMIT 1",
            (series_id,),
        ).fetchone()
        recent = log.points(series_id, TimeRange(None, None))
        if len(recent) and (row is None or int(recent.time_us[-1]) >= row[0]):
            return recent.take(slice(-1, None)).trimmed()
        if row is None:
            return PointColumns.empty()
        if row[2]:
            return PointColumns(np.array([row[0]], np.int64), np.array([row[1]], np.float64), None)
    return read_range(conn, log, series_id, TimeRange(None, None), n, "desc", 0)


def read_by_value(
    conn: sqlite3.Connection,
    log: LogView,
    series_id: int,
    time_range: TimeRange,
    limit: int,
    order: str,
) -> PointColumns:
    points = series_points(conn, log, series_id, time_range)
    index = np.lexsort((points.time_us, points.value))
    if order == "desc":
        index = index[::-1]
    return points.take(index[:limit]).trimmed()


@dataclass(slots=True)
class _Summary:
    count: int = 0
    min: float | None = None
    max: float | None = None
    sum: float = 0.0
    first: tuple[int, float] | None = None  # (time, value)
    last: tuple[int, float] | None = None

    def add_stats(self, chunk: Chunk) -> None:
        mn, mx, sm, first, last = chunk.stats
        self.add(chunk.count, mn, mx, sm, (chunk.start_us, first), (chunk.end_us, last))

    def add(
        self,
        count: int,
        mn: float,
        mx: float,
        sm: float,
        first: tuple[int, float],
        last: tuple[int, float],
    ) -> None:
        """Points already reduced: their count, min, max, sum, first and last (time, value)."""
        self.count += count
        self.min = mn if self.min is None else min(self.min, mn)
        self.max = mx if self.max is None else max(self.max, mx)
        self.sum += sm
        if self.first is None or first[0] < self.first[0]:
            self.first = first
        if self.last is None or last[0] > self.last[0]:
            self.last = last

    def add_points(self, points: PointColumns) -> None:
        if not len(points):
            return
        v, t = points.value, points.time_us
        self.count += len(v)
        mn, mx = float(v.min()), float(v.max())
        self.min = mn if self.min is None else min(self.min, mn)
        self.max = mx if self.max is None else max(self.max, mx)
        self.sum += float(v.sum())
        if self.first is None or t[0] < self.first[0]:
            self.first = (int(t[0]), float(v[0]))
        if self.last is None or t[-1] > self.last[0]:
            self.last = (int(t[-1]), float(v[-1]))

    def values(self, aggregates: tuple[str, ...]) -> dict[str, float | int | None]:
        filled = self.count > 0
        every: dict[str, float | int | None] = {
            "count": self.count,
            "min": self.min,
            "max": self.max,
            "sum": self.sum if filled else None,
            "avg": self.sum / self.count if filled else None,
            "first": self.first[1] if self.first else None,
            "last": self.last[1] if self.last else None,
        }
        return {name: every[name] for name in aggregates}


def _summary(
    conn: sqlite3.Connection, log: LogView, series_id: int, time_range: TimeRange
) -> _Summary:
    """What aggregates need of a range: the stats of chunks wholly inside it and untouched
    by the log, and the points of the others (and the log's), merged."""
    recent = log.points(series_id, time_range)
    summary = _Summary()
    loose: list[PointColumns] = []
    lo, hi = time_range.start_us, time_range.end_us
    for chunk in chunks(conn, series_id, time_range):
        inside = (lo is None or chunk.start_us >= lo) and (hi is None or chunk.end_us < hi)
        at = int(np.searchsorted(recent.time_us, chunk.start_us))
        touched = at < len(recent) and int(recent.time_us[at]) <= chunk.end_us
        if inside and not touched:
            summary.add_stats(chunk)
        else:
            loose.append(chunk.points())
    summary.add_points(_merged(PointColumns.concat(loose), recent).within(time_range))
    return summary


def count(conn: sqlite3.Connection, log: LogView, series_id: int, time_range: TimeRange) -> int:
    return _summary(conn, log, series_id, time_range).count


def aggregate(
    conn: sqlite3.Connection,
    log: LogView,
    series_id: int,
    time_range: TimeRange,
    aggregates: tuple[str, ...],
) -> AggregateRow:
    return AggregateRow(None, _summary(conn, log, series_id, time_range).values(aggregates))


def aggregate_fixed(
    conn: sqlite3.Connection,
    log: LogView,
    series_id: int,
    time_range: TimeRange,
    every_us: int,
    origin_us: int,
    aggregates: tuple[str, ...],
) -> list[AggregateRow]:
    """Per interval, as `_summary` per range: a chunk wholly inside one interval (and the range)
    and untouched by the log counts by its stats; only the others are decoded. Over the 1M-point
    dense series in hours, that leaves ~57% of the chunks to decode (2,048 points each, 3,600
    per interval), which is most of this read's time."""
    recent = log.points(series_id, time_range)
    found: dict[int, _Summary] = {}
    loose: list[PointColumns] = []
    lo, hi = time_range.start_us, time_range.end_us
    for chunk in chunks(conn, series_id, time_range):
        inside = (lo is None or chunk.start_us >= lo) and (hi is None or chunk.end_us < hi)
        touched = False
        if len(recent):
            at = int(np.searchsorted(recent.time_us, chunk.start_us))
            touched = at < len(recent) and int(recent.time_us[at]) <= chunk.end_us
        first = (chunk.start_us - origin_us) // every_us
        if inside and not touched and first == (chunk.end_us - origin_us) // every_us:
            found.setdefault(first, _Summary()).add_stats(chunk)
        else:
            loose.append(chunk.points())
    points = _merged(PointColumns.concat(loose), recent).within(time_range)
    if len(points):
        bucket = (points.time_us - origin_us) // every_us
        starts = np.flatnonzero(np.r_[True, bucket[1:] != bucket[:-1]])
        ends = np.r_[starts[1:], len(bucket)]
        t, v = points.time_us, points.value
        reduced = zip(
            bucket[starts].tolist(),
            (ends - starts).tolist(),
            np.minimum.reduceat(v, starts).tolist(),
            np.maximum.reduceat(v, starts).tolist(),
            np.add.reduceat(v, starts).tolist(),
            zip(t[starts].tolist(), v[starts].tolist(), strict=True),
            zip(t[ends - 1].tolist(), v[ends - 1].tolist(), strict=True),
            strict=True,
        )
        for b, n, mn, mx, sm, head, tail in reduced:
            found.setdefault(b, _Summary()).add(n, mn, mx, sm, head, tail)
    return [
        AggregateRow(origin_us + b * every_us, found[b].values(aggregates)) for b in sorted(found)
    ]


def points_of(conn: sqlite3.Connection, log: LogView, series_sql: str, param: int) -> int:
    """How many points the series `series_sql` selects hold."""
    total = int(
        conn.execute(
            f"SELECT total(count) FROM point_chunks WHERE series_id IN ({series_sql})", (param,)
        ).fetchone()[0]
    )
    everything = TimeRange(None, None)
    for (series_id,) in conn.execute(series_sql, (param,)).fetchall():
        if len(log.points(series_id, everything)):  # a log point adds one or replaces one
            stored = conn.execute(
                "SELECT total(count) FROM point_chunks WHERE series_id = ?", (series_id,)
            ).fetchone()[0]
            total += count(conn, log, series_id, everything) - int(stored)
    return total
