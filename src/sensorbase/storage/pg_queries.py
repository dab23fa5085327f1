"""PostgreSQL reads: the lookups the reading side and the write transaction share, and the
pooled reader (each statement borrows a connection from `Pool`).

`psycopg` exceptions stop here and in postgres.py (`translate`): a lost connection, a restart, a
pool timeout, a deadlock or a lock timeout become `Unavailable` (503 + Retry-After, retry is
safe); a value the database can never take (out of range, a NUL byte, an index row too large)
`UnprocessableInput` (422: a retry would only fail again); a constraint `Conflict`; anything else
a plain `SensorbaseError`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

import numpy as np
import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout

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
from sensorbase.storage import rows
from sensorbase.storage.sql import range_clause, series_select, simple_select

log = logging.getLogger(__name__)
T = TypeVar("T")

RETRY_AFTER_S = 1
POOL_TIMEOUT_S = 3.0
CONNECT_OPTIONS: dict[str, Any] = {
    "connect_timeout": 5,
    # A dead server or a cut network is noticed within ~20 s even on an idle connection.
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 5,
    "keepalives_count": 2,
}

Params = Sequence[Any]


# SQLSTATE classes whose errors a retry may cure: the connection (08), a rolled-back
# transaction (40: serialization, deadlock), resources (53), an operator (57: shutdown,
# cannot connect now), the system (58: I/O), a lock not granted in time (55P03).
_TRANSIENT = ("08", "40", "53", "57", "58")
# Classes that say the request itself can never be stored: data (22: a value out of range, a
# NUL byte) and program limits (54: an index row too large).
_REFUSED = ("22", "54")


def translate(exc: psycopg.Error) -> SensorbaseError:
    """The Sensorbase error for a driver error: transient faults are 503 (retry is safe and
    may succeed), a value the database can never take is 422 (retrying would loop forever),
    a constraint is 409, anything else 500."""
    state = exc.sqlstate
    if isinstance(exc, psycopg.IntegrityError):
        return Conflict(f"already exists ({exc.diag.message_primary or exc})")
    if state is not None and (state[:2] in _REFUSED):
        return UnprocessableInput(
            f"the database refused a value of this request: {exc.diag.message_primary or exc}"
        )
    if state is None and isinstance(exc, psycopg.DataError):  # refused before it was sent
        return UnprocessableInput(f"the database cannot take a value of this request: {exc}")
    transient = state[:2] in _TRANSIENT or state == "55P03" if state else True
    if transient and isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError):
        return Unavailable(
            "the database is unavailable; retry shortly", retry_after_s=RETRY_AFTER_S
        )
    return SensorbaseError(f"storage error: {exc}")


def holds_nul(params: Params) -> bool:
    """Whether a text parameter holds U+0000, which PostgreSQL text cannot: no row can match
    such a name, so a read answers nothing (as SQLite does) instead of failing."""
    return any(type(p) is str and "\x00" in p for p in params)


@contextmanager
def driver_errors() -> Iterator[None]:
    try:
        yield
    except psycopg.Error as exc:
        raise translate(exc) from None


def _pg(sql: str) -> str:
    """The shared `?` placeholders (storage/sql.py) in psycopg's form."""
    return sql.replace("?", "%s")


class PgQueries:
    """What reading and writing connections both look up; subclasses say where SQL runs."""

    def _all(self, sql: str, params: Params = ()) -> list[tuple[Any, ...]]:
        raise NotImplementedError

    def _one(self, sql: str, params: Params = ()) -> tuple[Any, ...] | None:
        found = self._all(sql, params)
        return found[0] if found else None

    def _scalar(self, sql: str, params: Params = ()) -> Any:
        row = self._one(sql, params)
        assert row is not None
        return row[0]

    def get_setting(self, name: str) -> str | None:
        row = self._one("SELECT value FROM settings WHERE name = %s", (name,))
        return str(row[0]) if row else None

    def get_org(self, key: str) -> Organisation | None:
        row = self._one(f"SELECT {rows.ORG_COLUMNS} FROM orgs WHERE key = %s", (key,))
        return rows.org(row) if row else None

    def get_org_by_id(self, org_id: int) -> Organisation | None:
        row = self._one(f"SELECT {rows.ORG_COLUMNS} FROM orgs WHERE id = %s", (org_id,))
        return rows.org(row) if row else None

    def list_orgs(self) -> list[Organisation]:
        return [rows.org(r) for r in self._all(f"SELECT {rows.ORG_COLUMNS} FROM orgs ORDER BY id")]

    def get_bucket(self, org_id: int, key: str) -> Bucket | None:
        row = self._one(
            f"SELECT {rows.BUCKET_COLUMNS} FROM buckets WHERE org_id = %s AND key = %s",
            (org_id, key),
        )
        return rows.bucket(row) if row else None

    def get_bucket_by_id(self, org_id: int, bucket_id: int) -> Bucket | None:
        row = self._one(
            f"SELECT {rows.BUCKET_COLUMNS} FROM buckets WHERE org_id = %s AND id = %s",
            (org_id, bucket_id),
        )
        return rows.bucket(row) if row else None

    def list_buckets(self, org_id: int, limit: int, offset: int) -> tuple[list[Bucket], int]:
        found = self._all(
            f"SELECT {rows.BUCKET_COLUMNS} FROM buckets WHERE org_id = %s ORDER BY id "
            "LIMIT %s OFFSET %s",
            (org_id, limit, offset),
        )
        total = self._scalar("SELECT count(*) FROM buckets WHERE org_id = %s", (org_id,))
        return [rows.bucket(r) for r in found], int(total)

    def get_source(self, bucket_id: int, key: str) -> Source | None:
        row = self._one(
            f"SELECT {rows.SOURCE_COLUMNS} FROM sources WHERE bucket_id = %s AND key = %s",
            (bucket_id, key),
        )
        return rows.source(row) if row else None

    def find_source(self, org_id: int, key: str) -> Source | None:
        row = self._one(
            f"SELECT {rows.SOURCE_COLUMNS} FROM sources WHERE org_id = %s AND key = %s "
            "ORDER BY id LIMIT 1",
            (org_id, key),
        )
        return rows.source(row) if row else None

    def list_sources(self, bucket_id: int, limit: int, offset: int) -> tuple[list[Source], int]:
        found = self._all(
            f"SELECT {rows.SOURCE_COLUMNS} FROM sources WHERE bucket_id = %s ORDER BY id "
            "LIMIT %s OFFSET %s",
            (bucket_id, limit, offset),
        )
        total = self._scalar("SELECT count(*) FROM sources WHERE bucket_id = %s", (bucket_id,))
        return [rows.source(r) for r in found], int(total)

    def list_series(
        self,
        org_id: int,
        bucket_id: int | None = None,
        source_keys: list[str] | None = None,
        fields: list[str] | None = None,
    ) -> list[SeriesRef]:
        # COLLATE "C": the same byte order as SQLite's, whatever the database's locale.
        sql, params = series_select(org_id, bucket_id, source_keys, fields, ' COLLATE "C"')
        return [SeriesRef(*r) for r in self._all(_pg(sql), params)]

    def get_series(self, series_id: int) -> Series | None:
        row = self._one(f"SELECT {rows.SERIES_COLUMNS} FROM series WHERE id = %s", (series_id,))
        return rows.series(row) if row else None

    def list_source_series(self, source_id: int) -> list[Series]:
        found = self._all(
            f"SELECT {rows.SERIES_COLUMNS} FROM series WHERE source_id = %s "
            'ORDER BY field COLLATE "C"',
            (source_id,),
        )
        return [rows.series(r) for r in found]

    def bucket_stats(self, bucket_id: int) -> dict[str, int]:
        row = self._one(
            "SELECT (SELECT count(*) FROM sources WHERE bucket_id = %s), "
            "(SELECT count(*) FROM points WHERE series_id IN (SELECT se.id FROM series se "
            "JOIN sources so ON so.id = se.source_id WHERE so.bucket_id = %s)), "
            "(SELECT count(*) FROM api_keys WHERE bucket_id = %s AND revoked_us IS NULL)",
            (bucket_id, bucket_id, bucket_id),
        )
        assert row is not None
        return {"sources": int(row[0]), "points": int(row[1]), "keys": int(row[2])}

    def get_key(self, key_id: str) -> ApiKey | None:
        row = self._one(f"SELECT {rows.KEY_COLUMNS} FROM api_keys WHERE key_id = %s", (key_id,))
        return rows.api_key(row) if row else None

    def list_keys(self, org_id: int, bucket_id: int | None = None) -> list[ApiKey]:
        sql = f"SELECT {rows.KEY_COLUMNS} FROM api_keys WHERE org_id = %s"
        params: list[Any] = [org_id]
        if bucket_id is not None:
            sql += " AND bucket_id = %s"
            params.append(bucket_id)
        return [rows.api_key(r) for r in self._all(sql + " ORDER BY id", params)]

    def get_user(self, email: str) -> User | None:
        row = self._one(
            f"SELECT {rows.USER_COLUMNS} FROM users WHERE lower(email) = lower(%s)", (email,)
        )
        return rows.user(row) if row else None

    def get_user_by_id(self, user_id: int) -> User | None:
        row = self._one(f"SELECT {rows.USER_COLUMNS} FROM users WHERE id = %s", (user_id,))
        return rows.user(row) if row else None

    def list_users(self, org_id: int) -> list[User]:
        found = self._all(
            f"SELECT {rows.USER_COLUMNS} FROM users WHERE org_id = %s ORDER BY id", (org_id,)
        )
        return [rows.user(r) for r in found]

    def _groups(self, where: str, params: Params) -> list[Group]:
        found = self._all(
            f"SELECT {rows.GROUP_COLUMNS}, coalesce((SELECT array_agg(m.source_id ORDER BY "
            f"m.source_id) FROM group_members m WHERE m.group_id = groups.id), '{{}}') "
            f"FROM groups WHERE {where} ORDER BY id",
            params,
        )
        return [rows.group(r, tuple(r[5])) for r in found]

    def get_group(self, org_id: int, group_id: int) -> Group | None:
        found = self._groups("org_id = %s AND id = %s", (org_id, group_id))
        return found[0] if found else None

    def list_groups(self, org_id: int) -> list[Group]:
        return self._groups("org_id = %s", (org_id,))

    def get_source_by_id(self, org_id: int, source_id: int) -> Source | None:
        row = self._one(
            f"SELECT {rows.SOURCE_COLUMNS} FROM sources WHERE org_id = %s AND id = %s",
            (org_id, source_id),
        )
        return rows.source(row) if row else None


class Pool:
    """The reading connections of one node, with two habits:

    - a connection the server dropped (restart, terminated backend) is discarded, the other
      idle ones are checked (they likely died together), and the work is tried once more
      (callers pass only work that is safe to repeat);
    - when the database cannot be reached, calls fail fast with `Unavailable` for
      `DOWN_FOR_S` rather than each waiting out the pool's timeout (key lookups run on the
      event loop's thread)."""

    DOWN_FOR_S = 2.0

    def __init__(self, url: str, max_size: int) -> None:
        self.pool = ConnectionPool(
            url,
            min_size=1,
            max_size=max_size,
            kwargs={"autocommit": True, "application_name": "sensorbase", **CONNECT_OPTIONS},
            timeout=POOL_TIMEOUT_S,
            open=False,
            name="sensorbase",
        )
        self._down_until = 0.0

    def open(self) -> None:
        self.pool.open(wait=False)

    def close(self) -> None:
        self.pool.close()

    def run(self, fn: Callable[[psycopg.Connection], T]) -> T:
        if time.monotonic() < self._down_until:
            raise Unavailable(
                "the database is unavailable; retry shortly", retry_after_s=RETRY_AFTER_S
            )
        for attempt in (1, 2):
            lost = False
            try:
                with self.pool.connection() as conn:
                    try:
                        return fn(conn)
                    except psycopg.OperationalError as exc:
                        if not (conn.broken and attempt == 1):
                            raise translate(exc) from None
                        lost = True
                if lost:
                    log.info("a pooled database connection was lost; checking the others")
                    self.pool.check()
            except PoolTimeout as exc:  # no live connection in time: the database is down
                log.warning("the database is unreachable: %s", exc)
                self._down_until = time.monotonic() + self.DOWN_FOR_S
                raise translate(exc) from None
            except psycopg.Error as exc:
                raise translate(exc) from None
        raise AssertionError("unreachable")


class PgReader(PgQueries):
    def __init__(self, pool: Pool) -> None:
        self._pool = pool

    def _all(self, sql: str, params: Params = ()) -> list[tuple[Any, ...]]:
        if holds_nul(params):
            return []  # see holds_nul
        return self._pool.run(lambda conn: conn.execute(sql, params).fetchall())

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
        found = self._all(
            _pg(
                f"SELECT time_us, value, extra FROM points WHERE series_id = ?{where} "
                f"ORDER BY time_us {direction} LIMIT ? OFFSET ?"
            ),
            [series_id, *params, limit, offset],
        )
        return _columns(found)

    def read_range_by_value(
        self, series_id: int, time_range: TimeRange, limit: int, order: str = "asc"
    ) -> PointColumns:
        where, params = range_clause(time_range)
        direction = "DESC" if order == "desc" else "ASC"
        found = self._all(
            _pg(
                f"SELECT time_us, value, extra FROM points WHERE series_id = ?{where} "
                f"ORDER BY value {direction}, time_us {direction} LIMIT ?"
            ),
            [series_id, *params, limit],
        )
        return _columns(found)

    def read_latest(self, series_ids: list[int], n: int) -> list[PointColumns]:
        # One round trip for every series: a lateral index scan from the newest point of each.
        found = self._all(
            "SELECT s.id, p.time_us, p.value, p.extra FROM unnest(%s::bigint[]) AS s(id) "
            "CROSS JOIN LATERAL (SELECT time_us, value, extra FROM points "
            "WHERE series_id = s.id ORDER BY time_us DESC LIMIT %s) AS p",
            (series_ids, n),
        )
        rows: dict[int, list[tuple[Any, ...]]] = {s: [] for s in series_ids}
        for series_id, *point in found:
            rows[series_id].append(tuple(point))
        return [_columns(sorted(rows[s], key=lambda p: -p[0])) for s in series_ids]

    def count(self, series_id: int, time_range: TimeRange) -> int:
        where, params = range_clause(time_range)
        return int(
            self._scalar(
                _pg(f"SELECT count(*) FROM points WHERE series_id = ?{where}"),
                [series_id, *params],
            )
        )

    def aggregate(
        self, series_id: int, time_range: TimeRange, aggregates: tuple[str, ...]
    ) -> AggregateRow:
        where, params = range_clause(time_range)
        names, select = simple_select(aggregates)
        row = self._one(
            _pg(f"SELECT {select} FROM points WHERE series_id = ?{where}"), [series_id, *params]
        )
        assert row is not None
        values: dict[str, float | int | None] = dict(zip(names, row, strict=False))
        for name, direction in (("first", "ASC"), ("last", "DESC")):
            if name in aggregates:
                found = self._one(
                    _pg(
                        f"SELECT value FROM points WHERE series_id = ?{where} "
                        f"ORDER BY time_us {direction} LIMIT 1"
                    ),
                    [series_id, *params],
                )
                values[name] = found[0] if found else None
        return AggregateRow(None, values)

    def _grouped(
        self,
        bucket: str,
        bucket_params: list[Any],
        series_id: int,
        where: str,
        params: list[Any],
        aggregates: tuple[str, ...],
    ) -> dict[int, dict[str, float | int | None]]:
        """Aggregates per bucket number, the bucket being the SQL expression `bucket`."""
        names, select = simple_select(aggregates)
        found: dict[int, dict[str, float | int | None]] = {}
        for row in self._all(
            f"SELECT {bucket} AS b, {select} FROM points WHERE series_id = %s{where} "
            "GROUP BY b ORDER BY b",
            [*bucket_params, series_id, *params],
        ):
            found[int(row[0])] = dict(zip(names, row[1:], strict=False))
        for name, direction in (("first", "ASC"), ("last", "DESC")):
            if name in aggregates:
                for b, value in self._all(
                    f"SELECT DISTINCT ON (b) {bucket} AS b, value FROM points "
                    f"WHERE series_id = %s{where} ORDER BY b, time_us {direction}",
                    [*bucket_params, series_id, *params],
                ):
                    found[int(b)][name] = value
        return found

    def aggregate_fixed(
        self,
        series_id: int,
        time_range: TimeRange,
        every_us: int,
        origin_us: int,
        aggregates: tuple[str, ...],
    ) -> list[AggregateRow]:
        where, params = range_clause(time_range)
        found = self._grouped(
            "((time_us - %s::bigint) / %s::bigint)",
            [origin_us, every_us],
            series_id,
            _pg(where),
            params,
            aggregates,
        )
        return [AggregateRow(origin_us + b * every_us, found[b]) for b in sorted(found)]

    def aggregate_bounds(
        self, series_id: int, bounds: list[int], aggregates: tuple[str, ...]
    ) -> list[AggregateRow]:
        if len(bounds) < 2:
            return []
        # width_bucket numbers [bounds[i], bounds[i+1]) as i + 1.
        found = self._grouped(
            "width_bucket(time_us, %s::bigint[])",
            [list(bounds)],
            series_id,
            " AND time_us >= %s AND time_us < %s",
            [bounds[0], bounds[-1]],
            aggregates,
        )
        return [AggregateRow(bounds[b - 1], found[b]) for b in sorted(found)]

    def disk_bytes(self) -> int:
        return int(self._scalar("SELECT pg_database_size(current_database())"))

    def storage_gauges(self) -> dict[str, tuple[str, float]]:
        return {"storage_bytes": ("Bytes of the PostgreSQL database", self.disk_bytes())}


def _columns(found: list[tuple[Any, ...]]) -> PointColumns:
    if not found:
        return PointColumns(np.empty(0, np.int64), np.empty(0, np.float64), None)
    times, values, extras = zip(*found, strict=True)
    extra = list(extras) if any(e is not None for e in extras) else None
    return PointColumns(np.array(times, np.int64), np.array(values, np.float64), extra)
