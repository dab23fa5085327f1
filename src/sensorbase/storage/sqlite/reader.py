"""The embedded store's reader: one per reading thread, on that thread's own connection.
Catalog lookups are storage/catalog_queries.py's; points are read by chunk_reads.py."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from itertools import pairwise
from pathlib import Path

from sensorbase.model import AggregateRow, PointColumns, TimeRange
from sensorbase.storage import catalog_sql, chunk_m4, chunk_reads
from sensorbase.storage.alerts_queries import AlertReads
from sensorbase.storage.catalog_queries import CatalogQueries, Params, Row
from sensorbase.storage.log_view import LogView
from sensorbase.storage.sqlite.chunks import SQLiteChunks
from sensorbase.storage.sqlite.errors import driver_errors
from sensorbase.storage.sqlite.log import SQLiteLogCache, log_size


class SQLiteCatalog(CatalogQueries, AlertReads):
    """The catalog primitives on one connection (shared by the reader and the write
    transaction)."""

    conn: sqlite3.Connection

    def _all(self, statement: str, params: Params = ()) -> list[Row]:
        return self.conn.execute(statement, params).fetchall()

    def _one(self, statement: str, params: Params = ()) -> Row | None:
        row: Row | None = self.conn.execute(statement, params).fetchone()
        return row


class SQLiteReader(SQLiteCatalog):
    """Reads on one thread's connection. Each read of points runs in a read transaction of
    its own, so that it sees the chunks and the log at one moment."""

    def __init__(self, conn: sqlite3.Connection, path: Path, log: SQLiteLogCache):
        self.conn = conn
        self.path = path
        self._log = log
        self._chunks = SQLiteChunks(conn)

    @contextmanager
    def _snapshot(self) -> Iterator[LogView]:
        nested = self.conn.in_transaction
        if not nested:
            self.conn.execute("BEGIN")
        try:
            with driver_errors():
                yield self._log.view(self.conn)
        finally:
            if not nested:
                self.conn.execute("COMMIT")

    def bucket_stats(self, bucket_id: int) -> dict[str, int]:
        sources = self.conn.execute(
            "SELECT count(*) FROM sources WHERE bucket_id = ?", (bucket_id,)
        ).fetchone()[0]
        with self._snapshot() as log:
            points = chunk_reads.points_of(
                self._chunks, log, catalog_sql.SERIES_OF_BUCKET, bucket_id
            )
        keys = self.conn.execute(
            "SELECT count(*) FROM api_keys WHERE bucket_id = ? AND revoked_us IS NULL",
            (bucket_id,),
        ).fetchone()[0]
        return {"sources": sources, "points": points, "keys": keys}

    def read_range(
        self,
        series_id: int,
        time_range: TimeRange,
        limit: int,
        order: str = "asc",
        offset: int = 0,
    ) -> PointColumns:
        with self._snapshot() as log:
            return chunk_reads.read_range(
                self._chunks, log, series_id, time_range, limit, order, offset
            )

    def read_values(self, series_id: int, time_range: TimeRange, limit: int) -> PointColumns:
        with self._snapshot() as log:
            points = chunk_reads.read_range(
                self._chunks, log, series_id, time_range, limit, "asc", 0
            )
        return PointColumns(points.time_us, points.value, None)

    def read_range_by_value(
        self, series_id: int, time_range: TimeRange, limit: int, order: str = "asc"
    ) -> PointColumns:
        with self._snapshot() as log:
            return chunk_reads.read_by_value(self._chunks, log, series_id, time_range, limit, order)

    def read_latest(self, series_ids: list[int], n: int) -> list[PointColumns]:
        with self._snapshot() as log:
            return [chunk_reads.read_latest(self._chunks, log, s, n) for s in series_ids]

    def count(self, series_id: int, time_range: TimeRange) -> int:
        with self._snapshot() as log:
            return chunk_reads.count(self._chunks, log, series_id, time_range)

    def aggregate(
        self, series_id: int, time_range: TimeRange, aggregates: tuple[str, ...]
    ) -> AggregateRow:
        with self._snapshot() as log:
            return chunk_reads.aggregate(self._chunks, log, series_id, time_range, aggregates)

    def aggregate_fixed(
        self,
        series_id: int,
        time_range: TimeRange,
        every_us: int,
        origin_us: int,
        aggregates: tuple[str, ...],
    ) -> list[AggregateRow]:
        with self._snapshot() as log:
            return chunk_reads.aggregate_fixed(
                self._chunks, log, series_id, time_range, every_us, origin_us, aggregates
            )

    def aggregate_bounds(
        self, series_id: int, bounds: list[int], aggregates: tuple[str, ...]
    ) -> list[AggregateRow]:
        found = []
        with self._snapshot() as log:  # one view of the log for every interval
            for lo, hi in pairwise(bounds):
                window = TimeRange(lo, hi)
                row = chunk_reads.aggregate(
                    self._chunks, log, series_id, window, (*aggregates, "count")
                )
                if row.values["count"]:
                    values = {name: row.values[name] for name in aggregates}
                    found.append(AggregateRow(lo, values))
        return found

    def m4(self, series_id: int, time_range: TimeRange, width: int) -> PointColumns:
        with self._snapshot() as log:
            return chunk_m4.m4(self._chunks, log, series_id, time_range, width)

    def disk_bytes(self) -> int:
        total = 0
        for suffix in ("", "-wal"):
            path = Path(str(self.path) + suffix)
            if path.exists():
                total += path.stat().st_size
        return total

    def storage_gauges(self) -> dict[str, tuple[str, float]]:
        rows, points = log_size(self.conn)
        return {
            "storage_bytes": ("Bytes of the database file and its WAL", self.disk_bytes()),
            "sqlite_log_rows": ("Group commits in the write log, not yet folded", rows),
            "sqlite_log_points": ("Points in the write log, not yet folded into chunks", points),
        }
