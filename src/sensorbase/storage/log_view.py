"""The write log's rows as both backends read them (the layout: sqlite/__init__.py): a group
commit's points as one row of raw columns sorted by (series, time) (`log_row`), decoded once
per process into columns held end to end (`LogCache`), and the rows one read transaction sees
(`LogView`), in which a read finds its series' points by one vectorised scan, a later write
winning. Each backend's log.py says which rows its transaction sees and reads them: on SQLite
every id between the snapshot's first and last (its ids follow its commits), on PostgreSQL
the set of ids its repeatable-read snapshot sees (a set, so that the view stays right should
a row commit after one with a higher id; postgres/log.py says why they do not).

How much the log holds before a fold is due is decided here too (`due_points`), for both:
folding costs per series, so a large fleet's log holds more points."""

from __future__ import annotations

import bisect
import threading
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from sensorbase.model import (
    Float64Array,
    Int64Array,
    PointColumns,
    ResolvedBatch,
    ResolvedPoint,
    TimeRange,
    resolved_batches,
)
from sensorbase.storage.chunks import EXTRAS_DECODER, EXTRAS_ENCODER, REFILL_BELOW

LOG_COLUMNS = "id, series_id, time_us, value, extra"  # a log row as the cache reads it

# With more than a few hundred series, the log waits for this many points a series before a
# fold is due (`due_points`): a tail chunk's worth, so that a fleet's series get chunks that
# no later fold refills...
FOLD_POINTS_PER_SERIES = REFILL_BELOW
FOLD_POINTS_MOST = 2_000_000  # ...up to this many points in all


def due_points(largest_series_id: int, fold_points: int) -> int:
    """The points that make a fold due: `fold_points`, or with a large fleet
    FOLD_POINTS_PER_SERIES points a series, at most FOLD_POINTS_MOST, on both backends.
    Folding costs per chunk encoded as well as per series: at 1,000 series folds of 500 (or
    on PostgreSQL 200) points a series encoded each point ~3 times (chunks refilled to
    1,024, then merged), where a fold of a chunk's worth a series encodes it once, and merging
    once more (SQLite's fold helper 0.35 -> 0.23 us a point of bench.py's fleet in process;
    PostgreSQL's helpers 0.39-0.46 -> 0.32-0.34 us a point, 0.36-0.42 -> 0.15-0.19 for the
    line-protocol run, disk 2.82-2.97 -> 2.76-2.77 bytes a point: benchmarks/README.md). And
    per series, not per point: at 100,000 series a fold of 500,000 points rewrote every series' tail
    chunk to add 5 points to each (on SQLite 10 s of the folder's CPU, a third of it under
    the writer lock, and ingest fell to 0.3x of 1,000 series'; on PostgreSQL, folding 2
    points a series, 4.03 us of the helper's CPU a point); the log's points are read by one
    vectorised scan (`LogColumns`), so holding more of them costs reads little. Sized by the
    largest series id (ids are never given twice, so deleted series count too: an estimate,
    bounded)."""
    return max(fold_points, min(largest_series_id * FOLD_POINTS_PER_SERIES, FOLD_POINTS_MOST))


# A group commit's log row as written: (points, series_id, time_us, value, extra)
LogRow = tuple[int, bytes, bytes, bytes, bytes | None]
# (its id, the row, the log's first id as its transaction saw it: rows below were folded)
LoggedRow = tuple[int, LogRow, int]


def log_row(appended: list[ResolvedBatch | ResolvedPoint]) -> LogRow | None:
    """The log row of one group commit's points: (points, series_id, time_us, value, extra),
    or None when there are none."""
    batches = resolved_batches(appended)
    series_id = np.concatenate([b.series_id for b in batches]).astype(np.int64, copy=False)
    time_us = np.concatenate([b.time_us for b in batches]).astype(np.int64, copy=False)
    value = np.concatenate([b.value for b in batches]).astype(np.float64, copy=False)
    extra: list[str | None] | None = None
    if any(b.extra for b in batches):
        extra = [e for b in batches for e in (b.extra or [None] * len(b.time_us))]
    if not len(time_us):
        return None
    # Sorted by (series, time), stably: a later write to the same point stays later.
    order = np.lexsort((time_us, series_id))
    return (
        len(order),
        series_id[order].tobytes(),
        time_us[order].tobytes(),
        value[order].tobytes(),
        None if extra is None else EXTRAS_ENCODER.encode([extra[i] for i in order.tolist()]),
    )


@dataclass(slots=True)
class LogColumns:
    """Log rows end to end, in id order: each row's points sorted by (series, time), so a
    series' points, taken in this order, are in write order."""

    series: Int64Array
    time_us: Int64Array
    value: Float64Array
    extras: list[tuple[int, list[str | None]]]  # (where a row with extras begins, its extras)

    def points(self, series_id: int) -> PointColumns:
        at = np.flatnonzero(self.series == series_id)
        extra: list[str | None] | None = None
        if self.extras and len(at):
            extra = [None] * len(at)
            for begin, row_extra in self.extras:
                lo, hi = np.searchsorted(at, (begin, begin + len(row_extra))).tolist()
                for j, i in enumerate(at[lo:hi].tolist(), lo):
                    extra[j] = row_extra[i - begin]
        return PointColumns(self.time_us[at], self.value[at], extra)

    def all_points(self) -> PointColumns:
        """Every point, in this order (`extra` a list when any row has extras)."""
        extra: list[str | None] | None = None
        if self.extras:
            extra = [None] * len(self.time_us)
            for begin, row_extra in self.extras:
                extra[begin : begin + len(row_extra)] = row_extra
        return PointColumns(self.time_us, self.value, extra)


def columns_of(rows: list[tuple[Any, ...]]) -> LogColumns:
    """Log rows (LOG_COLUMNS, in id order) decoded into columns end to end."""
    extras = []
    begin = 0
    for row in rows:
        if row[4] is not None:
            extras.append((begin, EXTRAS_DECODER.decode(row[4])))
        begin += len(row[1]) // 8
    if not rows:
        return LogColumns(np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0), [])
    return LogColumns(
        np.concatenate([np.frombuffer(r[1], np.int64) for r in rows]),
        np.concatenate([np.frombuffer(r[2], np.int64) for r in rows]),
        np.concatenate([np.frombuffer(r[3], np.float64) for r in rows]),
        extras,
    )


@dataclass(slots=True)
class FoldInput:
    """Log rows' points as a fold takes them (`fold_input`): sorted by series, then time, at
    equal (series, time) only the later write's."""

    series: npt.NDArray[np.int64]  # each point's series id, ascending
    new: PointColumns
    edges: list[int]  # where each series' points begin, then the end


def fold_input(rows: list[tuple[Any, ...]]) -> FoldInput:
    """Log rows (LOG_COLUMNS, in id order) sorted once for a fold, on either backend."""
    columns = columns_of(rows)
    points = columns.all_points()
    series, times = columns.series, columns.time_us
    # By series, then time; at equal (series, time) the later write last, and it is kept.
    series, times, order = _sorted(series, times)
    keep = np.ones(len(order), bool)
    keep[:-1] = (series[1:] != series[:-1]) | (times[1:] != times[:-1])
    order, series = order[keep], series[keep]
    edges = [0, *(np.flatnonzero(series[1:] != series[:-1]) + 1).tolist(), len(series)]
    return FoldInput(series, points.take(order), edges)


def _sorted(
    series: npt.NDArray[np.int64], times: npt.NDArray[np.int64]
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.intp]]:
    """The log's points (rows end to end, each sorted by series and time) sorted by series,
    then time, stably (at equal series and time in write order): the columns and the order.
    A stable sort by series alone keeps each series' points in write order, which is time
    order unless a later row wrote a series before its earlier rows' times (then sorted by
    time within each series, stably too): 11 ms for a fold of 1.1M points of bench.py's
    fleet, where a lexsort by series, time and position took 21 (py-spy had put 11% of the
    fold helper's samples on that line)."""
    order = np.argsort(series, kind="stable")  # (its runs, the rows, are found as such)
    series, times = series[order], times[order]
    if ((times[1:] < times[:-1]) & (series[1:] == series[:-1])).any():
        within = np.lexsort((times, series))  # (stable)
        order, series, times = order[within], series[within], times[within]
    return series, times, order


@dataclass
class LogView:
    """The log rows one read transaction sees, their columns end to end in id order."""

    moment: tuple[Any, ...]  # which rows these are (a key of the merged points kept)
    columns: LogColumns | None = None
    merged: dict[tuple[Any, ...], PointColumns] = field(default_factory=dict)

    def points(self, series_id: int, time_range: TimeRange) -> PointColumns:
        """The series' log points in the range, in time order, a later write replacing an
        earlier one at the same time. Found by one vectorised scan of the log's series column
        (~0.5 ms a million points), not by an index of every series built in Python: with
        100,000 series in the log, building that index made the first read after a burst of
        writes wait ~480 ms on SQLite; PostgreSQL's cache, which kept a list per series per
        row, made reads after a 100,000-series ingest wait up to 341-422 ms (now 11-85 ms:
        benchmarks/README.md). Merged once per series and view of the log (a read that
        repeats, as dashboards do, does not sort the same points again)."""
        if self.columns is None:
            return PointColumns.empty()
        key = (series_id, self.moment)
        found = self.merged.get(key)
        if found is None:
            found = self.columns.points(series_id).latest_wins()
            if len(self.merged) >= _MERGED_KEPT:
                self.merged.clear()
            self.merged[key] = found
        return found.within(time_range)


_MERGED_KEPT = 4096  # series' merged log points kept per process
_FED_WAITING = 256  # rows committed while the cache's lock was held (`LogCache._fed`): bounded
# Points of room the cache's columns grow by at least. Growing copies the rows held, on the
# event loop when the writer feeds them (6% of its samples, stalls of 10-30 ms, during a
# 1,000-series ingest that grew by doubling); the room is only memory once written to.
_ROOM_AT_LEAST = 1 << 20

# Log rows with these ids, as the caller's read transaction sees them (LOG_COLUMNS), in id
# order; an id it does not see is left out.
ReadRows = Callable[[list[int]], Iterable[tuple[Any, ...]]]


class LogCache:
    """The log's rows decoded once per process, their columns end to end in id order (shared
    by the reading threads: a row holds a whole group commit, so a read must not decode it
    again). Rows are appended past what any view covers and let go by making new arrays, so
    a view handed out stays valid without the lock. A row read with an id below one held (a
    snapshot older than a fold, or on PostgreSQL a row that committed late) makes new arrays
    with it in its place."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ids: list[int] = []  # of the rows held, ascending
        self._begins: list[int] = []  # where each row held begins in the columns
        self._size = 0  # points held
        self._series = np.empty(0, np.int64)  # columns with room to grow past _size
        self._time = np.empty(0, np.int64)
        self._value = np.empty(0, np.float64)
        self._extras: list[tuple[int, list[str | None]]] = []
        self._merged: dict[tuple[Any, ...], PointColumns] = {}
        self._read_to = 0  # every id up to this one seen was read (or let go)
        self._kept_from = 1  # rows below this were let go (folded)
        self._epoch = 0  # moved on whenever a row is put among those held
        # Rows committed here while the lock was held, in id order, for whoever takes it next
        # (`committed`); the oldest go past this many (the next read then fetches them).
        self._fed: deque[tuple[int, LogRow, int | None]] = deque(maxlen=_FED_WAITING)
        self._grower: threading.Thread | None = None  # taking the rows fed into new arrays

    def committed(self, row_id: int, row: LogRow, first: int | None = None) -> None:
        """A row this process has just committed, held at once when it follows every row
        read: a read then takes it from here rather than fetching it back from the database.
        py-spy, one-series reads polling a saturating SQLite ingest: ~70% of the reading
        thread's samples were fetching, decoding and appending the rows committed since the
        last read, each row fetch a wait for the GIL the event loop holds. A row that does not
        follow (another process's row between) is left for the next read to fetch, so rows are
        never put below one held; in a cache that holds none, it starts them (the rows below
        it are then fetched by the next read that sees them, as after a fold).

        Held whether reads use the cache or not: held only while reads had used it in the
        last 5 s, the first read after a pause fetched the whole unfolded log (a 1,000-series
        ingest's 0.2-1.7M points: 66-483 ms, each row fetched a wait for the GIL the event
        loop holds; benchmarks/README.md). So that a cache no read looks at stays the size
        of the log, the writer says which rows are left (`first`, the log's first id as its
        transaction saw it): the rows below, folded, are let go here as a read lets them go.

        The writer calls this on the event loop, so it does not wait for the lock, which a
        read holds while it fetches rows (10-100 ms under load, seen with a probe): the row
        waits in `_fed` for whoever takes the lock next, this or the read. Skipping it
        instead made every row committed during a read one the next read fetched. Nor does it
        make the new arrays that rows past the room need: a thread does (`_grow_aside`)."""
        self._fed.append((row_id, row, first))
        if self._lock.acquire(blocking=False):
            try:
                if sum(r[0] for _, r, _ in self._fed) <= len(self._series) - self._size:
                    self._take_fed()
                    return
            finally:
                self._lock.release()
            self._grow_aside()

    def _grow_aside(self) -> None:
        """Have a thread take the rows fed, making the new arrays they need. Copying the rows
        held (the unfolded log, up to ~2M points, into memory not yet touched) took the event
        loop ~10-40 ms each time the columns grew, every few seconds of a saturating
        1,000-series ingest (py-spy: `_grown`, 0.8% of the loop's samples, each a stall every
        read waiting for the loop then waited out); the copy lets go of the GIL."""
        if self._grower is not None and self._grower.is_alive():
            return  # (it takes whatever is fed by the time it holds the lock)
        self._grower = threading.Thread(
            target=self._take_fed_locked, name="sensorbase-log-cache", daemon=True
        )
        self._grower.start()

    def _take_fed_locked(self) -> None:
        with self._lock:
            self._take_fed()

    def _take_fed(self) -> None:
        """Hold the rows waiting in `_fed` that follow every row read (under the lock)."""
        chained = True
        while self._fed:
            row_id, row, first = self._fed.popleft()
            if first is not None and first > self._kept_from:  # folded: let them go
                self._let_go(first)
            if not self._ids and row_id > self._read_to + 1:  # none held: start from it
                self._kept_from, self._read_to, chained = row_id, row_id - 1, True
            if chained and row_id == self._read_to + 1:
                self._add([(row_id, *row[1:])])
                self._read_to = row_id
            elif row_id > self._read_to:  # (one not read between): the next read fetches
                chained = False

    def view_of(self, first: int, last: int, ids: Int64Array | None, read: ReadRows) -> LogView:
        """The log as a read transaction sees it: the rows `first` to `last` (ids, as
        `SELECT min(id), max(id)` saw them; first > last: none), all of them, or only those
        of `ids` (sorted) where a row may commit after a row with a higher id; `read` reads
        the rows not held."""
        if first > last:
            return LogView(())
        with self._lock:
            self._take_fed()
            if first > self._kept_from:  # folded meanwhile: let those rows go
                self._let_go(first)
            if ids is None:
                wanted = [*range(first, min(self._kept_from, last + 1))]
                wanted += range(max(self._read_to + 1, first), last + 1)
            else:
                held = np.asarray(self._ids, np.int64)
                wanted = ids[~np.isin(ids, held, assume_unique=True)].tolist()
            if wanted:
                self._add(list(read(wanted)))
                self._read_to = max(self._read_to, last)
                self._kept_from = min(self._kept_from, first)
            at_first = bisect.bisect_left(self._ids, first)
            at_end = bisect.bisect_right(self._ids, last)
            if ids is None or at_end - at_first == len(ids):  # every row held between them
                lo = self._begins[at_first] if at_first < len(self._ids) else self._size
                hi = self._begins[at_end] if at_end < len(self._ids) else self._size
                columns = LogColumns(
                    self._series[lo:hi],
                    self._time[lo:hi],
                    self._value[lo:hi],
                    [(b - lo, e) for b, e in self._extras if lo <= b < hi],
                )
                return LogView((first, last, self._epoch), columns, self._merged)
            # Rows held between them that this snapshot does not see: its own columns.
            seen = set(ids.tolist())
            columns = self._columns_of([i for i in range(at_first, at_end) if self._ids[i] in seen])
        return LogView((first, last, ids.tobytes()), columns, self._merged)

    def _columns_of(self, rows: list[int]) -> LogColumns:
        """The columns of the rows held at these positions, end to end (copied)."""
        spans = [(self._begins[i], self._end(i)) for i in rows]
        extras, begin = [], 0
        for lo, hi in spans:
            extras += [(b - lo + begin, e) for b, e in self._extras if lo <= b < hi]
            begin += hi - lo
        return LogColumns(
            np.concatenate([self._series[lo:hi] for lo, hi in spans] or [np.empty(0, np.int64)]),
            np.concatenate([self._time[lo:hi] for lo, hi in spans] or [np.empty(0, np.int64)]),
            np.concatenate([self._value[lo:hi] for lo, hi in spans] or [np.empty(0)]),
            extras,
        )

    def _end(self, i: int) -> int:
        return self._begins[i + 1] if i + 1 < len(self._begins) else self._size

    def _add(self, rows: list[tuple[Any, ...]]) -> None:
        """Rows read (in id order) among those held."""
        if not rows:
            return
        decoded = [(row[0], *_decoded(row)) for row in rows]
        if not self._ids or rows[0][0] > self._ids[-1]:  # past every row held: appended
            for segment in decoded:
                self._append(*segment)
            return
        # Below a row held: the rows held and these, in id order, into new arrays (a view
        # keeps the old ones), and the merged points kept no longer match (`_epoch`).
        extras = dict(self._extras)
        held = [
            (row_id, self._series[lo:hi], self._time[lo:hi], self._value[lo:hi], extras.get(lo))
            for row_id, lo, hi in (
                (self._ids[i], self._begins[i], self._end(i)) for i in range(len(self._ids))
            )
        ]
        self._ids, self._begins, self._extras, self._size = [], [], [], 0
        self._series = np.empty(0, np.int64)
        self._time = np.empty(0, np.int64)
        self._value = np.empty(0, np.float64)
        for segment in sorted(held + decoded, key=lambda s: s[0]):
            self._append(*segment)
        self._epoch += 1

    def _append(
        self,
        row_id: int,
        series: Int64Array,
        time_us: Int64Array,
        value: Float64Array,
        extra: list[str | None] | None,
    ) -> None:
        n = len(series)
        if self._size + n > len(self._series):  # new arrays: views keep the old ones
            room = max(2 * (self._size + n), self._size + n + _ROOM_AT_LEAST)
            self._series, self._time, self._value = (
                _grown(self._series, self._size, room),
                _grown(self._time, self._size, room),
                _grown(self._value, self._size, room),
            )
        end = self._size + n
        self._series[self._size : end] = series
        self._time[self._size : end] = time_us
        self._value[self._size : end] = value
        if extra is not None:
            self._extras.append((self._size, extra))
        self._ids.append(row_id)
        self._begins.append(self._size)
        self._size = end

    def _let_go(self, first: int) -> None:
        """Drop the rows below `first`. The columns become views past them, not copies: a
        view handed out covers rows below `_size` only, and rows are appended past it, so the
        memory can be shared. Copying took 4-20 ms at every fold (a 1,000-series ingest's
        log holds ~1M points) under the lock that reads and the writer's feed take. The
        memory before them is given back when the columns next grow."""
        at = bisect.bisect_left(self._ids, first)
        lo = self._begins[at] if at < len(self._ids) else self._size
        self._series, self._time, self._value = (
            self._series[lo:],
            self._time[lo:],
            self._value[lo:],
        )
        self._ids = self._ids[at:]
        self._begins = [b - lo for b in self._begins[at:]]
        self._extras = [(b - lo, e) for b, e in self._extras if b >= lo]
        self._size -= lo
        self._kept_from = first
        self._read_to = max(self._read_to, first - 1)  # (every id below was folded)


def _decoded(
    row: tuple[Any, ...],
) -> tuple[Int64Array, Int64Array, Float64Array, list[str | None] | None]:
    _, series_blob, time_blob, value_blob, extra_blob = row
    return (
        np.frombuffer(series_blob, np.int64),
        np.frombuffer(time_blob, np.int64),
        np.frombuffer(value_blob, np.float64),
        None if extra_blob is None else EXTRAS_DECODER.decode(extra_blob),
    )


def _grown(column: npt.NDArray[Any], used: int, room: int) -> npt.NDArray[Any]:
    new = np.empty(room, column.dtype)
    new[:used] = column[:used]
    return new
