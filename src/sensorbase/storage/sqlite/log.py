"""The write log (the layout: sqlite/__init__.py): a group commit's points as one row of raw
columns, and the per-process cache that decodes each row once for every reading thread."""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

import msgspec
import numpy as np

from sensorbase.model import Float64Array, Int64Array, PointColumns, ResolvedBatch, TimeRange

EXTRAS_ENCODER = msgspec.json.Encoder()
EXTRAS_DECODER = msgspec.json.Decoder(list[str | None])


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


@dataclass(slots=True)
class _LogRow:
    """A decoded log row: columns sorted by series, and where each series' points lie."""

    time_us: Int64Array
    value: Float64Array
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
            None if extra_blob is None else EXTRAS_DECODER.decode(extra_blob),
            [(sid, lo, hi) for sid, (lo, hi) in zip(ids, pairwise(edges), strict=True)],
        )

    def points(self, lo: int, hi: int) -> PointColumns:
        extra = None if self.extra is None else self.extra[lo:hi]
        return PointColumns(self.time_us[lo:hi], self.value[lo:hi], extra)


_LOG_COLUMNS = "id, series_id, time_us, value, extra"


def log_size(conn: sqlite3.Connection) -> tuple[int, int]:
    """Rows and points in the log."""
    rows, points = conn.execute("SELECT count(*), total(points) FROM point_log").fetchone()
    return int(rows), int(points)


@dataclass
class LogView:
    """The log rows one read transaction sees: ids first..last."""

    first: int
    last: int
    rows: dict[int, _LogRow] = field(default_factory=dict)
    by_series: dict[int, list[tuple[int, int, int]]] = field(default_factory=dict)
    merged: dict[tuple[int, int, int], PointColumns] = field(default_factory=dict)

    def points(self, series_id: int, time_range: TimeRange) -> PointColumns:
        """The series' log points in the range, in time order, a later write replacing an
        earlier one at the same time. Merged once per series and view of the log (a read
        that repeats, as dashboards do, does not sort the same points again)."""
        key = (series_id, self.first, self.last)
        found = self.merged.get(key)
        if found is None:
            found = PointColumns.concat(
                [
                    self.rows[row].points(lo, hi)
                    for row, lo, hi in self.by_series.get(series_id, ())
                    if self.first <= row <= self.last
                ]
            ).latest_wins()
            if len(self.merged) >= _MERGED_KEPT:
                self.merged.clear()
            self.merged[key] = found
        return found.within(time_range)


_MERGED_KEPT = 4096  # series' merged log points kept per process


class LogCache:
    """The log's rows decoded once per process and indexed by series (shared by the reading
    threads: a row holds a whole group commit, so a read must not decode it again)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rows: dict[int, _LogRow] = {}
        self._by_series: dict[int, list[tuple[int, int, int]]] = {}  # -> (row, lo, hi)
        self._merged: dict[tuple[int, int, int], PointColumns] = {}
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
