"""The lifecycle's schema step on an existing store, in place: SQLite 5 -> 6, PostgreSQL 4 -> 5.
A store of the earlier schema (made by turning a current one back) keeps its buckets and points,
gains no retention, and can be given one."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import psycopg

from sensorbase.model import ResolvedBatch, TimeRange
from sensorbase.settings import Settings
from sensorbase.storage.base import Store, WriteTx
from sensorbase.storage.postgres import schema as pg_schema
from sensorbase.storage.postgres.store import PostgresStore
from sensorbase.storage.sqlite.schema import LIFECYCLE_VERSION, SCHEMA_VERSION
from sensorbase.storage.sqlite.store import SQLiteStore
from tests.pg import temporary_database
from tests.storage.test_point_chunks_migration import undo_point_chunks

T0 = 1_800_000_000_000_000
# What the lifecycle's step adds: a database of an earlier schema has none of it.
LIFECYCLE_UNDONE = (
    "DROP TABLE point_summaries",
    "ALTER TABLE buckets DROP COLUMN retention_us",
    "ALTER TABLE buckets DROP COLUMN keep_summaries",
)
LIFECYCLE_MIGRATION = next(v for v, step in pg_schema.MIGRATIONS if step is pg_schema._lifecycle)


def fill(store: Store) -> tuple[int, int, int]:
    writer = store.writer()
    tx: WriteTx = writer.begin()
    org = tx.create_org("o", "o")
    bucket = tx.create_bucket(org.id, "b", "b", "", {"site": 1})
    source = tx.create_source(org.id, bucket.id, "dev", "dev", {}, None)
    sid = tx.get_or_create_series(source.id, ["t"])["t"]
    tx.append(ResolvedBatch(np.array([sid] * 3), np.array([T0, T0 + 1, T0 + 2]), np.ones(3), None))
    writer.commit()
    return org.id, bucket.id, sid


def check(store: Store, org_id: int, bucket_id: int, sid: int) -> None:
    reader = store.reader()
    found = reader.get_bucket(org_id, "b")
    assert found is not None and found.meta == {"site": 1}
    assert (found.retention_us, found.keep_summaries) == (None, False)
    assert reader.count(sid, TimeRange(None, None)) == 3
    writer = store.writer()
    tx = writer.begin()
    tx.set_bucket_retention(bucket_id, 86_400_000_000, True)
    writer.commit()
    again = store.reader().get_bucket(org_id, "b")
    assert again is not None and (again.retention_us, again.keep_summaries) == (
        86_400_000_000,
        True,
    )
    assert store.reader().read_summaries(sid, TimeRange(None, None)) == []


def reopened(make: Callable[[], Any], back: Callable[[], None]) -> None:
    store = make()
    store.open()
    ids = fill(store)
    store.close()
    back()
    store = make()
    store.open()
    try:
        check(store, *ids)
    finally:
        store.close()


def test_a_schema_5_sqlite_file_is_migrated_in_place(tmp_path: Path) -> None:
    path = tmp_path / "sb.db"

    def back() -> None:
        with sqlite3.connect(path, isolation_level=None) as conn:
            for statement in LIFECYCLE_UNDONE:
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {LIFECYCLE_VERSION - 1}")

    reopened(lambda: SQLiteStore(path, Settings(data_dir=tmp_path, durability="normal")), back)
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_a_postgresql_database_without_it_is_migrated_in_place(tmp_path: Path) -> None:
    with temporary_database(migrated=False) as url:

        def back() -> None:
            with psycopg.connect(url, autocommit=True) as conn:
                undo_point_chunks(conn)  # the later step's
                for statement in LIFECYCLE_UNDONE:
                    conn.execute(statement)
                conn.execute(
                    "DELETE FROM sensorbase_schema WHERE version = %s", (LIFECYCLE_MIGRATION,)
                )

        reopened(lambda: PostgresStore(url, Settings(data_dir=tmp_path, database_url=url)), back)
