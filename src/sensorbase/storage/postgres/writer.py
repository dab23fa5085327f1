"""PostgreSQL's write side: the write queue's one connection (storage/write_queue.py)."""

from __future__ import annotations

import threading
from contextlib import suppress
from typing import TYPE_CHECKING

import psycopg
from psycopg import pq

from sensorbase.errors import Unavailable
from sensorbase.storage.postgres.errors import RETRY_AFTER_S, translate
from sensorbase.storage.postgres.pool import CONNECT_OPTIONS
from sensorbase.storage.postgres.tx import PgWriteTx

if TYPE_CHECKING:
    from sensorbase.storage.postgres.store import PostgresStore

WRITE_TIMEOUT_S = 30


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
            if tx is not None and tx.created and conn.info.server_version >= 150000:
                # The fold helper finds the tables to analyse by their row counts, which an idle
                # backend hands to the statistics up to 10 s late (PGSTAT_IDLE_INTERVAL) when it
                # did within the last second: at this commit instead (PostgreSQL 15 and later).
                conn.execute("SELECT pg_stat_force_next_flush()")
            cur = conn.execute("COMMIT")
        except psycopg.Error as exc:
            self._drop()  # the outcome is unknown: no acknowledgement; the retry is an upsert
            raise translate(exc) from None
        if cur.statusmessage != "COMMIT":
            raise Unavailable(
                "the write transaction was rolled back; retry", retry_after_s=RETRY_AFTER_S
            )
        if tx is not None:
            for logged in tx.logged_rows:
                self.store.log_cache.committed(*logged)
        if tx is not None and self.store.folder is not None:
            if tx.logged:
                self.store.folder.logged(tx.logged)
            if tx.created:  # (catalog rows alone log nothing, yet their tables grow)
                self.store.folder.created(tx.created)

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
