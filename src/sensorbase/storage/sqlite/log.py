"""The write log (the layout: sqlite/__init__.py): a group commit's points as one row of raw
columns, and the per-process cache that decodes each row once for every reading thread."""

from __future__ import annotations

import bisect
import sqlite3
import threading
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from sensorbase.model import Float64Array, Int64Array, PointColumns, ResolvedBatch, TimeRange
from sensorbase.storage.chunks import EXTRAS_DECODER, EXTRAS_ENCODER


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
            None if extra is None else EXTRAS_ENCODER.encode([extra[i] for i in order.tolist()]),
        ),
    )
    return len(order)


_LOG_COLUMNS = "id, series_id, time_us, value, extra"


def log_size(conn: sqlite3.Connection) -> tuple[int, int]:
    """Rows and points in the log."""
    rows, points = conn.execute("SELECT count(*), total(points) FROM point_log").fetchone()
    return int(rows), int(points)


@dataclass(slots=True)
class _Columns:
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


@dataclass
class LogView:
    """The log rows one read transaction sees: ids first..last, their columns end to end."""

    first: int
    last: int
    columns: _Columns | None = None
    merged: dict[tuple[int, int, int], PointColumns] = field(default_factory=dict)

    def points(self, series_id: int, time_range: TimeRange) -> PointColumns:
        """The series' log points in the range, in time order, a later write replacing an
        earlier one at the same time. Found by one vectorised scan of the log's series column
        (~0.5 ms a million points), not by an index of every series built in Python: with
        100,000 series in the log, building that index made the first read after a burst of
        writes wait ~480 ms. Merged once per series and view of the log (a read that repeats,
        as dashboards do, does not sort the same points again)."""
        if self.columns is None:
            return PointColumns.empty()
        key = (series_id, self.first, self.last)
        found = self.merged.get(key)
        if found is None:
            found = self.columns.points(series_id).latest_wins()
            if len(self.merged) >= _MERGED_KEPT:
                self.merged.clear()
            self.merged[key] = found
        return found.within(time_range)


_MERGED_KEPT = 4096  # series' merged log points kept per process


class LogCache:
    """The log's rows decoded once per process, their columns end to end (shared by the
    reading threads: a row holds a whole group commit, so a read must not decode it again).
    Rows are appended past what any view covers and let go by making new arrays, so a view
    handed out stays valid without the lock."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ids: list[int] = []  # of the rows held, in order
        self._begins: list[int] = []  # where each row held begins in the columns
        self._size = 0  # points held
        self._series = np.empty(0, np.int64)  # columns with room to grow past _size
        self._time = np.empty(0, np.int64)
        self._value = np.empty(0, np.float64)
        self._extras: list[tuple[int, list[str | None]]] = []
        self._merged: dict[tuple[int, int, int], PointColumns] = {}
        self._decoded = 0  # the last row id decoded
        self._kept_from = 1  # rows below this were let go (folded)

    def view(self, conn: sqlite3.Connection) -> LogView:
        """The log as `conn`'s open read transaction sees it."""
        first, last = conn.execute("SELECT min(id), max(id) FROM point_log").fetchone()
        if first is None:
            return LogView(1, 0)
        with self._lock:
            if first > self._kept_from:  # folded meanwhile: let those rows go
                self._let_go(first)
            if last > self._decoded:
                for row in conn.execute(
                    f"SELECT {_LOG_COLUMNS} FROM point_log WHERE id > ? ORDER BY id",
                    (self._decoded,),
                ):
                    self._append(row)
            if first >= self._kept_from:
                lo = self._begins[bisect.bisect_left(self._ids, first)] if self._ids else 0
                at = bisect.bisect_right(self._ids, last)
                hi = self._begins[at] if at < len(self._ids) else self._size
                columns = _Columns(
                    self._series[lo:hi],
                    self._time[lo:hi],
                    self._value[lo:hi],
                    [(b - lo, e) for b, e in self._extras if lo <= b < hi],
                )
                return LogView(first, last, columns, self._merged)
        # A snapshot older than the cache: its own rows, decoded apart.
        rows = conn.execute(
            f"SELECT {_LOG_COLUMNS} FROM point_log WHERE id <= ? ORDER BY id", (last,)
        ).fetchall()
        return LogView(first, last, _columns_of(rows), {})

    def _append(self, row: tuple[Any, ...]) -> None:
        row_id, series_blob, time_blob, value_blob, extra_blob = row
        n = len(series_blob) // 8
        if self._size + n > len(self._series):  # new arrays: views keep the old ones
            room = max(2 * (self._size + n), 4096)
            self._series, self._time, self._value = (
                _grown(self._series, self._size, room),
                _grown(self._time, self._size, room),
                _grown(self._value, self._size, room),
            )
        end = self._size + n
        self._series[self._size : end] = np.frombuffer(series_blob, np.int64)
        self._time[self._size : end] = np.frombuffer(time_blob, np.int64)
        self._value[self._size : end] = np.frombuffer(value_blob, np.float64)
        if extra_blob is not None:
            self._extras.append((self._size, EXTRAS_DECODER.decode(extra_blob)))
        self._ids.append(row_id)
        self._begins.append(self._size)
        self._size = end
        self._decoded = max(self._decoded, row_id)

    def _let_go(self, first: int) -> None:
        """Drop the rows below `first` (copied into new arrays: views keep the old ones)."""
        at = bisect.bisect_left(self._ids, first)
        lo = self._begins[at] if at < len(self._ids) else self._size
        self._series, self._time, self._value = (
            _grown(self._series[lo:], self._size - lo, self._size - lo),
            _grown(self._time[lo:], self._size - lo, self._size - lo),
            _grown(self._value[lo:], self._size - lo, self._size - lo),
        )
        self._ids = self._ids[at:]
        self._begins = [b - lo for b in self._begins[at:]]
        self._extras = [(b - lo, e) for b, e in self._extras if b >= lo]
        self._size -= lo
        self._kept_from = first


def _grown(column: npt.NDArray[Any], used: int, room: int) -> npt.NDArray[Any]:
    new = np.empty(room, column.dtype)
    new[:used] = column[:used]
    return new


def _columns_of(rows: list[tuple[Any, ...]]) -> _Columns:
    extras = []
    begin = 0
    for row in rows:
        if row[4] is not None:
            extras.append((begin, EXTRAS_DECODER.decode(row[4])))
        begin += len(row[1]) // 8
    return _Columns(
        np.concatenate([np.frombuffer(r[1], np.int64) for r in rows]),
        np.concatenate([np.frombuffer(r[2], np.int64) for r in rows]),
        np.concatenate([np.frombuffer(r[3], np.float64) for r in rows]),
        extras,
    )
