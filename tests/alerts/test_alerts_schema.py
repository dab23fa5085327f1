"""The alert tables come to an existing database in place: a SQLite file of schema 3 and a
PostgreSQL database without the alerts migration are migrated when opened, their data kept."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import psycopg

from sensorbase.settings import Settings
from sensorbase.storage import open_store
from sensorbase.storage.postgres import schema as pg_schema
from sensorbase.storage.sqlite import schema as sqlite_schema
from sensorbase.storage.sqlite.store import SQLiteStore
from tests.pg import temporary_database
from tests.storage.test_lifecycle_migration import LIFECYCLE_UNDONE
from tests.storage.test_point_chunks_migration import undo_point_chunks

ALERT_TABLES = ("webhook_deliveries", "webhooks", "alert_events", "alert_states", "alert_rules")


def test_a_schema_3_sqlite_file_gets_the_alert_tables(tmp_path: Path) -> None:
    path = tmp_path / "sensorbase.db"
    settings = Settings(data_dir=tmp_path, durability="normal")
    store = SQLiteStore(path, settings)
    store.open()
    writer = store.writer()
    writer.begin().create_org("acme", "Acme")
    writer.commit()
    store.close()
    with sqlite3.connect(path, isolation_level=None) as conn:
        for table in ALERT_TABLES:
            conn.execute(f"DROP TABLE {table}")
        for statement in LIFECYCLE_UNDONE:  # the later step's (schema 4 had none of it)
            conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {sqlite_schema.ALERTS_VERSION - 1}")
    store = SQLiteStore(path, settings)
    store.open()
    assert store.reader().get_org("acme") is not None
    assert store.reader().list_alert_rules() == []
    store.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == sqlite_schema.SCHEMA_VERSION


def test_a_postgresql_database_gets_the_alert_tables() -> None:
    alerts = [v for v, step in pg_schema.MIGRATIONS if step is pg_schema._alerts]
    with temporary_database() as url:
        store = open_store(Settings(database_url=url))
        store.open()
        writer = store.writer()
        writer.begin().create_org("acme", "Acme")
        writer.commit()
        store.close()
        with psycopg.connect(url, autocommit=True) as conn:
            undo_point_chunks(conn)  # the later migrations'
            for table in ALERT_TABLES:
                conn.execute(f"DROP TABLE {table}")
            for statement in LIFECYCLE_UNDONE:  # the later migration's
                conn.execute(statement)
            conn.execute("DELETE FROM sensorbase_schema WHERE version >= %s", alerts)
        store = open_store(Settings(database_url=url))
        store.open()
        assert store.reader().get_org("acme") is not None
        assert store.reader().list_webhooks() == []
        store.close()
