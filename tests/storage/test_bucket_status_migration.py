"""The bucket status column arrives in place on both backends: a database made before it (SQLite
schema 3, PostgreSQL migration 2) keeps its buckets, every one active, and can archive them. It
is migrated step by step: the alerts' and the lifecycle's steps follow."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from sensorbase.settings import Settings
from sensorbase.storage import open_store
from sensorbase.storage.base import Store
from tests.alerts.test_alerts_schema import ALERT_TABLES
from tests.storage.test_contract import write
from tests.storage.test_lifecycle_migration import LIFECYCLE_UNDONE
from tests.storage.test_point_chunks_migration import undo_point_chunks

# What the later steps add (alert tables, the lifecycle's): a schema 3 database has none of it.
LATER = (*(f"DROP TABLE {table}" for table in ALERT_TABLES), *LIFECYCLE_UNDONE)


def _downgrade_sqlite(path: Path) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("ALTER TABLE buckets DROP COLUMN status")
    for statement in LATER:
        conn.execute(statement)
    conn.execute("PRAGMA user_version = 3")
    conn.close()


def _downgrade_postgres(url: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        undo_point_chunks(conn)
        conn.execute("ALTER TABLE buckets DROP COLUMN status")
        for statement in LATER:
            conn.execute(statement)
        conn.execute("DELETE FROM sensorbase_schema WHERE version >= 3")


def _opened(settings: Settings) -> Store:
    store = open_store(settings)
    store.open()
    return store


def _check(settings: Settings, downgrade: Callable[[], None]) -> None:
    store = _opened(settings)
    org = write(store, lambda tx: tx.create_org("acme", "Acme"))
    made = write(store, lambda tx: tx.create_bucket(org.id, "farm", "Farm", "d", {"a": 1}))
    store.close()
    downgrade()
    store = _opened(settings)
    try:
        found = store.reader().get_bucket(org.id, "farm")
        assert found is not None
        assert (found.id, found.name, found.meta, found.status) == (
            made.id,
            "Farm",
            {"a": 1},
            "active",
        )
        assert (found.retention_us, found.keep_summaries) == (None, False)
        write(store, lambda tx: tx.update_bucket(made.id, status="archived"))
        write(store, lambda tx: tx.set_bucket_retention(made.id, 3_600_000_000, True))
        archived = store.reader().get_bucket(org.id, "farm")
        assert archived is not None
        assert (archived.status, archived.retention_us, archived.keep_summaries) == (
            "archived",
            3_600_000_000,
            True,
        )
    finally:
        store.close()


def test_a_schema_3_sqlite_file_gets_bucket_status(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    _check(settings, lambda: _downgrade_sqlite(tmp_path / "data" / "sensorbase.db"))


def test_a_migration_2_postgres_database_gets_bucket_status(tmp_path: Path) -> None:
    pytest.importorskip("psycopg")
    from tests.pg import temporary_database

    with temporary_database() as url:
        settings = Settings(data_dir=tmp_path / "data", database_url=url)
        _check(settings, lambda: _downgrade_postgres(url))
