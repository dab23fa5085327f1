"""Reading the embedded store: lookups shared with the write transaction (`SQLiteQueries`)
and the per-thread reader (`SQLiteReader`). `sqlite3` errors stop here, as in sqlite.py."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from itertools import pairwise
from pathlib import Path
from typing import Any

from sensorbase.errors import Conflict, SensorbaseError, Unavailable, UnprocessableInput
from sensorbase.model import (
    AggregateRow,
    ApiKey,
    Bucket,
    Group,
    Organisation,
    PointColumns,
    Series,
    SeriesRef,
    Source,
    TimeRange,
    User,
)
from sensorbase.storage import rows, sqlite_points
from sensorbase.storage.sql import series_select


@contextmanager
def driver_errors() -> Iterator[None]:
    try:
        yield
    except sqlite3.IntegrityError as exc:
        raise Conflict(f"already exists ({exc})") from None
    except sqlite3.OperationalError as exc:
        if "locked" in str(exc) or "busy" in str(exc):
            raise Unavailable("the database is busy", retry_after_s=1) from None
        raise SensorbaseError(f"storage error: {exc}") from None
    except (sqlite3.DataError, OverflowError) as exc:  # too big for SQLite: never storable
        raise UnprocessableInput(
            f"the database cannot take a value of this request: {exc}"
        ) from None


class SQLiteQueries:
    """What reading and writing connections both look up."""

    conn: sqlite3.Connection

    def get_setting(self, name: str) -> str | None:
        row = self.conn.execute("SELECT value FROM settings WHERE name = ?", (name,)).fetchone()
        return row[0] if row else None

    def get_org(self, key: str) -> Organisation | None:
        row = self.conn.execute(
            f"SELECT {rows.ORG_COLUMNS} FROM orgs WHERE key = ?", (key,)
        ).fetchone()
        return rows.org(row) if row else None

    def get_org_by_id(self, org_id: int) -> Organisation | None:
        row = self.conn.execute(
            f"SELECT {rows.ORG_COLUMNS} FROM orgs WHERE id = ?", (org_id,)
        ).fetchone()
        return rows.org(row) if row else None

    def list_orgs(self) -> list[Organisation]:
        cur = self.conn.execute(f"SELECT {rows.ORG_COLUMNS} FROM orgs ORDER BY id")
        return [rows.org(r) for r in cur]

    def get_bucket(self, org_id: int, key: str) -> Bucket | None:
        row = self.conn.execute(
            f"SELECT {rows.BUCKET_COLUMNS} FROM buckets WHERE org_id = ? AND key = ?",
            (org_id, key),
        ).fetchone()
        return rows.bucket(row) if row else None

    def get_bucket_by_id(self, org_id: int, bucket_id: int) -> Bucket | None:
        row = self.conn.execute(
            f"SELECT {rows.BUCKET_COLUMNS} FROM buckets WHERE org_id = ? AND id = ?",
            (org_id, bucket_id),
        ).fetchone()
        return rows.bucket(row) if row else None

    def list_buckets(self, org_id: int, limit: int, offset: int) -> tuple[list[Bucket], int]:
        cur = self.conn.execute(
            f"SELECT {rows.BUCKET_COLUMNS} FROM buckets WHERE org_id = ? ORDER BY id "
            "LIMIT ? OFFSET ?",
            (org_id, limit, offset),
        )
        found = [rows.bucket(r) for r in cur]
        total = self.conn.execute(
            "SELECT count(*) FROM buckets WHERE org_id = ?", (org_id,)
        ).fetchone()[0]
        return found, total

    def get_source(self, bucket_id: int, key: str) -> Source | None:
        row = self.conn.execute(
            f"SELECT {rows.SOURCE_COLUMNS} FROM sources WHERE bucket_id = ? AND key = ?",
            (bucket_id, key),
        ).fetchone()
        return rows.source(row) if row else None

    def find_source(self, org_id: int, key: str) -> Source | None:
        row = self.conn.execute(
            f"SELECT {rows.SOURCE_COLUMNS} FROM sources WHERE org_id = ? AND key = ? "
            "ORDER BY id LIMIT 1",
            (org_id, key),
        ).fetchone()
        return rows.source(row) if row else None

    def list_sources(self, bucket_id: int, limit: int, offset: int) -> tuple[list[Source], int]:
        cur = self.conn.execute(
            f"SELECT {rows.SOURCE_COLUMNS} FROM sources WHERE bucket_id = ? ORDER BY id "
            "LIMIT ? OFFSET ?",
            (bucket_id, limit, offset),
        )
        found = [rows.source(r) for r in cur]
        total = self.conn.execute(
            "SELECT count(*) FROM sources WHERE bucket_id = ?", (bucket_id,)
        ).fetchone()[0]
        return found, total

    def list_series(
        self,
        org_id: int,
        bucket_id: int | None = None,
        source_keys: list[str] | None = None,
        fields: list[str] | None = None,
    ) -> list[SeriesRef]:
        sql, params = series_select(org_id, bucket_id, source_keys, fields)
        return [SeriesRef(*r) for r in self.conn.execute(sql, params)]

    def get_series(self, series_id: int) -> Series | None:
        row = self.conn.execute(
            f"SELECT {rows.SERIES_COLUMNS} FROM series WHERE id = ?", (series_id,)
        ).fetchone()
        return rows.series(row) if row else None

    def list_source_series(self, source_id: int) -> list[Series]:
        cur = self.conn.execute(
            f"SELECT {rows.SERIES_COLUMNS} FROM series WHERE source_id = ? ORDER BY field",
            (source_id,),
        )
        return [rows.series(r) for r in cur]

    def get_key(self, key_id: str) -> ApiKey | None:
        row = self.conn.execute(
            f"SELECT {rows.KEY_COLUMNS} FROM api_keys WHERE key_id = ?", (key_id,)
        ).fetchone()
        return rows.api_key(row) if row else None

    def list_keys(self, org_id: int, bucket_id: int | None = None) -> list[ApiKey]:
        sql = f"SELECT {rows.KEY_COLUMNS} FROM api_keys WHERE org_id = ?"
        params: list[Any] = [org_id]
        if bucket_id is not None:
            sql += " AND bucket_id = ?"
            params.append(bucket_id)
        return [rows.api_key(r) for r in self.conn.execute(sql + " ORDER BY id", params)]

    def get_user(self, email: str) -> User | None:
        row = self.conn.execute(
            f"SELECT {rows.USER_COLUMNS} FROM users WHERE email = ?", (email,)
        ).fetchone()
        return rows.user(row) if row else None

    def get_user_by_id(self, user_id: int) -> User | None:
        row = self.conn.execute(
            f"SELECT {rows.USER_COLUMNS} FROM users WHERE id = ?", (user_id,)
        ).fetchone()
        return rows.user(row) if row else None

    def list_users(self, org_id: int) -> list[User]:
        cur = self.conn.execute(
            f"SELECT {rows.USER_COLUMNS} FROM users WHERE org_id = ? ORDER BY id", (org_id,)
        )
        return [rows.user(r) for r in cur]

    def _members(self, group_id: int) -> tuple[int, ...]:
        cur = self.conn.execute(
            "SELECT source_id FROM group_members WHERE group_id = ? ORDER BY source_id",
            (group_id,),
        )
        return tuple(r[0] for r in cur)

    def get_group(self, org_id: int, group_id: int) -> Group | None:
        row = self.conn.execute(
            f"SELECT {rows.GROUP_COLUMNS} FROM groups WHERE org_id = ? AND id = ?",
            (org_id, group_id),
        ).fetchone()
        return rows.group(row, self._members(row[0])) if row else None

    def list_groups(self, org_id: int) -> list[Group]:
        cur = self.conn.execute(
            f"SELECT {rows.GROUP_COLUMNS} FROM groups WHERE org_id = ? ORDER BY id", (org_id,)
        )
        return [rows.group(r, self._members(r[0])) for r in cur.fetchall()]

    def get_source_by_id(self, org_id: int, source_id: int) -> Source | None:
        row = self.conn.execute(
            f"SELECT {rows.SOURCE_COLUMNS} FROM sources WHERE org_id = ? AND id = ?",
            (org_id, source_id),
        ).fetchone()
        return rows.source(row) if row else None


_BUCKET_SERIES = (
    "SELECT se.id FROM series se JOIN sources so ON so.id = se.source_id WHERE so.bucket_id = ?"
)


class SQLiteReader(SQLiteQueries):
    """Reads on one thread's connection. Each read of points runs in a read transaction of
    its own, so that it sees the chunks and the log at one moment (sqlite_points)."""

    def __init__(self, conn: sqlite3.Connection, path: Path, log: sqlite_points.LogCache):
        self.conn = conn
        self.path = path
        self._log = log

    @contextmanager
    def _snapshot(self) -> Iterator[sqlite_points.LogView]:
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
            points = sqlite_points.points_of(self.conn, log, _BUCKET_SERIES, bucket_id)
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
            return sqlite_points.read_range(
                self.conn, log, series_id, time_range, limit, order, offset
            )

    def read_range_by_value(
        self, series_id: int, time_range: TimeRange, limit: int, order: str = "asc"
    ) -> PointColumns:
        with self._snapshot() as log:
            return sqlite_points.read_by_value(self.conn, log, series_id, time_range, limit, order)

    def read_latest(self, series_ids: list[int], n: int) -> list[PointColumns]:
        with self._snapshot() as log:
            return [sqlite_points.read_latest(self.conn, log, s, n) for s in series_ids]

    def count(self, series_id: int, time_range: TimeRange) -> int:
        with self._snapshot() as log:
            return sqlite_points.count(self.conn, log, series_id, time_range)

    def aggregate(
        self, series_id: int, time_range: TimeRange, aggregates: tuple[str, ...]
    ) -> AggregateRow:
        with self._snapshot() as log:
            return sqlite_points.aggregate(self.conn, log, series_id, time_range, aggregates)

    def aggregate_fixed(
        self,
        series_id: int,
        time_range: TimeRange,
        every_us: int,
        origin_us: int,
        aggregates: tuple[str, ...],
    ) -> list[AggregateRow]:
        with self._snapshot() as log:
            return sqlite_points.aggregate_fixed(
                self.conn, log, series_id, time_range, every_us, origin_us, aggregates
            )

    def aggregate_bounds(
        self, series_id: int, bounds: list[int], aggregates: tuple[str, ...]
    ) -> list[AggregateRow]:
        found = []
        with self._snapshot() as log:  # one view of the log for every interval
            for lo, hi in pairwise(bounds):
                window = TimeRange(lo, hi)
                row = sqlite_points.aggregate(
                    self.conn, log, series_id, window, (*aggregates, "count")
                )
                if row.values["count"]:
                    values = {name: row.values[name] for name in aggregates}
                    found.append(AggregateRow(lo, values))
        return found

    def disk_bytes(self) -> int:
        total = 0
        for suffix in ("", "-wal"):
            path = Path(str(self.path) + suffix)
            if path.exists():
                total += path.stat().st_size
        return total

    def storage_gauges(self) -> dict[str, tuple[str, float]]:
        rows, points = sqlite_points.log_size(self.conn)
        return {
            "storage_bytes": ("Bytes of the database file and its WAL", self.disk_bytes()),
            "sqlite_log_rows": ("Group commits in the write log, not yet folded", rows),
            "sqlite_log_points": ("Points in the write log, not yet folded into chunks", points),
        }
