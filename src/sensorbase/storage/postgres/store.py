"""The shared backend: PostgreSQL, for several Sensorbase nodes on one database.

One writer connection (writer.py), used only by the write queue's thread, reconnects by itself;
reads (reader.py) borrow a pooled connection (pool.py) per statement; the schema is
schema.py's; points are logged by log.py and folded into chunks by folder.py's helper
process.
`psycopg` exceptions stop in this package (errors.py). A write whose commit fails, or whose
connection dies on the way, is never acknowledged: it answers `Unavailable`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from functools import partial

import psycopg

from sensorbase.errors import SensorbaseError
from sensorbase.settings import Settings
from sensorbase.storage.postgres import fold, lifecycle, merges, schema
from sensorbase.storage.postgres.errors import translate
from sensorbase.storage.postgres.folder import (
    CLOSE_MERGE_STEPS,
    PgFolder,
    fold_at_close,
    vacuum_log,
)
from sensorbase.storage.postgres.log import PgLogCache
from sensorbase.storage.postgres.pool import CONNECT_OPTIONS, Pool
from sensorbase.storage.postgres.reader import PgReader
from sensorbase.storage.postgres.transfer import PgLoader, PgSnapshot
from sensorbase.storage.postgres.writer import PgWriter

log = logging.getLogger(__name__)


class PostgresStore:
    reads_on_loop = False  # (a read waits for the pool's connection and the server)

    def __init__(self, url: str, settings: Settings) -> None:
        self.url = url
        self.synchronous_commit = "on" if settings.durability == "full" else "off"
        self.pool_size = max(2, settings.database_pool_size)
        self._pool: Pool | None = None
        self._writer: PgWriter | None = None
        self.log_cache = PgLogCache()
        self.folder: PgFolder | None = None

    def open(self) -> None:
        try:
            with psycopg.connect(
                self.url, autocommit=True, application_name="sensorbase-migrate", **CONNECT_OPTIONS
            ) as conn:
                schema.migrate(conn)
        except psycopg.Error as exc:
            raise translate(exc) from None
        self._pool = Pool(self.url, self.pool_size)
        self._pool.open()
        self._writer = PgWriter(self)
        self.folder = PgFolder(self.url)

    def close(self) -> None:
        if self.folder is not None:
            self.folder.close()
            self.folder = None
        if self._writer is not None:
            self._writer._drop()
            self._writer = None
        if self._pool is not None:
            try:
                self._pool.run(fold_at_close)
            except SensorbaseError as exc:  # (left in the log, where reads find the points)
                log.warning("folding the write log at stop failed: %s", exc)
            self._pool.close()
            self._pool = None

    def retention_lease(self) -> AbstractContextManager[bool]:
        return lifecycle.lease(self.url)

    def expire_apart(
        self, series_ids: list[int], cutoff_us: int, keep_summaries: bool, max_chunks: int
    ) -> tuple[int, int] | None:
        """Expiry in a transaction of its own on a pooled connection, beside the writes: it
        changes old chunks only, which no write waits for (writes go to the log), so the
        write queue does not wait for it either (a fold does, for the fold lock)."""
        assert self._pool is not None, "open() the store first"

        def expire(conn: psycopg.Connection) -> tuple[int, int]:
            with conn.transaction():
                return lifecycle.expire(conn, series_ids, cutoff_us, keep_summaries, max_chunks)

        return self._pool.run(expire)

    def fold_points(self) -> int:
        """Fold the write log into chunks now (tools, tests); the points folded."""
        assert self._pool is not None, "open() the store first"

        def fold_now(conn: psycopg.Connection) -> int:
            with conn.transaction():
                fold.lock(conn)
                return fold.fold_all(conn)

        folded = self._pool.run(fold_now)
        self._pool.run(vacuum_log)
        return folded

    def merge_chunks(self, settled: bool = True, most_steps: int = CLOSE_MERGE_STEPS) -> int:
        """Merge small chunks now (merges.py; tools, tests), unless another node holds the
        fold lock; the points merged."""
        assert self._pool is not None, "open() the store first"
        return self._pool.run(partial(merges.merge, settled=settled, most_steps=most_steps))

    def writer(self) -> PgWriter:
        assert self._writer is not None, "open() the store first"
        return self._writer

    def reader(self) -> PgReader:
        assert self._pool is not None, "open() the store first"
        return PgReader(self._pool, self.log_cache)

    @contextmanager
    def snapshot(self) -> Iterator[PgSnapshot]:
        """The database at one moment, on a connection of its own (storage/transfer.py)."""
        try:
            found = PgSnapshot(self.url, self.log_cache)
        except psycopg.Error as exc:
            raise translate(exc) from None
        try:
            yield found
        finally:
            found.close()

    @contextmanager
    def loader(self) -> Iterator[PgLoader]:
        """Catalog rows into the database in one write transaction (storage/transfer.py)."""
        writer = self.writer()
        tx = writer.begin()
        try:
            yield PgLoader(tx.conn)
        except BaseException:
            writer.rollback()
            raise
        writer.commit()
