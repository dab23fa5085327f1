"""Reading the embedded store: lookups shared with the write transaction (`SQLiteQueries`)
and the per-thread reader (`SQLiteReader`). `sqlite3` errors stop here, as in sqlite.py."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np

from sensorbase.errors import Conflict, SensorbaseError, Unavailable
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
from sensorbase.storage import rows, sqlite_blocks
from sensorbase.storage.sql import range_clause, series_select, simple_select


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

    def bucket_stats(self, bucket_id: int) -> dict[str, int]:
        sources = self.conn.execute(
            "SELECT count(*) FROM sources WHERE bucket_id = ?", (bucket_id,)
        ).fetchone()[0]
        points = self.conn.execute(
            "SELECT count(*) FROM points WHERE series_id IN (SELECT se.id FROM series se "
            "JOIN sources so ON so.id = se.source_id WHERE so.bucket_id = ?)",
            (bucket_id,),
        ).fetchone()[0]
        keys = self.conn.execute(
            "SELECT count(*) FROM api_keys WHERE bucket_id = ? AND revoked_us IS NULL",
            (bucket_id,),
        ).fetchone()[0]
        return {"sources": sources, "points": points, "keys": keys}

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


_PARALLEL_SCAN_ROWS = 50_000  # an aggregate over more rows than this is split across threads


class Scanner:
    """Threads that scan parts of a long aggregate at once, each on its own connection:
    SQLite runs one query on one core, and releases the GIL while it runs."""

    def __init__(self, reader: Callable[[], SQLiteReader], parts: int) -> None:
        self.parts = parts
        self._reader = reader
        self._pool = ThreadPoolExecutor(parts - 1, thread_name_prefix="sensorbase-scan")

    def submit(self, series_id: int, lo: int, hi: int) -> Future[tuple[Any, ...]]:
        return self._pool.submit(lambda: self._reader().simple_part(series_id, lo, hi))

    def close(self) -> None:
        self._pool.shutdown(wait=True)


class SQLiteReader(SQLiteQueries):
    def __init__(
        self,
        conn: sqlite3.Connection,
        path: Path,
        scanner: Scanner | None = None,
        want_summaries: Callable[[int, int, int], None] | None = None,
    ):
        self.conn = conn
        self.path = path
        self._scanner = scanner
        self._want_summaries = want_summaries  # see sqlite_blocks

    def simple_part(self, series_id: int, lo: int, hi: int) -> tuple[Any, ...]:
        """min, max, sum and count of the values in [lo, hi)."""
        row = self.conn.execute(
            "SELECT min(value), max(value), sum(value), count(*) FROM points "
            "WHERE series_id = ? AND time_us >= ? AND time_us < ?",
            (series_id, lo, hi),
        ).fetchone()
        return tuple(row)

    def _long_simple(
        self, series_id: int, time_range: TimeRange, names: list[str]
    ) -> list[Any] | None:
        """The simple aggregates of a long range: from hourly summaries and the points between
        them (see sqlite_blocks), else scanned in parallel parts; None when the range is short
        (one plain scan is then the fastest)."""
        where, params = range_clause(time_range)
        # Two index probes (one query asking min and max together would scan every row).
        first, last = (
            self.conn.execute(
                f"SELECT time_us FROM points WHERE series_id = ?{where} "
                f"ORDER BY time_us {direction} LIMIT 1",
                [series_id, *params],
            ).fetchone()
            for direction in ("ASC", "DESC")
        )
        if first is None or last is None:
            return None
        lo, hi = first[0], last[0] + 1  # within the range: parts cover exactly its points
        if hi - lo >= sqlite_blocks.MIN_SPAN_US:
            parts = sqlite_blocks.summarized(
                self.conn,
                series_id,
                lo,
                hi,
                lambda a, b: self.simple_part(series_id, a, b),
                self._want_summaries,
            )
            if parts is not None:
                return _combined(parts, names)
        return self._parallel_simple(series_id, where, params, lo, hi, names)

    def _parallel_simple(
        self, series_id: int, where: str, params: list[Any], lo: int, hi: int, names: list[str]
    ) -> list[Any] | None:
        """The simple aggregates of [lo, hi), its time span cut into equal parts scanned at
        once; None when the range holds too few rows to be worth it."""
        scanner = self._scanner
        if scanner is None:
            return None
        probe = self.conn.execute(
            f"SELECT 1 FROM points WHERE series_id = ?{where} ORDER BY time_us LIMIT 1 OFFSET ?",
            [series_id, *params, _PARALLEL_SCAN_ROWS],
        ).fetchone()
        if probe is None:
            return None
        n = scanner.parts
        edges = [lo + (hi - lo) * k // n for k in range(n + 1)]
        others = [scanner.submit(series_id, edges[k], edges[k + 1]) for k in range(1, n)]
        parts = [self.simple_part(series_id, edges[0], edges[1])] + [f.result() for f in others]
        return _combined(parts, names)

    def read_range(
        self,
        series_id: int,
        time_range: TimeRange,
        limit: int,
        order: str = "asc",
        offset: int = 0,
    ) -> PointColumns:
        where, params = range_clause(time_range)
        direction = "DESC" if order == "desc" else "ASC"
        cur = self.conn.execute(
            f"SELECT time_us, value, extra FROM points WHERE series_id = ?{where} "
            f"ORDER BY time_us {direction} LIMIT ? OFFSET ?",
            [series_id, *params, limit, offset],
        )
        return _columns(cur.fetchall())

    def read_range_by_value(
        self, series_id: int, time_range: TimeRange, limit: int, order: str = "asc"
    ) -> PointColumns:
        where, params = range_clause(time_range)
        direction = "DESC" if order == "desc" else "ASC"
        cur = self.conn.execute(
            f"SELECT time_us, value, extra FROM points WHERE series_id = ?{where} "
            f"ORDER BY value {direction}, time_us {direction} LIMIT ?",
            [series_id, *params, limit],
        )
        return _columns(cur.fetchall())

    def read_latest(self, series_id: int, n: int) -> PointColumns:
        cur = self.conn.execute(
            "SELECT time_us, value, extra FROM points WHERE series_id = ? "
            "ORDER BY time_us DESC LIMIT ?",
            (series_id, n),
        )
        return _columns(cur.fetchall())

    def count(self, series_id: int, time_range: TimeRange) -> int:
        where, params = range_clause(time_range)
        return int(
            self.conn.execute(
                f"SELECT count(*) FROM points WHERE series_id = ?{where}", [series_id, *params]
            ).fetchone()[0]
        )

    def aggregate(
        self, series_id: int, time_range: TimeRange, aggregates: tuple[str, ...]
    ) -> AggregateRow:
        where, params = range_clause(time_range)
        names, select = simple_select(aggregates)
        row = self._long_simple(series_id, time_range, names) if names else None
        if row is None:
            row = self.conn.execute(
                f"SELECT {select} FROM points WHERE series_id = ?{where}", [series_id, *params]
            ).fetchone()
        values: dict[str, float | int | None] = dict(zip(names, row, strict=False))
        for name, direction in (("first", "ASC"), ("last", "DESC")):
            if name in aggregates:
                found = self.conn.execute(
                    f"SELECT value FROM points WHERE series_id = ?{where} "
                    f"ORDER BY time_us {direction} LIMIT 1",
                    [series_id, *params],
                ).fetchone()
                values[name] = found[0] if found else None
        return AggregateRow(None, values)

    def aggregate_fixed(
        self,
        series_id: int,
        time_range: TimeRange,
        every_us: int,
        origin_us: int,
        aggregates: tuple[str, ...],
    ) -> list[AggregateRow]:
        where, params = range_clause(time_range)
        names, select = simple_select(aggregates)
        bucket = "((time_us - ?) / ?)"
        found: dict[int, dict[str, float | int | None]] = {}
        cur = self.conn.execute(
            f"SELECT {bucket} AS b, {select} FROM points WHERE series_id = ?{where} "
            "GROUP BY b ORDER BY b",
            [origin_us, every_us, series_id, *params],
        )
        for row in cur:
            found[row[0]] = dict(zip(names, row[1:], strict=False))
        for name, direction in (("first", "ASC"), ("last", "DESC")):
            if name in aggregates:
                cur = self.conn.execute(
                    f"SELECT b, value FROM (SELECT {bucket} AS b, value, row_number() OVER "
                    f"(PARTITION BY {bucket} ORDER BY time_us {direction}) AS rn FROM points "
                    f"WHERE series_id = ?{where}) WHERE rn = 1",
                    [origin_us, every_us, origin_us, every_us, series_id, *params],
                )
                for b, value in cur:
                    found[b][name] = value
        return [AggregateRow(origin_us + b * every_us, found[b]) for b in sorted(found)]

    def aggregate_bounds(
        self, series_id: int, bounds: list[int], aggregates: tuple[str, ...]
    ) -> list[AggregateRow]:
        found = []
        for lo, hi in pairwise(bounds):
            window = TimeRange(lo, hi)
            if self.count(series_id, window):
                found.append(AggregateRow(lo, self.aggregate(series_id, window, aggregates).values))
        return found

    def disk_bytes(self) -> int:
        total = 0
        for suffix in ("", "-wal"):
            path = Path(str(self.path) + suffix)
            if path.exists():
                total += path.stat().st_size
        return total


def _columns(found: list[tuple[int, float, str | None]]) -> PointColumns:
    if not found:
        return PointColumns(np.empty(0, np.int64), np.empty(0, np.float64), None)
    times, values, extras = zip(*found, strict=True)
    extra = list(extras) if any(e is not None for e in extras) else None
    return PointColumns(np.array(times, np.int64), np.array(values, np.float64), extra)


def _combined(parts: list[tuple[Any, ...]], names: list[str]) -> list[Any]:
    """min, max, sum, avg and count, as `names` asks, of parts given as (min, max, sum, count)."""
    filled = [p for p in parts if p[3]]
    count = sum(p[3] for p in parts)
    total = sum(p[2] for p in filled) if filled else None
    combined: dict[str, Any] = {
        "min": min(p[0] for p in filled) if filled else None,
        "max": max(p[1] for p in filled) if filled else None,
        "sum": total,
        "avg": total / count if filled and total is not None else None,
        "count": count,
    }
    return [combined[name] for name in names]
