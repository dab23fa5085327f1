"""Points on SQLite: a log of recent writes, folded into compressed chunks per series.

One row per point in a `(series_id, time_us)` B-tree made every write one B-tree descent per
point into its series' own leaf: a request of the benchmark's fleet (5,000 points over 1,000
series) dirtied ~1,000 leaves, and inserting was most of batch ingest's time, under the
writer lock that every writer takes in turn (benchmarks/README.md). Disk held ~29 bytes a
point. Now:

- A group commit appends one row to `point_log`: its points as raw columns, sorted by
  (series, time). A later row wins over an earlier one, and within a row a later point over
  an earlier one at the same (series, time): writing a point again replaces it.
- `fold` moves the log into `point_chunks`: per series, chunks of at most `CHUNK_POINTS`
  points, disjoint in time and in order, their times and values compressed with pcodec (a
  sensor's series takes well under a byte a point), and beside them count, min, max, sum,
  first and last, so that an aggregate over whole chunks reads those instead of the points.
  Folding costs per series, not per point: it runs once the log holds `FOLD_POINTS` points or
  `FOLD_ROWS` rows (`needs_fold`), or when writes pause, in a helper process
  (sqlite_folder.py): planned from a read snapshot, written under the writer lock.
- Reads merge a series' chunks in the range with its points in the log, the log winning.
  `LogCache` decodes each log row once per process and indexes it by series (and keeps a
  series' merged log points for the next read); a read takes the rows its own read
  transaction sees (`LogCache.view`), so chunks and log are read at one moment.

Ids of `point_log` only grow (AUTOINCREMENT) and a fold always takes the oldest rows, so the
rows a transaction sees are exactly the ids between its min(id) and max(id).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

import msgspec
import numpy as np
import numpy.typing as npt
from pcodec import ChunkConfig, standalone

from sensorbase.model import AggregateRow, PointColumns, ResolvedBatch, TimeRange

CHUNK_POINTS = 2048  # most points in one chunk
FOLD_POINTS = 500_000  # a fold is due once the log holds this many points...
FOLD_ROWS = 16_384  # ...or this many rows (group commits)
_PCODEC = ChunkConfig(compression_level=4)  # ~2x faster than the default 8, ~as small here
_extras = msgspec.json.Encoder()
_extras_list = msgspec.json.Decoder(list[str | None])

Int64s = npt.NDArray[np.int64]
Float64s = npt.NDArray[np.float64]

SCHEMA = """
CREATE TABLE IF NOT EXISTS point_log (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  points INTEGER NOT NULL,
  series_id BLOB NOT NULL,
  time_us BLOB NOT NULL,
  value BLOB NOT NULL,
  extra BLOB
);
CREATE TABLE IF NOT EXISTS point_chunks (
  series_id INTEGER NOT NULL,
  start_us INTEGER NOT NULL,
  end_us INTEGER NOT NULL,
  count INTEGER NOT NULL,
  min REAL NOT NULL, max REAL NOT NULL, sum REAL NOT NULL,
  first REAL NOT NULL, last REAL NOT NULL,
  time_us BLOB NOT NULL,
  value BLOB NOT NULL,
  extra BLOB,
  PRIMARY KEY (series_id, start_us)
) WITHOUT ROWID;
"""


@dataclass(slots=True)
class Points:
    """Points of one series in time order (or write order, for log points)."""

    time_us: Int64s
    value: Float64s
    extra: list[str | None] | None = None

    def __len__(self) -> int:
        return int(self.time_us.shape[0])

    def columns(self) -> PointColumns:
        extra = self.extra if self.extra and any(e is not None for e in self.extra) else None
        return PointColumns(self.time_us, self.value, extra)

    def take(self, index: npt.NDArray[np.intp] | slice) -> Points:
        extra = None
        if self.extra is not None:
            extra = (
                self.extra[index]
                if isinstance(index, slice)
                else [self.extra[i] for i in index.tolist()]
            )
        return Points(self.time_us[index], self.value[index], extra)


_EMPTY = Points(np.empty(0, np.int64), np.empty(0, np.float64), None)


def concat(parts: list[Points]) -> Points:
    parts = [p for p in parts if len(p)]
    if not parts:
        return _EMPTY
    if len(parts) == 1:
        return parts[0]
    extra = None
    if any(p.extra is not None for p in parts):
        extra = [e for p in parts for e in (p.extra or [None] * len(p))]
    return Points(
        np.concatenate([p.time_us for p in parts]),
        np.concatenate([p.value for p in parts]),
        extra,
    )


def latest_wins(points: Points) -> Points:
    """`points` (a later one at the same time replacing an earlier one) in time order."""
    n = len(points)
    if n < 2:
        return points
    order = np.argsort(points.time_us, kind="stable")
    times = points.time_us[order]
    keep = np.ones(n, bool)
    keep[:-1] = times[1:] != times[:-1]  # the last of each run of equal times
    if keep.all():
        return points.take(order)
    return points.take(order[keep])


# -- the log ---------------------------------------------------------------------------------


def append_log(conn: sqlite3.Connection, batches: list[ResolvedBatch]) -> int:
    """Append the points of one group commit as one log row; how many."""
    series_id = np.concatenate([b.series_id for b in batches]).astype(np.int64, copy=False)
    time_us = np.concatenate([b.time_us for b in batches]).astype(np.int64, copy=False)
    value = np.concatenate([b.value for b in batches]).astype(np.float64, copy=False)
    extra: list[str | None] | None = None
    if any(b.extra for b in batches):
        extra = [e for b in batches for e in (b.extra or [None] * len(b.time_us))]
    if not len(time_us):
        return 0
    # Sorted by (series, time), stably: a later write to the same point stays later.
    order = np.lexsort((time_us, series_id))
    conn.execute(
        "INSERT INTO point_log (points, series_id, time_us, value, extra) VALUES (?, ?, ?, ?, ?)",
        (
            len(order),
            series_id[order].tobytes(),
            time_us[order].tobytes(),
            value[order].tobytes(),
            None if extra is None else _extras.encode([extra[i] for i in order.tolist()]),
        ),
    )
    return len(order)


@dataclass(slots=True)
class _LogRow:
    """A decoded log row: columns sorted by series, and where each series' points lie."""

    time_us: Int64s
    value: Float64s
    extra: list[str | None] | None
    spans: list[tuple[int, int, int]]  # (series_id, lo, hi)

    @classmethod
    def of(cls, row: tuple[Any, ...]) -> _LogRow:
        _, series_blob, time_blob, value_blob, extra_blob = row
        series = np.frombuffer(series_blob, np.int64)
        edges = [0, *(np.flatnonzero(series[1:] != series[:-1]) + 1).tolist(), len(series)]
        ids = series[edges[:-1]].tolist()
        return cls(
            np.frombuffer(time_blob, np.int64),
            np.frombuffer(value_blob, np.float64),
            None if extra_blob is None else _extras_list.decode(extra_blob),
            [(sid, lo, hi) for sid, (lo, hi) in zip(ids, pairwise(edges), strict=True)],
        )

    def points(self, lo: int, hi: int) -> Points:
        extra = None if self.extra is None else self.extra[lo:hi]
        return Points(self.time_us[lo:hi], self.value[lo:hi], extra)


_LOG_COLUMNS = "id, series_id, time_us, value, extra"


def log_size(conn: sqlite3.Connection) -> tuple[int, int]:
    """Rows and points in the log."""
    rows, points = conn.execute("SELECT count(*), total(points) FROM point_log").fetchone()
    return int(rows), int(points)


def needs_fold(
    conn: sqlite3.Connection, fold_points: int = FOLD_POINTS, fold_rows: int = FOLD_ROWS
) -> bool:
    rows, points = log_size(conn)
    return rows >= fold_rows or points >= fold_points


@dataclass
class LogView:
    """The log rows one read transaction sees: ids first..last."""

    first: int
    last: int
    rows: dict[int, _LogRow] = field(default_factory=dict)
    by_series: dict[int, list[tuple[int, int, int]]] = field(default_factory=dict)
    merged: dict[tuple[int, int, int], Points] = field(default_factory=dict)

    def points(self, series_id: int, time_range: TimeRange) -> Points:
        """The series' log points in the range, in time order, a later write replacing an
        earlier one at the same time. Merged once per series and view of the log (a read
        that repeats, as dashboards do, does not sort the same points again)."""
        key = (series_id, self.first, self.last)
        found = self.merged.get(key)
        if found is None:
            found = latest_wins(
                concat(
                    [
                        self.rows[row].points(lo, hi)
                        for row, lo, hi in self.by_series.get(series_id, ())
                        if self.first <= row <= self.last
                    ]
                )
            )
            if len(self.merged) >= _MERGED_KEPT:
                self.merged.clear()
            self.merged[key] = found
        return _sorted_within(found, time_range)


_MERGED_KEPT = 4096  # series' merged log points kept per process


class LogCache:
    """The log's rows decoded once per process and indexed by series (shared by the reading
    threads: a row holds a whole group commit, so a read must not decode it again)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rows: dict[int, _LogRow] = {}
        self._by_series: dict[int, list[tuple[int, int, int]]] = {}  # -> (row, lo, hi)
        self._merged: dict[tuple[int, int, int], Points] = {}
        self._decoded = 0  # the last row id decoded
        self._kept_from = 1  # rows below this were let go (folded)

    def view(self, conn: sqlite3.Connection) -> LogView:
        """The log as `conn`'s open read transaction sees it."""
        first, last = conn.execute("SELECT min(id), max(id) FROM point_log").fetchone()
        if first is None:
            return LogView(1, 0)
        with self._lock:
            if last > self._decoded:
                for row in conn.execute(
                    f"SELECT {_LOG_COLUMNS} FROM point_log WHERE id > ? ORDER BY id",
                    (self._decoded,),
                ):
                    _index(row, self._rows, self._by_series)
                    self._decoded = max(self._decoded, row[0])
            if first > self._kept_from:  # folded meanwhile: let those rows go
                self._rows = {r: v for r, v in self._rows.items() if r >= first}
                self._by_series = {
                    s: kept
                    for s, spans in self._by_series.items()
                    if (kept := [span for span in spans if span[0] >= first])
                }
                self._kept_from = first
            view = LogView(first, last, self._rows, self._by_series, self._merged)
            kept_from = self._kept_from
        if first < kept_from:  # a snapshot older than the cache: its own rows, decoded apart
            view = LogView(first, last, dict(view.rows), {}, {})
            for row in conn.execute(
                f"SELECT {_LOG_COLUMNS} FROM point_log WHERE id <= ? ORDER BY id", (last,)
            ):
                _index(row, view.rows, view.by_series)
        return view


def _index(
    row: tuple[Any, ...],
    rows: dict[int, _LogRow],
    by_series: dict[int, list[tuple[int, int, int]]],
) -> None:
    decoded = rows[row[0]] = _LogRow.of(row)
    for series_id, lo, hi in decoded.spans:
        by_series.setdefault(series_id, []).append((row[0], lo, hi))


# -- chunks ----------------------------------------------------------------------------------


@dataclass(slots=True)
class Chunk:
    start_us: int
    end_us: int
    count: int
    stats: tuple[float, float, float, float, float]  # min, max, sum, first, last
    blobs: tuple[bytes, bytes, bytes | None]

    def points(self) -> Points:
        time_blob, value_blob, extra_blob = self.blobs
        return Points(
            standalone.simple_decompress(time_blob),
            standalone.simple_decompress(value_blob),
            None if extra_blob is None else _extras_list.decode(extra_blob),
        )


_CHUNK_COLUMNS = "start_us, end_us, count, min, max, sum, first, last, time_us, value, extra"


def _chunk(row: tuple[Any, ...]) -> Chunk:
    return Chunk(row[0], row[1], row[2], tuple(row[3:8]), (row[8], row[9], row[10]))


def chunks(
    conn: sqlite3.Connection, series_id: int, time_range: TimeRange, order: str = "asc"
) -> Iterator[Chunk]:
    """The series' chunks holding points of the range, in time order (or reversed)."""
    sql = f"SELECT {_CHUNK_COLUMNS} FROM point_chunks WHERE series_id = ?"
    params: list[Any] = [series_id]
    if time_range.start_us is not None:
        sql += " AND end_us >= ?"
        params.append(time_range.start_us)
    if time_range.end_us is not None:
        sql += " AND start_us < ?"
        params.append(time_range.end_us)
    sql += " ORDER BY start_us DESC" if order == "desc" else " ORDER BY start_us"
    for row in conn.execute(sql, params):
        yield _chunk(row)


def _encode(series_id: int, points: Points) -> tuple[Any, ...]:
    t, v = points.time_us, points.value
    extra = points.extra
    blob = None
    if extra is not None and any(e is not None for e in extra):
        blob = _extras.encode(extra)
    return (
        series_id,
        int(t[0]),
        int(t[-1]),
        len(t),
        float(v.min()),
        float(v.max()),
        float(v.sum()),
        float(v[0]),
        float(v[-1]),
        standalone.simple_compress(np.ascontiguousarray(t, np.int64), _PCODEC),
        standalone.simple_compress(np.ascontiguousarray(v, np.float64), _PCODEC),
        blob,
    )


@dataclass(slots=True)
class FoldPlan:
    """What a fold will write, computed without the writer lock (`plan_fold`) and applied
    with it (`apply_fold`), if nothing it read has changed meanwhile."""

    generation: str | None  # of the chunks when planned (see _GENERATION)
    last_row: int  # log rows up to this id are folded
    points: int
    drop: list[tuple[int, int]]  # chunks replaced: (series_id, start_us)
    add: list[tuple[Any, ...]]  # chunk rows to insert


_GENERATION = "point_chunks_generation"  # changed by every fold and every delete of points


def plan_fold(conn: sqlite3.Connection) -> FoldPlan | None:
    """The fold of every log row `conn` sees (None: the log is empty). Costs per series,
    not per point: the log's columns are sorted once, then each series' new points go into
    its chunks."""
    rows = conn.execute(
        "SELECT id, series_id, time_us, value, extra FROM point_log ORDER BY id"
    ).fetchall()
    if not rows:
        return None
    generation = conn.execute("SELECT value FROM settings WHERE name = ?", (_GENERATION,))
    found = generation.fetchone()
    series = np.concatenate([np.frombuffer(r[1], np.int64) for r in rows])
    times = np.concatenate([np.frombuffer(r[2], np.int64) for r in rows])
    values = np.concatenate([np.frombuffer(r[3], np.float64) for r in rows])
    extras: list[str | None] | None = None
    if any(r[4] is not None for r in rows):
        extras = []
        for r in rows:
            extras.extend(
                _extras_list.decode(r[4]) if r[4] is not None else [None] * (len(r[2]) // 8)
            )
    # By series, then time; at equal (series, time) the later write last, and it is kept.
    order = np.lexsort((np.arange(len(times)), times, series))
    series, times = series[order], times[order]
    keep = np.ones(len(order), bool)
    keep[:-1] = (series[1:] != series[:-1]) | (times[1:] != times[:-1])
    order, series, times = order[keep], series[keep], times[keep]
    new = Points(times, values[order], None if extras is None else [extras[i] for i in order])
    edges = [0, *(np.flatnonzero(series[1:] != series[:-1]) + 1).tolist(), len(series)]
    plan = FoldPlan(found[0] if found else None, rows[-1][0], len(times), [], [])
    for lo, hi in pairwise(edges):
        _plan_series(conn, plan, int(series[lo]), new.take(slice(lo, hi)))
    return plan


def _plan_series(conn: sqlite3.Connection, plan: FoldPlan, series_id: int, new: Points) -> None:
    lo, hi = int(new.time_us[0]), int(new.time_us[-1])
    # The chunks the new points fall among, and the one before them if it is less than half
    # full: a series' new points after its last chunk fill that up (its size bounds what
    # each fold rewrites), else they start a chunk of their own.
    touched = [
        _chunk(row)
        for row in conn.execute(
            f"SELECT {_CHUNK_COLUMNS} FROM point_chunks WHERE series_id = ? AND start_us = "
            "(SELECT max(start_us) FROM point_chunks WHERE series_id = ? AND start_us < ?) "
            f"UNION ALL SELECT {_CHUNK_COLUMNS} FROM point_chunks WHERE series_id = ? "
            "AND start_us >= ? AND start_us <= ? ORDER BY start_us",
            (series_id, series_id, lo, series_id, lo, hi),
        )
    ]
    before = touched[0] if touched and touched[0].end_us < lo else None
    if before is not None and before.count >= CHUNK_POINTS // 2:  # full enough: left as is
        touched.pop(0)
    if touched:
        merged = latest_wins(concat([*(c.points() for c in touched), new]))
        plan.drop.extend((series_id, c.start_us) for c in touched)
    else:
        merged = new
    plan.add.extend(
        _encode(series_id, merged.take(slice(at, at + CHUNK_POINTS)))
        for at in range(0, len(merged), CHUNK_POINTS)
    )


def apply_fold(conn: sqlite3.Connection, plan: FoldPlan) -> bool:
    """Write `plan` in the caller's write transaction, unless the chunks changed since it was
    planned (another fold, a delete): then nothing is written and False returned."""
    found = conn.execute("SELECT value FROM settings WHERE name = ?", (_GENERATION,)).fetchone()
    if (found[0] if found else None) != plan.generation:
        return False
    conn.executemany("DELETE FROM point_chunks WHERE series_id = ? AND start_us = ?", plan.drop)
    conn.executemany(_INSERT_CHUNK, plan.add)
    conn.execute("DELETE FROM point_log WHERE id <= ?", (plan.last_row,))
    _changed(conn)
    return True


def _changed(conn: sqlite3.Connection) -> None:
    conn.execute(
        "INSERT INTO settings (name, value) VALUES (?, lower(hex(randomblob(8)))) "
        "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
        (_GENERATION,),
    )


def fold(conn: sqlite3.Connection) -> int:
    """Fold every log row, inside the caller's write transaction; the points folded."""
    plan = plan_fold(conn)
    if plan is None:
        return 0
    applied = apply_fold(conn, plan)
    assert applied, "planned and applied in one transaction"
    return plan.points


_INSERT_CHUNK = (
    "INSERT INTO point_chunks (series_id, start_us, end_us, count, min, max, sum, first, "
    "last, time_us, value, extra) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


def store_series(conn: sqlite3.Connection, series_id: int, points: Points) -> None:
    """Store time-ordered points of one series, where it has no chunk yet, as chunks."""
    conn.executemany(
        _INSERT_CHUNK,
        [
            _encode(series_id, points.take(slice(at, at + CHUNK_POINTS)))
            for at in range(0, len(points), CHUNK_POINTS)
        ],
    )


def delete_series(conn: sqlite3.Connection, series_sql: str, param: int) -> None:
    """Delete the points of the series `series_sql` selects (the log is folded first, so
    that no log row keeps points of a deleted series)."""
    fold(conn)
    conn.execute(f"DELETE FROM point_chunks WHERE series_id IN ({series_sql})", (param,))
    _changed(conn)


# -- reads -----------------------------------------------------------------------------------


def _sorted_within(points: Points, time_range: TimeRange) -> Points:
    """Time-ordered points cut to the range (by binary search)."""
    t = points.time_us
    lo = 0 if time_range.start_us is None else int(np.searchsorted(t, time_range.start_us))
    hi = len(t) if time_range.end_us is None else int(np.searchsorted(t, time_range.end_us))
    return points if (lo, hi) == (0, len(t)) else points.take(slice(lo, hi))


def series_points(
    conn: sqlite3.Connection, log: LogView, series_id: int, time_range: TimeRange
) -> Points:
    """Every point of the series in the range, in time order."""
    stored = concat([c.points() for c in chunks(conn, series_id, time_range)])
    recent = log.points(series_id, time_range)
    return _sorted_within(_merged(stored, recent), time_range)


def _merged(stored: Points, recent: Points) -> Points:
    """Chunk points (in time order: chunks are disjoint) with the log's over them."""
    return latest_wins(concat([stored, recent])) if len(recent) else stored


def read_range(
    conn: sqlite3.Connection,
    log: LogView,
    series_id: int,
    time_range: TimeRange,
    limit: int,
    order: str,
    offset: int,
) -> PointColumns:
    """Points of the range in time order (or reversed), `offset` skipped, at most `limit`:
    chunks are decoded from the near end only as far as the page needs."""
    recent = log.points(series_id, time_range)
    wanted = offset + limit
    taken: list[Points] = []
    held = 0
    edge: int | None = None  # how far the decoded chunks reach
    for chunk in chunks(conn, series_id, time_range, order):
        points = _sorted_within(chunk.points(), time_range)
        taken.append(points)
        held += len(points)
        edge = chunk.end_us if order != "desc" else chunk.start_us
        if held >= wanted:  # (a log point adds a point or replaces one: never fewer)
            break
    else:
        edge = None  # every chunk of the range was read
    in_order = taken[::-1] if order == "desc" else taken
    merged = _sorted_within(_merged(concat(in_order), recent), time_range)
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
    return merged.take(slice(offset, offset + limit)).columns()


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
            return recent.take(slice(-1, None)).columns()
        if row is None:
            return _EMPTY.columns()
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
    return points.take(index[:limit]).columns()


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
        self.count += chunk.count
        self.min = mn if self.min is None else min(self.min, mn)
        self.max = mx if self.max is None else max(self.max, mx)
        self.sum += sm
        if self.first is None or chunk.start_us < self.first[0]:
            self.first = (chunk.start_us, first)
        if self.last is None or chunk.end_us > self.last[0]:
            self.last = (chunk.end_us, last)

    def add_points(self, points: Points) -> None:
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
    loose: list[Points] = []
    lo, hi = time_range.start_us, time_range.end_us
    for chunk in chunks(conn, series_id, time_range):
        inside = (lo is None or chunk.start_us >= lo) and (hi is None or chunk.end_us < hi)
        at = int(np.searchsorted(recent.time_us, chunk.start_us))
        touched = at < len(recent) and int(recent.time_us[at]) <= chunk.end_us
        if inside and not touched:
            summary.add_stats(chunk)
        else:
            loose.append(chunk.points())
    summary.add_points(_sorted_within(_merged(concat(loose), recent), time_range))
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
    points = series_points(conn, log, series_id, time_range)
    if not len(points):
        return []
    bucket = (points.time_us - origin_us) // every_us
    starts = np.flatnonzero(np.r_[True, bucket[1:] != bucket[:-1]])
    ends = np.r_[starts[1:], len(bucket)]
    v = points.value
    columns: dict[str, list[Any]] = {
        "count": (ends - starts).tolist(),
        "min": np.minimum.reduceat(v, starts).tolist(),
        "max": np.maximum.reduceat(v, starts).tolist(),
        "sum": np.add.reduceat(v, starts).tolist(),
        "first": v[starts].tolist(),
        "last": v[ends - 1].tolist(),
    }
    columns["avg"] = [s / c for s, c in zip(columns["sum"], columns["count"], strict=True)]
    return [
        AggregateRow(origin_us + int(b) * every_us, {name: columns[name][i] for name in aggregates})
        for i, b in enumerate(bucket[starts].tolist())
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
