"""PostgreSQL's reader: the catalog's lookups (storage/catalog_queries.py), each statement on a
connection borrowed from the pool (pool.py), and points, each read in a repeatable-read
transaction of its own (so that it sees the chunks and the log at one moment) by
storage/chunk_reads.py."""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from itertools import pairwise
from typing import Any, TypeVar

import psycopg

from sensorbase.model import AggregateRow, PointColumns, TimeRange
from sensorbase.storage import catalog_sql, chunk_m4, chunk_reads
from sensorbase.storage.alerts_queries import AlertReads
from sensorbase.storage.catalog_queries import CatalogQueries, Params, Row
from sensorbase.storage.log_view import LogView
from sensorbase.storage.postgres.chunks import PgChunks
from sensorbase.storage.postgres.errors import holds_nul
from sensorbase.storage.postgres.log import PgLogCache, log_size
from sensorbase.storage.postgres.pool import Pool
from sensorbase.storage.rows import USER_COLUMNS

T = TypeVar("T")


@lru_cache(maxsize=1024)
def pg_sql(statement: str) -> str:
    """A statement's `?` placeholders (catalog_sql, sql.py) in psycopg's `%s` form, rewritten
    once per statement text."""
    return statement.replace("?", "%s")


class PgCatalog(CatalogQueries, AlertReads):
    """The catalog primitives for PostgreSQL; subclasses say where a statement runs (`_rows`)."""

    # A unique index on lower(email) makes addresses case-insensitive (SQLite: COLLATE NOCASE).
    user_by_email_sql = f"SELECT {USER_COLUMNS} FROM users WHERE lower(email) = lower(?)"
    # COLLATE "C": the same byte order as SQLite's, whatever the database's locale.
    source_series_sql = catalog_sql.SOURCE_SERIES + ' COLLATE "C"'
    series_collate = ' COLLATE "C"'

    def _rows(self, statement: str, params: Params) -> list[Row]:
        raise NotImplementedError

    def _all(self, statement: str, params: Params = ()) -> list[Row]:
        return self._rows(pg_sql(statement), params)

    def _one(self, statement: str, params: Params = ()) -> Row | None:
        found = self._rows(pg_sql(statement), params)
        return found[0] if found else None

    def _scalar(self, statement: str, params: Params = ()) -> Any:
        row = self._one(statement, params)
        assert row is not None
        return row[0]


class PgReader(PgCatalog):
    def __init__(self, pool: Pool, log: PgLogCache) -> None:
        self._pool = pool
        self._log = log

    def _rows(self, statement: str, params: Params) -> list[Row]:
        if holds_nul(params):
            return []  # see holds_nul
        return self._pool.run(lambda conn: conn.execute(statement, params).fetchall())

    def _snapshot(self, read: Callable[[PgChunks, LogView], T]) -> T:
        def run(conn: psycopg.Connection) -> T:
            conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            try:
                return read(PgChunks(conn), self._log.view(conn))
            finally:
                if not conn.broken:
                    conn.execute("ROLLBACK")

        return self._pool.run(run)

    def bucket_stats(self, bucket_id: int) -> dict[str, int]:
        row = self._one(
            "SELECT (SELECT count(*) FROM sources WHERE bucket_id = ?), "
            "(SELECT count(*) FROM api_keys WHERE bucket_id = ? AND revoked_us IS NULL)",
            (bucket_id, bucket_id),
        )
        assert row is not None
        points = self._snapshot(
            lambda chunks, log: chunk_reads.points_of(
                chunks, log, catalog_sql.SERIES_OF_BUCKET, bucket_id
            )
        )
        return {"sources": int(row[0]), "points": points, "keys": int(row[1])}

    def read_range(
        self,
        series_id: int,
        time_range: TimeRange,
        limit: int,
        order: str = "asc",
        offset: int = 0,
    ) -> PointColumns:
        return self._snapshot(
            lambda chunks, log: chunk_reads.read_range(
                chunks, log, series_id, time_range, limit, order, offset
            )
        )

    def read_values(self, series_id: int, time_range: TimeRange, limit: int) -> PointColumns:
        points = self.read_range(series_id, time_range, limit)
        return PointColumns(points.time_us, points.value, None)

    def read_range_by_value(
        self, series_id: int, time_range: TimeRange, limit: int, order: str = "asc"
    ) -> PointColumns:
        return self._snapshot(
            lambda chunks, log: chunk_reads.read_by_value(
                chunks, log, series_id, time_range, limit, order
            )
        )

    def read_latest(self, series_ids: list[int], n: int) -> list[PointColumns]:
        return self._snapshot(
            lambda chunks, log: [chunk_reads.read_latest(chunks, log, s, n) for s in series_ids]
        )

    def count(self, series_id: int, time_range: TimeRange) -> int:
        return self._snapshot(
            lambda chunks, log: chunk_reads.count(chunks, log, series_id, time_range)
        )

    def aggregate(
        self, series_id: int, time_range: TimeRange, aggregates: tuple[str, ...]
    ) -> AggregateRow:
        return self._snapshot(
            lambda chunks, log: chunk_reads.aggregate(
                chunks, log, series_id, time_range, aggregates
            )
        )

    def aggregate_fixed(
        self,
        series_id: int,
        time_range: TimeRange,
        every_us: int,
        origin_us: int,
        aggregates: tuple[str, ...],
    ) -> list[AggregateRow]:
        return self._snapshot(
            lambda chunks, log: chunk_reads.aggregate_fixed(
                chunks, log, series_id, time_range, every_us, origin_us, aggregates
            )
        )

    def aggregate_bounds(
        self, series_id: int, bounds: list[int], aggregates: tuple[str, ...]
    ) -> list[AggregateRow]:
        def read(chunks: PgChunks, log: LogView) -> list[AggregateRow]:
            found = []
            for lo, hi in pairwise(bounds):  # one snapshot for every interval
                window = TimeRange(lo, hi)
                row = chunk_reads.aggregate(chunks, log, series_id, window, (*aggregates, "count"))
                if row.values["count"]:
                    found.append(AggregateRow(lo, {name: row.values[name] for name in aggregates}))
            return found

        return self._snapshot(read)

    def m4(self, series_id: int, time_range: TimeRange, width: int) -> PointColumns:
        return self._snapshot(
            lambda chunks, log: chunk_m4.m4(chunks, log, series_id, time_range, width)
        )

    def disk_bytes(self) -> int:
        return int(self._scalar("SELECT pg_database_size(current_database())"))

    def storage_gauges(self) -> dict[str, tuple[str, float]]:
        rows, points = self._pool.run(log_size)
        return {
            "storage_bytes": ("Bytes of the PostgreSQL database", self.disk_bytes()),
            "postgres_log_rows": ("Group commits in the write log, not yet folded", rows),
            "postgres_log_points": ("Points in the write log, not yet folded into chunks", points),
        }
