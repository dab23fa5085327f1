"""The write log's rows as PostgreSQL reads them (the layout: sqlite/__init__.py): a group
commit's points as one row of raw columns sorted by (series, time), decoded once per process
(`LogRow`), and the rows one read sees (`LogView`), merged per series with a later write
winning; postgres/log.py holds the SQL and the cache of decoded rows. SQLite's log.py keeps
its own cache and view of the same rows (its ids follow its commits, so a view is a range of
ids); sharing one view is left to do."""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

import numpy as np

from sensorbase.model import Float64Array, Int64Array, PointColumns, ResolvedBatch, TimeRange
from sensorbase.storage.chunks import EXTRAS_DECODER, EXTRAS_ENCODER


def log_row(batches: list[ResolvedBatch]) -> tuple[int, bytes, bytes, bytes, bytes | None] | None:
    """The log row of one group commit's points: (points, series_id, time_us, value, extra),
    or None when there are none."""
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
class LogRow:
    """A decoded log row: columns sorted by series, and where each series' points lie."""

    time_us: Int64Array
    value: Float64Array
    extra: list[str | None] | None
    spans: list[tuple[int, int, int]]  # (series_id, lo, hi)

    @classmethod
    def of(cls, row: tuple[Any, ...]) -> LogRow:
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


@dataclass
class LogView:
    """The log rows one read transaction sees: ids first..last, or on PostgreSQL (where a
    row may commit after a row with a higher id) only those of `ids` among them."""

    first: int
    last: int
    rows: dict[int, LogRow] = field(default_factory=dict)
    by_series: dict[int, list[tuple[int, int, int]]] = field(default_factory=dict)
    merged: dict[tuple[Any, ...], PointColumns] = field(default_factory=dict)
    ids: frozenset[int] | None = None

    def points(self, series_id: int, time_range: TimeRange) -> PointColumns:
        """The series' log points in the range, in time order, a later write replacing an
        earlier one at the same time. Merged once per series and view of the log (a read
        that repeats, as dashboards do, does not sort the same points again)."""
        key = (series_id, self.first, self.last, self.ids)
        found = self.merged.get(key)
        if found is None:
            ids = self.ids
            found = PointColumns.concat(
                [
                    self.rows[row].points(lo, hi)
                    for row, lo, hi in self.by_series.get(series_id, ())
                    if self.first <= row <= self.last and (ids is None or row in ids)
                ]
            ).latest_wins()
            if len(self.merged) >= _MERGED_KEPT:
                self.merged.clear()
            self.merged[key] = found
        return found.within(time_range)


_MERGED_KEPT = 4096  # series' merged log points kept per process


def index_row(
    row: tuple[Any, ...],
    rows: dict[int, LogRow],
    by_series: dict[int, list[tuple[int, int, int]]],
) -> None:
    decoded = rows[row[0]] = LogRow.of(row)
    for series_id, lo, hi in decoded.spans:
        by_series.setdefault(series_id, []).append((row[0], lo, hi))
