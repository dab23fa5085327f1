"""The shared backend: PostgreSQL, for several Sensorbase nodes on one database.

One writer connection (writer.py), used only by the write queue's thread, reconnects by itself;
reads (reader.py) borrow a pooled connection (pool.py) per statement; the schema is
schema.py's; points are written by append.py. `psycopg` exceptions stop in this package
(errors.py). A write whose commit fails, or whose connection dies on the way, is never
acknowledged: it answers `Unavailable`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager

import numpy as np
import psycopg

from sensorbase.settings import Settings
from sensorbase.storage.postgres import lifecycle, schema
from sensorbase.storage.postgres.errors import translate
from sensorbase.storage.postgres.pool import CONNECT_OPTIONS, Pool
from sensorbase.storage.postgres.reader import PgReader
from sensorbase.storage.postgres.transfer import PgLoader, PgSnapshot
from sensorbase.storage.postgres.writer import PgWriter


class PostgresStore:
    def __init__(self, url: str, settings: Settings) -> None:
        self.url = url
        self.synchronous_commit = "on" if settings.durability == "full" else "off"
        self.pool_size = max(2, settings.database_pool_size)
        self.retention_batch_hours = settings.retention_batch_series_hours
        self.partitioning = "native"
        self._partitions = schema.Partitions()
        self._pool: Pool | None = None
        self._writer: PgWriter | None = None

    def open(self) -> None:
        try:
            with psycopg.connect(
                self.url, autocommit=True, application_name="sensorbase-migrate", **CONNECT_OPTIONS
            ) as conn:
                self.partitioning = schema.migrate(conn)
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

    def retention_lease(self) -> AbstractContextManager[bool]:
        return lifecycle.lease(self.url)

    def expire_apart(
        self, series_ids: list[int], cutoff_us: int, keep_summaries: bool, max_chunks: int
    ) -> tuple[int, int] | None:
        """Expiry in a transaction of its own on a pooled connection, beside the writes: the
        rows it deletes are old ones that no write waits for (MVCC), so the write queue does
        not wait for it either. `max_chunks` as PgWriteTx.expire_points takes it."""
        assert self._pool is not None, "open() the store first"
        hours = self.retention_batch_hours

        def expire(conn: psycopg.Connection) -> tuple[int, int]:
            with conn.transaction():
                return lifecycle.expire(conn, series_ids, cutoff_us, keep_summaries, hours)

        done, points = self._pool.run(expire)
        return (max_chunks if done >= hours else done), points

    def writer(self) -> PgWriter:
        assert self._writer is not None, "open() the store first"
        return self._writer

    def reader(self) -> PgReader:
        assert self._pool is not None, "open() the store first"
        return PgReader(self._pool)

    @contextmanager
    def snapshot(self) -> Iterator[PgSnapshot]:
        """The database at one moment, on a connection of its own (storage/transfer.py)."""
        try:
            found = PgSnapshot(self.url)
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

    def ensure_partitions(self, time_us: np.ndarray) -> None:
        """Create the weekly partitions these times fall in that do not exist yet."""
        if self.partitioning != "native":
            return  # TimescaleDB creates its chunks itself
        needed = np.unique(time_us // schema.PARTITION_US).tolist()
        if all(k in self._partitions.known for k in needed):
            return
        assert self._pool is not None
        self._pool.run(lambda conn: self._partitions.ensure(conn, needed))
