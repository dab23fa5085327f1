"""Schema 2 -> 3 of the embedded store: an old file, opened by several processes at once (the
workers of `serve --workers N`), keeps every row and id, and gives no id twice from then on."""

from __future__ import annotations

import multiprocessing
import sqlite3
from pathlib import Path

import numpy as np

from sensorbase.model import ResolvedBatch, TimeRange
from sensorbase.settings import Settings
from sensorbase.storage.sqlite.schema import CATALOG_TABLES, SCHEMA_VERSION, statements
from sensorbase.storage.sqlite.store import SQLiteStore
from tests.alerts.test_alerts_schema import ALERT_TABLES

# The catalog of schema 2, as Sensorbase made it before AUTOINCREMENT and token generations.
SCHEMA_2 = """
CREATE TABLE orgs (
  id INTEGER PRIMARY KEY, key TEXT NOT NULL UNIQUE, name TEXT NOT NULL, created_us INTEGER NOT NULL
);
CREATE TABLE buckets (
  id INTEGER PRIMARY KEY,
  org_id INTEGER NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
  key TEXT NOT NULL, name TEXT NOT NULL, description TEXT NOT NULL DEFAULT '',
  meta TEXT NOT NULL DEFAULT '{}', created_us INTEGER NOT NULL,
  UNIQUE (org_id, key)
);
CREATE TABLE sources (
  id INTEGER PRIMARY KEY,
  org_id INTEGER NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
  bucket_id INTEGER NOT NULL REFERENCES buckets(id) ON DELETE CASCADE,
  key TEXT NOT NULL, name TEXT NOT NULL, meta TEXT NOT NULL DEFAULT '{}', schema TEXT,
  created_us INTEGER NOT NULL,
  UNIQUE (bucket_id, key)
);
CREATE INDEX sources_org_key ON sources (org_id, key);
CREATE TABLE series (
  id INTEGER PRIMARY KEY,
  source_id INTEGER NOT NULL REFERENCES sources(id) ON DELETE CASCADE,
  field TEXT NOT NULL, unit TEXT, meta TEXT NOT NULL DEFAULT '{}',
  UNIQUE (source_id, field)
);
CREATE TABLE api_keys (
  id INTEGER PRIMARY KEY,
  key_id TEXT NOT NULL UNIQUE,
  org_id INTEGER NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
  name TEXT NOT NULL, scopes TEXT NOT NULL,
  bucket_id INTEGER REFERENCES buckets(id) ON DELETE CASCADE,
  server_admin INTEGER NOT NULL DEFAULT 0,
  created_us INTEGER NOT NULL, revoked_us INTEGER, secret_hash TEXT NOT NULL
);
CREATE TABLE refresh_tokens (
  token_hash TEXT PRIMARY KEY, key_id TEXT NOT NULL, expires_us INTEGER NOT NULL
);
CREATE TABLE users (
  id INTEGER PRIMARY KEY,
  org_id INTEGER NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
  email TEXT NOT NULL UNIQUE COLLATE NOCASE,
  password_hash TEXT NOT NULL,
  role TEXT NOT NULL,
  created_us INTEGER NOT NULL
);
CREATE TABLE groups (
  id INTEGER PRIMARY KEY,
  org_id INTEGER NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
  name TEXT NOT NULL, meta TEXT NOT NULL DEFAULT '{}', created_us INTEGER NOT NULL
);
CREATE TABLE group_members (
  group_id INTEGER NOT NULL REFERENCES groups(id) ON DELETE CASCADE,
  source_id INTEGER NOT NULL REFERENCES sources(id) ON DELETE CASCADE,
  PRIMARY KEY (group_id, source_id)
);
"""
T0 = 1_800_000_000_000_000
OPENERS = 3


def as_schema_2(path: Path) -> None:
    """Turn a current file's catalog back into schema 2's tables, rows and ids kept."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA foreign_keys = OFF")
    conn.execute("BEGIN")
    for table in ALERT_TABLES:  # schema 5's, which schema 2 did not have
        conn.execute(f"DROP TABLE {table}")
    for (index,) in conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL "
        "AND name NOT LIKE 'point%'"
    ).fetchall():
        conn.execute(f"DROP INDEX {index}")
    for table in CATALOG_TABLES:
        conn.execute(f"ALTER TABLE {table} RENAME TO {table}_v3")
    for statement in statements(SCHEMA_2):
        conn.execute(statement)
    for table in CATALOG_TABLES:
        columns = ", ".join(r[1] for r in conn.execute(f"PRAGMA table_info({table})"))
        conn.execute(f"INSERT INTO {table} SELECT {columns} FROM {table}_v3")
        conn.execute(f"DROP TABLE {table}_v3")
    conn.execute("DROP TABLE point_summaries")  # (schema 6's)
    conn.execute("DELETE FROM sqlite_sequence WHERE name != 'point_log'")
    conn.execute("PRAGMA user_version = 2")
    conn.execute("COMMIT")
    conn.close()


def _open_and_close(path: Path) -> None:
    store = SQLiteStore(path, Settings(data_dir=path.parent, durability="normal"))
    store.open()
    store.close()


def test_a_schema_2_file_is_migrated_once_by_one_of_several_processes(tmp_path: Path) -> None:
    path = tmp_path / "sensorbase.db"
    store = SQLiteStore(path, Settings(data_dir=tmp_path, durability="normal"))
    store.open()
    writer = store.writer()
    tx = writer.begin()
    acme = tx.create_org("acme", "Acme")
    gone = tx.create_org("gone", "Gone")
    farm = tx.create_bucket(acme.id, "farm", "Farm", "", {"site": 1})
    sensor = tx.create_source(acme.id, farm.id, "ESP32", "", {}, None)
    sid = tx.get_or_create_series(sensor.id, ["t"])["t"]
    tx.append(ResolvedBatch(np.array([sid] * 3), np.array([T0, T0 + 1, T0 + 2]), np.ones(3), None))
    key = tx.create_key(acme.id, "kacme", "hash", "admin", ("admin",), farm.id, False)
    tx.put_refresh_token("live", "kacme", T0)
    ann = tx.create_user(acme.id, "ann@example.com", "ph", "writer")
    group = tx.create_group(acme.id, "pump", {}, [sensor.id])
    writer.commit()
    store.close()
    as_schema_2(path)
    with sqlite3.connect(path, isolation_level=None) as conn:
        conn.execute("INSERT INTO refresh_tokens VALUES ('orphan', 'kgone', ?)", (T0,))
        # What schema 2 did: the largest id, once deleted, was given again.
        conn.execute("DELETE FROM orgs WHERE id = ?", (gone.id,))
        again = conn.execute("INSERT INTO orgs VALUES (NULL, 'again', '', 0) RETURNING id")
        assert again.fetchone()[0] == gone.id
        conn.execute("DELETE FROM orgs WHERE key = 'again'")

    context = multiprocessing.get_context("spawn")
    openers = [context.Process(target=_open_and_close, args=(path,)) for _ in range(OPENERS)]
    for process in openers:
        process.start()
    for process in openers:
        process.join(60)
    assert [p.exitcode for p in openers] == [0] * OPENERS

    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        made = dict(conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'table'"))
        for table in ("orgs", "buckets", "sources", "series", "api_keys", "users", "groups"):
            assert "AUTOINCREMENT" in made[table], table
        assert not any(name.endswith("_v2") for name in made)
    store.open()
    try:
        reader = store.reader()
        assert reader.get_org("acme") == acme and reader.get_bucket(acme.id, "farm") == farm
        assert reader.get_source(farm.id, "ESP32") == sensor
        assert [s.id for s in reader.list_source_series(sensor.id)] == [sid]
        assert reader.count(sid, TimeRange(None, None)) == 3
        assert reader.get_key("kacme") == key
        assert reader.get_group(acme.id, group.id) == group
        user = reader.get_user("ann@example.com")
        assert user is not None and (user.id, user.role, user.password_hash) == (
            ann.id,
            "writer",
            "ph",
        )
        assert len(user.token_generation) == 32  # given one by the migration
        writer = store.writer()
        tx = writer.begin()
        assert tx.take_refresh_token("live", T0 - 1) == "kacme"
        assert tx.take_refresh_token("orphan", T0 - 1) is None  # its key was gone already
        newest = tx.create_org("newest", "")
        tx.delete_org(newest.id)
        after = tx.create_org("after", "")
        tx.delete_org(acme.id)  # foreign keys hold again: everything of acme goes with it
        writer.commit()
        # An id deleted before the upgrade above every id left cannot be known (and may be
        # given once more: no token of before the upgrade is accepted); none after it.
        assert newest.id == gone.id and after.id > newest.id
        assert reader.get_user("ann@example.com") is None and reader.get_key("kacme") is None
        assert reader.get_series(sid) is None
    finally:
        store.close()
