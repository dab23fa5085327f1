"""The shared backend: PostgreSQL, for several Sensorbase nodes on one database.

One writer connection, used only by the ingest committer's thread, reconnects by itself; reads
(pg_queries.py) borrow a pooled connection per statement; the schema is pg_schema.py's.
Points arrive by binary COPY into a session-local staging table and move into the partitioned
`points` table with one statement (a plain INSERT for new points, else INSERT ... ON CONFLICT
DO UPDATE), so a repeated (series, time) replaces the stored point and, within a batch, the
last write wins.

`psycopg` exceptions stop in these modules (see pg_queries.translate). A write whose commit
fails, or whose connection dies on the way, is never acknowledged: it answers `Unavailable`.
"""

from __future__ import annotations

import logging
import struct
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

import numpy as np
import psycopg
from psycopg import pq

from sensorbase.errors import Unavailable
from sensorbase.model import (
    ApiKey,
    Bucket,
    FieldSpec,
    Group,
    Organisation,
    ResolvedBatch,
    Scope,
    Source,
    User,
)
from sensorbase.settings import Settings
from sensorbase.storage import pg_schema, rows
from sensorbase.storage.pg_queries import (
    CONNECT_OPTIONS,
    RETRY_AFTER_S,
    Params,
    PgQueries,
    PgReader,
    Pool,
    driver_errors,
    holds_nul,
    translate,
)
from sensorbase.times import now_us

log = logging.getLogger(__name__)

WRITE_TIMEOUT_S = 30

# Binary COPY of (series_id, time_us, value): a header, then per row a field count and each
# field as a length and big-endian bytes; built for the whole batch at once by numpy.
_COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
_COPY_TRAILER = struct.pack(">h", -1)
_COPY_ROW = np.dtype(
    [
        ("fields", ">i2"),
        ("sid_len", ">i4"),
        ("sid", ">i8"),
        ("time_len", ">i4"),
        ("time", ">i8"),
        ("value_len", ">i4"),
        ("value", ">f8"),
    ]
)
_STAGE = (
    "CREATE TEMP TABLE IF NOT EXISTS points_stage "
    "(series_id BIGINT, time_us BIGINT, value DOUBLE PRECISION, extra TEXT) "
    "ON COMMIT DELETE ROWS"
)
_INSERT = (
    "INSERT INTO points (series_id, time_us, value, extra) "
    "SELECT series_id, time_us, value, extra FROM points_stage"
)
_MERGE = (
    _INSERT + " ON CONFLICT (series_id, time_us) "
    "DO UPDATE SET value = EXCLUDED.value, extra = EXCLUDED.extra"
)
# Does any stored point of these series lie inside the batch's time span for that series?
# One index probe per series; when none does, the batch can only be new points.
_OVERLAP = (
    "SELECT 1 FROM unnest(%s::bigint[], %s::bigint[], %s::bigint[]) AS s(sid, lo, hi) "
    "WHERE EXISTS (SELECT 1 FROM points p WHERE p.series_id = s.sid "
    "AND p.time_us >= s.lo AND p.time_us <= s.hi) LIMIT 1"
)


def copy_buffer(series_id: np.ndarray, time_us: np.ndarray, value: np.ndarray) -> bytes:
    """The binary COPY stream of three columns, built without a Python loop."""
    out = np.empty(len(time_us), _COPY_ROW)
    out["fields"] = 3
    out["sid_len"] = 8
    out["sid"] = series_id
    out["time_len"] = 8
    out["time"] = time_us
    out["value_len"] = 8
    out["value"] = value
    return _COPY_HEADER + out.tobytes() + _COPY_TRAILER


class PgWriteTx(PgQueries):
    """One write transaction. Appended points are held and written once, at commit, for the
    whole group: one COPY and one INSERT instead of ~8 round trips per job (a group commit of
    32 one-point writes went from ~100 ms to a few ms). Deletes write the held points first,
    so that they delete them too."""

    def __init__(self, conn: psycopg.Connection, store: PostgresStore) -> None:
        self.conn = conn
        self.store = store
        self._savepoints = 0
        self._pending: list[ResolvedBatch] = []

    def _all(self, sql: str, params: Params = ()) -> list[tuple[Any, ...]]:
        if holds_nul(params) and sql.lstrip()[:6].upper() == "SELECT":
            return []  # no row holds it (a write of it is refused: 422)
        with driver_errors():
            cur = self.conn.execute(sql, params)
            return cur.fetchall() if cur.description is not None else []

    def _run(self, sql: str, params: Params = ()) -> None:
        with driver_errors():
            self.conn.execute(sql, params)

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        self._savepoints += 1
        name = f"sp{self._savepoints}"
        held = list(self._pending)
        self._run(f"SAVEPOINT {name}")
        try:
            with driver_errors():
                yield
        except BaseException:
            self._pending = held
            self._run(f"ROLLBACK TO SAVEPOINT {name}")
            self._run(f"RELEASE SAVEPOINT {name}")
            raise
        self._run(f"RELEASE SAVEPOINT {name}")

    def _insert(self, sql: str, params: Params) -> int:
        return int(self._scalar(sql + " RETURNING id", params))

    def create_org(self, key: str, name: str) -> Organisation:
        created = now_us()
        org_id = self._insert(
            "INSERT INTO orgs (key, name, created_us) VALUES (%s, %s, %s)", (key, name, created)
        )
        return Organisation(org_id, key, name, created)

    def delete_org(self, org_id: int) -> None:
        self.flush()
        self._run(
            "DELETE FROM points WHERE series_id IN (SELECT se.id FROM series se "
            "JOIN sources so ON so.id = se.source_id WHERE so.org_id = %s)",
            (org_id,),
        )
        self._run("DELETE FROM orgs WHERE id = %s", (org_id,))

    def create_bucket(
        self, org_id: int, key: str, name: str, description: str, meta: dict[str, Any]
    ) -> Bucket:
        created = now_us()
        bucket_id = self._insert(
            "INSERT INTO buckets (org_id, key, name, description, meta, created_us) "
            "VALUES (%s, %s, %s, %s, %s, %s)",
            (org_id, key, name, description, rows.dump_json(meta), created),
        )
        return Bucket(bucket_id, org_id, key, name, description, meta, created)

    def update_bucket(self, bucket_id: int, *, meta: dict[str, Any]) -> None:
        self._run("UPDATE buckets SET meta = %s WHERE id = %s", (rows.dump_json(meta), bucket_id))

    def delete_bucket(self, bucket_id: int) -> None:
        self.flush()
        self._run(
            "DELETE FROM points WHERE series_id IN (SELECT se.id FROM series se "
            "JOIN sources so ON so.id = se.source_id WHERE so.bucket_id = %s)",
            (bucket_id,),
        )
        self._run("DELETE FROM buckets WHERE id = %s", (bucket_id,))

    def create_source(
        self,
        org_id: int,
        bucket_id: int,
        key: str,
        name: str,
        meta: dict[str, Any],
        schema: dict[str, FieldSpec] | None,
    ) -> Source:
        created = now_us()
        source_id = self._insert(
            "INSERT INTO sources (org_id, bucket_id, key, name, meta, schema, created_us) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s)",
            (org_id, bucket_id, key, name, rows.dump_json(meta), rows.dump_schema(schema), created),
        )
        return Source(source_id, org_id, bucket_id, key, name, meta, schema, created)

    def update_source(
        self,
        source_id: int,
        *,
        name: str | None = None,
        meta: dict[str, Any] | None = None,
        schema: dict[str, FieldSpec] | None = None,
    ) -> None:
        if name is not None:
            self._run("UPDATE sources SET name = %s WHERE id = %s", (name, source_id))
        if meta is not None:
            self._run(
                "UPDATE sources SET meta = %s WHERE id = %s", (rows.dump_json(meta), source_id)
            )
        if schema is not None:
            self._run(
                "UPDATE sources SET schema = %s WHERE id = %s",
                (rows.dump_schema(schema), source_id),
            )

    def delete_source(self, source_id: int) -> None:
        self.flush()
        self._run(
            "DELETE FROM points WHERE series_id IN (SELECT id FROM series WHERE source_id = %s)",
            (source_id,),
        )
        self._run("DELETE FROM sources WHERE id = %s", (source_id,))

    def get_or_create_source(self, org_id: int, bucket_id: int, key: str) -> Source:
        # Race-safe across nodes: a concurrent insert of the same key makes this one wait for
        # the other transaction, then find its row instead of failing.
        row = self._one(
            "INSERT INTO sources (org_id, bucket_id, key, name, meta, schema, created_us) "
            "VALUES (%s, %s, %s, %s, '{}', NULL, %s) ON CONFLICT (bucket_id, key) DO NOTHING "
            f"RETURNING {rows.SOURCE_COLUMNS}",
            (org_id, bucket_id, key, key, now_us()),
        )
        if row is not None:
            return rows.source(row)
        found = self.get_source(bucket_id, key)
        assert found is not None
        return found

    def get_or_create_series(
        self,
        source_id: int,
        fields: list[str],
        units: dict[str, str | None] | None = None,
        metas: dict[str, dict[str, Any]] | None = None,
    ) -> dict[str, int]:
        units, metas = units or {}, metas or {}
        names = sorted(set(fields))  # one lock order on every node
        self._run(
            "INSERT INTO series (source_id, field, unit, meta) "
            "SELECT %s, f, u, m FROM unnest(%s::text[], %s::text[], %s::text[]) AS x(f, u, m) "
            "ON CONFLICT (source_id, field) DO NOTHING",
            (
                source_id,
                names,
                [units.get(f) for f in names],
                [rows.dump_json(metas.get(f, {})) for f in names],
            ),
        )
        found = self._all(
            "SELECT field, id FROM series WHERE source_id = %s AND field = ANY(%s)",
            (source_id, names),
        )
        return {str(f): int(i) for f, i in found}

    def update_series(self, series_id: int, *, meta: dict[str, Any]) -> None:
        self._run("UPDATE series SET meta = %s WHERE id = %s", (rows.dump_json(meta), series_id))

    def create_key(
        self,
        org_id: int,
        key_id: str,
        secret_hash: str,
        name: str,
        scopes: tuple[Scope, ...],
        bucket_id: int | None,
        server_admin: bool,
    ) -> ApiKey:
        created = now_us()
        row_id = self._insert(
            "INSERT INTO api_keys (key_id, org_id, name, scopes, bucket_id, server_admin, "
            "created_us, secret_hash) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
            (key_id, org_id, name, ",".join(scopes), bucket_id, server_admin, created, secret_hash),
        )
        return ApiKey(
            row_id,
            key_id,
            org_id,
            name,
            scopes,
            bucket_id,
            server_admin,
            created,
            None,
            secret_hash,
        )

    def revoke_key(self, key_id: str, at_us: int) -> None:
        self._run(
            "UPDATE api_keys SET revoked_us = %s WHERE key_id = %s AND revoked_us IS NULL",
            (at_us, key_id),
        )
        self._run("DELETE FROM refresh_tokens WHERE key_id = %s", (key_id,))

    def put_refresh_token(self, token_hash: str, key_id: str, expires_us: int) -> None:
        self._run(
            "INSERT INTO refresh_tokens (token_hash, key_id, expires_us) VALUES (%s, %s, %s)",
            (token_hash, key_id, expires_us),
        )

    def take_refresh_token(self, token_hash: str, now_us: int) -> str | None:
        row = self._one(
            "DELETE FROM refresh_tokens WHERE token_hash = %s RETURNING key_id, expires_us",
            (token_hash,),
        )
        self._run("DELETE FROM refresh_tokens WHERE expires_us < %s", (now_us,))
        if row is None or row[1] < now_us:
            return None
        return str(row[0])

    def create_user(self, org_id: int, email: str, password_hash: str, role: str) -> User:
        created = now_us()
        generation = rows.new_token_generation()
        user_id = self._insert(
            "INSERT INTO users (org_id, email, password_hash, role, created_us, token_generation) "
            "VALUES (%s, %s, %s, %s, %s, %s)",
            (org_id, email, password_hash, role, created, generation),
        )
        return rows.user((user_id, org_id, email, role, created, password_hash, generation))

    def update_user(
        self, user_id: int, *, role: str | None = None, password_hash: str | None = None
    ) -> User | None:
        row = self._one(
            "UPDATE users SET role = coalesce(%s, role), "
            "password_hash = coalesce(%s, password_hash), token_generation = %s "
            f"WHERE id = %s RETURNING {rows.USER_COLUMNS}",
            (role, password_hash, rows.new_token_generation(), user_id),
        )
        return rows.user(row) if row else None

    def delete_user(self, user_id: int) -> None:
        self._run("DELETE FROM users WHERE id = %s", (user_id,))

    def create_group(
        self, org_id: int, name: str, meta: dict[str, Any], source_ids: list[int]
    ) -> Group:
        created = now_us()
        group_id = self._insert(
            "INSERT INTO groups (org_id, name, meta, created_us) VALUES (%s, %s, %s, %s)",
            (org_id, name, rows.dump_json(meta), created),
        )
        self.set_group_members(group_id, source_ids)
        return Group(group_id, org_id, name, meta, created, tuple(sorted(set(source_ids))))

    def set_group_members(self, group_id: int, source_ids: list[int]) -> None:
        self._run("DELETE FROM group_members WHERE group_id = %s", (group_id,))
        self._run(
            "INSERT INTO group_members (group_id, source_id) "
            "SELECT %s, s FROM unnest(%s::bigint[]) AS s ON CONFLICT DO NOTHING",
            (group_id, list(source_ids)),
        )

    def delete_group(self, group_id: int) -> None:
        self._run("DELETE FROM groups WHERE id = %s", (group_id,))

    def put_setting(self, name: str, value: str) -> str:
        self._run(
            "INSERT INTO settings (name, value) VALUES (%s, %s) ON CONFLICT (name) DO NOTHING",
            (name, value),
        )
        stored = self.get_setting(name)
        assert stored is not None
        return stored

    def set_setting(self, name: str, value: str) -> None:
        self._run(
            "INSERT INTO settings (name, value) VALUES (%s, %s) "
            "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
            (name, value),
        )

    def append(self, batch: ResolvedBatch) -> None:
        if len(batch.time_us):
            self._pending.append(batch)

    def flush(self) -> None:
        """Write the held points (the writer calls this just before COMMIT)."""
        if not self._pending:
            return
        batches, self._pending = self._pending, []
        extra: list[str | None] | None = None
        if any(b.extra for b in batches):
            extra = [e for b in batches for e in (b.extra or [None] * len(b.time_us))]
        self._write(
            ResolvedBatch(
                np.concatenate([b.series_id for b in batches]),
                np.concatenate([b.time_us for b in batches]),
                np.concatenate([b.value for b in batches]),
                extra,
            )
        )

    def _write(self, batch: ResolvedBatch) -> None:
        n = len(batch.time_us)
        # Sort by key (near-sequential index inserts) and keep the last of equal keys: ON
        # CONFLICT DO UPDATE may touch a row once per statement, and the last write wins.
        # lexsort is stable, so among equal keys the batch order survives.
        order = np.lexsort((batch.time_us, batch.series_id))
        series_id = batch.series_id[order]
        time_us = batch.time_us[order]
        last = np.ones(n, bool)
        last[:-1] = (series_id[1:] != series_id[:-1]) | (time_us[1:] != time_us[:-1])
        if not last.all():
            order, series_id, time_us = order[last], series_id[last], time_us[last]
        value = batch.value[order]
        self.store.ensure_partitions(time_us)
        with driver_errors():
            cur = self.conn.cursor()
            if batch.extra is None:
                with cur.copy(
                    "COPY points_stage (series_id, time_us, value) FROM STDIN (FORMAT BINARY)"
                ) as copy:
                    copy.write(copy_buffer(series_id, time_us, value))
            else:
                extras = [batch.extra[i] for i in order.tolist()]
                with cur.copy(
                    "COPY points_stage (series_id, time_us, value, extra) "
                    "FROM STDIN (FORMAT BINARY)"
                ) as copy:
                    copy.set_types(["int8", "int8", "float8", "text"])
                    for row in zip(
                        series_id.tolist(), time_us.tolist(), value.tolist(), extras, strict=True
                    ):
                        copy.write_row(row)
            self._move_staged(cur, series_id, time_us)
            cur.execute("DELETE FROM points_stage")

    def _move_staged(
        self, cur: psycopg.Cursor[Any], series_id: np.ndarray, time_us: np.ndarray
    ) -> None:
        """Staged points into `points`. ON CONFLICT DO UPDATE costs ~1.8x a plain INSERT, so
        a batch that overlaps nothing stored (the usual: new readings) is inserted plainly,
        in a savepoint: should another node store one of its points meanwhile, the unique
        violation sends it down the upsert path after all."""
        first = np.flatnonzero(np.r_[True, series_id[1:] != series_id[:-1]])
        last = np.r_[first[1:] - 1, len(series_id) - 1]
        span = (series_id[first].tolist(), time_us[first].tolist(), time_us[last].tolist())
        if cur.execute(_OVERLAP, span).fetchone() is None:
            cur.execute("SAVEPOINT sb_append")
            try:
                cur.execute(_INSERT)
            except psycopg.errors.UniqueViolation:
                cur.execute("ROLLBACK TO SAVEPOINT sb_append")
            else:
                cur.execute("RELEASE SAVEPOINT sb_append")
                return
            cur.execute("RELEASE SAVEPOINT sb_append")
        cur.execute(_MERGE)


class PgWriter:
    """The committer's connection: one transaction at a time; reconnects when it was lost.
    A commit is several round trips to the server: it runs on the committer's own thread."""

    inline = False

    def __init__(self, store: PostgresStore) -> None:
        self.store = store
        self.conn: psycopg.Connection | None = None
        self._lock = threading.Lock()
        self._tx: PgWriteTx | None = None

    def _connect(self) -> psycopg.Connection:
        conn = psycopg.connect(
            self.store.url,
            autocommit=True,
            application_name="sensorbase-writer",
            **CONNECT_OPTIONS,
        )
        if self.store.synchronous_commit == "off":
            conn.execute("SET synchronous_commit = off")
        # A write stuck behind a lock answers 503 rather than hanging its requests forever.
        conn.execute(f"SET statement_timeout = '{WRITE_TIMEOUT_S}s'")
        conn.execute(_STAGE)
        return conn

    def _usable(self) -> psycopg.Connection | None:
        conn = self.conn
        if conn is None or conn.closed or conn.broken:
            return None
        return conn

    def _drop(self) -> None:
        if self.conn is not None:
            with suppress(psycopg.Error):  # it is being dropped anyway
                self.conn.close()
            self.conn = None

    def begin(self) -> PgWriteTx:
        conn = self._usable()
        if conn is not None:
            try:
                conn.execute("BEGIN")
                self._tx = PgWriteTx(conn, self.store)
                return self._tx
            except (psycopg.OperationalError, psycopg.InterfaceError):
                self._drop()  # it died while idle: nothing was done yet, so reconnect
            except psycopg.Error as exc:
                self._drop()
                raise translate(exc) from None
        try:
            conn = self.conn = self._connect()
            conn.execute("BEGIN")
        except psycopg.Error as exc:
            self._drop()
            raise translate(exc) from None
        self._tx = PgWriteTx(conn, self.store)
        return self._tx

    def commit(self, durable: bool = True) -> None:
        """Durable on return (PostgreSQL's own commit), whatever `durable` says."""
        tx, self._tx = self._tx, None
        if tx is not None:
            tx.flush()  # a failure here fails the group: the committer rolls back
        conn = self._usable()
        if conn is None:
            raise Unavailable(
                "the database connection was lost; retry", retry_after_s=RETRY_AFTER_S
            )
        if conn.info.transaction_status != pq.TransactionStatus.INTRANS:
            # An aborted transaction would "commit" as a rollback: never acknowledge that.
            self.rollback()
            raise Unavailable("the write transaction failed; retry", retry_after_s=RETRY_AFTER_S)
        try:
            cur = conn.execute("COMMIT")
        except psycopg.Error as exc:
            self._drop()  # the outcome is unknown: no acknowledgement; the retry is an upsert
            raise translate(exc) from None
        if cur.statusmessage != "COMMIT":
            raise Unavailable(
                "the write transaction was rolled back; retry", retry_after_s=RETRY_AFTER_S
            )

    def rollback(self) -> None:
        self._tx = None
        conn = self._usable()
        if conn is None:
            self._drop()
            return
        if conn.info.transaction_status in (
            pq.TransactionStatus.INTRANS,
            pq.TransactionStatus.INERROR,
        ):
            try:
                conn.execute("ROLLBACK")
            except psycopg.Error:
                self._drop()


class PostgresStore:
    def __init__(self, url: str, settings: Settings) -> None:
        self.url = url
        self.synchronous_commit = "on" if settings.durability == "full" else "off"
        self.pool_size = max(2, settings.database_pool_size)
        self.partitioning = "native"
        self._partitions = pg_schema.Partitions()
        self._pool: Pool | None = None
        self._writer: PgWriter | None = None

    def open(self) -> None:
        try:
            with psycopg.connect(
                self.url, autocommit=True, application_name="sensorbase-migrate", **CONNECT_OPTIONS
            ) as conn:
                self.partitioning = pg_schema.migrate(conn)
                if self.partitioning == "native":
                    self._partitions.load(conn)
        except psycopg.Error as exc:
            raise translate(exc) from None
        self._pool = Pool(self.url, self.pool_size)
        self._pool.open()
        self._writer = PgWriter(self)

    def close(self) -> None:
        if self._writer is not None:
            self._writer._drop()
            self._writer = None
        if self._pool is not None:
            self._pool.close()
            self._pool = None

    def writer(self) -> PgWriter:
        assert self._writer is not None, "open() the store first"
        return self._writer

    def reader(self) -> PgReader:
        assert self._pool is not None, "open() the store first"
        return PgReader(self._pool)

    def ensure_partitions(self, time_us: np.ndarray) -> None:
        """Create the weekly partitions these times fall in that do not exist yet."""
        if self.partitioning != "native":
            return  # TimescaleDB creates its chunks itself
        needed = np.unique(time_us // pg_schema.PARTITION_US).tolist()
        if all(k in self._partitions.known for k in needed):
            return
        assert self._pool is not None
        self._pool.run(lambda conn: self._partitions.ensure(conn, needed))
