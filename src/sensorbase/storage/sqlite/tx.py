"""The embedded store's write transaction: the catalog's changes (storage/catalog_queries.py)
and the points appended, held until the commit."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import numpy as np
import numpy.typing as npt

from sensorbase.model import ResolvedBatch, ResolvedPoint, TimeRange, resolved_batches
from sensorbase.storage.alerts_queries import AlertWrites
from sensorbase.storage.catalog_queries import CatalogWrites, Params
from sensorbase.storage.log_view import LoggedRow
from sensorbase.storage.sqlite import fold, lifecycle, log
from sensorbase.storage.sqlite.errors import driver_errors
from sensorbase.storage.sqlite.reader import SQLiteCatalog


class SQLiteWriteTx(CatalogWrites, SQLiteCatalog, AlertWrites):
    """One group commit's transaction. Appended points are held until the commit and then
    inserted in one pass sorted by (series, time) across every job of the group: that is
    ~1.7x faster than inserting each job's batch on its own (measured: 3M time-major fleet
    points, 200k per commit: 223k -> 372k points/s). Reads inside the transaction therefore
    do not see points appended in it; deletes drop the held points they cover."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self._savepoints = 0
        self._pending: list[ResolvedBatch | ResolvedPoint] = []

    def _run(self, statement: str, params: Params = ()) -> None:
        self.conn.execute(statement, params)

    def _run_many(self, statement: str, params: Iterable[Params]) -> None:
        self.conn.executemany(statement, params)

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        self._savepoints += 1
        name = f"sp{self._savepoints}"
        held = list(self._pending)
        self.conn.execute(f"SAVEPOINT {name}")
        try:
            with driver_errors():
                yield
        except BaseException:
            self.conn.execute(f"ROLLBACK TO {name}")
            self.conn.execute(f"RELEASE {name}")
            self._pending = held
            raise
        self.conn.execute(f"RELEASE {name}")

    def _delete_points(self, series_sql: str, param: int) -> None:
        self._drop_pending(series_sql, param)
        fold.delete_series(self.conn, series_sql, param)
        lifecycle.delete_summaries(self.conn, series_sql, param)

    def _drop_pending(self, series_sql: str, param: int) -> None:
        """Forget held points of the series that `series_sql` selects (they are being deleted)."""
        if not self._pending:
            return
        doomed = np.array([r[0] for r in self.conn.execute(series_sql, (param,))], np.int64)
        self._pending = [
            kept
            for batch in resolved_batches(self._pending)
            if len((kept := _without(batch, _in(batch, doomed))).time_us)
        ]

    def delete_points(self, series_ids: list[int], time_range: TimeRange) -> None:
        doomed = np.array(series_ids, np.int64)
        self._pending = [
            kept
            for batch in resolved_batches(self._pending)
            if len(
                (
                    kept := _without(batch, _in(batch, doomed) & time_range.mask(batch.time_us))
                ).time_us
            )
        ]
        lifecycle.delete_range(self.conn, series_ids, time_range)
        lifecycle.reclaim(self.conn)

    def expire_points(
        self, series_ids: list[int], cutoff_us: int, keep_summaries: bool, max_chunks: int
    ) -> tuple[int, int]:
        return lifecycle.expire(self.conn, series_ids, cutoff_us, keep_summaries, max_chunks)

    def reclaim_space(self) -> int:
        return lifecycle.reclaim(self.conn)

    def append(self, batch: ResolvedBatch | ResolvedPoint) -> None:
        self._pending.append(batch)

    def flush(self) -> LoggedRow | None:
        """Log the held points (the writer calls this just before COMMIT): one row for the
        whole group (log.py), its id and the row."""
        if not self._pending:
            return None
        batches, self._pending = self._pending, []
        return log.append_log(self.conn, batches)


def _without(batch: ResolvedBatch, doomed: npt.NDArray[np.bool_]) -> ResolvedBatch:
    """The batch without the points `doomed` marks."""
    if not doomed.any():
        return batch
    keep = ~doomed
    extra = None
    if batch.extra:
        extra = [e for e, k in zip(batch.extra, keep.tolist(), strict=True) if k]
    return ResolvedBatch(batch.series_id[keep], batch.time_us[keep], batch.value[keep], extra)


def _in(batch: ResolvedBatch, series_ids: npt.NDArray[np.int64]) -> npt.NDArray[np.bool_]:
    return np.isin(batch.series_id, series_ids)
