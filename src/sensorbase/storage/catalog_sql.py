"""The catalog's SQL, written once for every backend.

Parameters are `?`; PostgreSQL's backend rewrites a statement to psycopg's `%s` the first time
it runs it (postgres/reader.py `pg_sql`). New ids come back through `RETURNING` and a write
that may meet an existing row says `ON CONFLICT`, which SQLite has understood since 3.35 and
PostgreSQL since 9.5, so neither backend needs `lastrowid` or `INSERT OR IGNORE`. Where the
two must differ (a collation, a case-insensitive match), the backend overrides the one
statement in storage/catalog_queries.py and says why.
"""

from __future__ import annotations

from sensorbase.storage.rows import (
    BUCKET_COLUMNS,
    GROUP_COLUMNS,
    KEY_COLUMNS,
    ORG_COLUMNS,
    SERIES_COLUMNS,
    SOURCE_COLUMNS,
    USER_COLUMNS,
)

SETTING = "SELECT value FROM settings WHERE name = ?"
INSERT_SETTING_IF_NEW = "INSERT INTO settings (name, value) VALUES (?, ?) ON CONFLICT DO NOTHING"
SET_SETTING = (
    "INSERT INTO settings (name, value) VALUES (?, ?) "
    "ON CONFLICT (name) DO UPDATE SET value = excluded.value"
)

ORG_BY_KEY = f"SELECT {ORG_COLUMNS} FROM orgs WHERE key = ?"
ORG_BY_ID = f"SELECT {ORG_COLUMNS} FROM orgs WHERE id = ?"
ORGS = f"SELECT {ORG_COLUMNS} FROM orgs ORDER BY id"
INSERT_ORG = "INSERT INTO orgs (key, name, created_us) VALUES (?, ?, ?) RETURNING id"
DELETE_ORG = "DELETE FROM orgs WHERE id = ?"

BUCKET_BY_KEY = f"SELECT {BUCKET_COLUMNS} FROM buckets WHERE org_id = ? AND key = ?"
BUCKET_BY_ID = f"SELECT {BUCKET_COLUMNS} FROM buckets WHERE org_id = ? AND id = ?"
BUCKETS_PAGE = f"SELECT {BUCKET_COLUMNS} FROM buckets WHERE org_id = ? ORDER BY id LIMIT ? OFFSET ?"
BUCKETS_COUNT = "SELECT count(*) FROM buckets WHERE org_id = ?"
INSERT_BUCKET = (
    "INSERT INTO buckets (org_id, key, name, description, meta, created_us) "
    "VALUES (?, ?, ?, ?, ?, ?) RETURNING id"
)
UPDATE_BUCKET_META = "UPDATE buckets SET meta = ? WHERE id = ?"
UPDATE_BUCKET_NAME = "UPDATE buckets SET name = ? WHERE id = ?"
UPDATE_BUCKET_DESCRIPTION = "UPDATE buckets SET description = ? WHERE id = ?"
UPDATE_BUCKET_STATUS = "UPDATE buckets SET status = ? WHERE id = ?"
UPDATE_BUCKET_RETENTION = "UPDATE buckets SET retention_us = ?, keep_summaries = ? WHERE id = ?"
RETENTION_BUCKETS = (
    f"SELECT {BUCKET_COLUMNS} FROM buckets WHERE retention_us IS NOT NULL ORDER BY id"
)
# (%s: as many ? as ids)
SERIES_LIFECYCLE = (
    "SELECT se.id, b.retention_us, b.keep_summaries FROM series se "
    "JOIN sources so ON so.id = se.source_id JOIN buckets b ON b.id = so.bucket_id "
    "WHERE b.retention_us IS NOT NULL AND se.id IN (%s)"
)
SUMMARIES = (
    "SELECT start_us, end_us, count, min, max, sum, first, last FROM point_summaries "
    "WHERE series_id = ?"
)
DELETE_BUCKET = "DELETE FROM buckets WHERE id = ?"

SOURCE_BY_KEY = f"SELECT {SOURCE_COLUMNS} FROM sources WHERE bucket_id = ? AND key = ?"
# An organisation's sources are found through its buckets (an index range of sources'
# UNIQUE (bucket_id, key) each): schema 10 dropped the index of sources by organisation.
SOURCE_IN_ORG = (
    f"SELECT {SOURCE_COLUMNS} FROM sources WHERE bucket_id IN "
    "(SELECT id FROM buckets WHERE org_id = ?) AND key = ? ORDER BY id LIMIT 1"
)
SOURCE_BY_ID = f"SELECT {SOURCE_COLUMNS} FROM sources WHERE org_id = ? AND id = ?"
SOURCES_PAGE = (
    f"SELECT {SOURCE_COLUMNS} FROM sources WHERE bucket_id = ? ORDER BY id LIMIT ? OFFSET ?"
)
SOURCES_COUNT = "SELECT count(*) FROM sources WHERE bucket_id = ?"
INSERT_SOURCE = (
    "INSERT INTO sources (org_id, bucket_id, key, name, meta, schema, created_us) "
    "VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id"
)
# Race-safe across nodes: a concurrent insert of the same key makes this one wait for the
# other transaction, then insert nothing (the caller then finds the other's row).
INSERT_SOURCE_IF_NEW = (
    "INSERT INTO sources (org_id, bucket_id, key, name, meta, schema, created_us) "
    "VALUES (?, ?, ?, ?, '{}', NULL, ?) ON CONFLICT (bucket_id, key) DO NOTHING"
)
UPDATE_SOURCE_NAME = "UPDATE sources SET name = ? WHERE id = ?"
UPDATE_SOURCE_META = "UPDATE sources SET meta = ? WHERE id = ?"
UPDATE_SOURCE_SCHEMA = "UPDATE sources SET schema = ? WHERE id = ?"
DELETE_SOURCE = "DELETE FROM sources WHERE id = ?"

SERIES_BY_ID = f"SELECT {SERIES_COLUMNS} FROM series WHERE id = ?"
SOURCE_SERIES = f"SELECT {SERIES_COLUMNS} FROM series WHERE source_id = ? ORDER BY field"
INSERT_SERIES_IF_NEW = (
    "INSERT INTO series (source_id, field, unit, meta) VALUES (?, ?, ?, ?) "
    "ON CONFLICT (source_id, field) DO NOTHING"
)
UPDATE_SERIES_META = "UPDATE series SET meta = ? WHERE id = ?"


def sources_by_keys(keys: int) -> str:
    """The sources of one bucket among `keys` named keys."""
    return f"SELECT {SOURCE_COLUMNS} FROM sources WHERE bucket_id = ? AND key IN ({_marks(keys)})"


def series_of_sources(sources: int) -> str:
    """Every series of `sources` sources: (source_id, field, id) rows."""
    return f"SELECT source_id, field, id FROM series WHERE source_id IN ({_marks(sources)})"


def _marks(n: int) -> str:
    return ",".join("?" * n)


# The series whose points go with an organisation, a bucket or a source (one parameter).
SERIES_OF_ORG = (
    "SELECT se.id FROM series se JOIN sources so ON so.id = se.source_id "
    "WHERE so.bucket_id IN (SELECT id FROM buckets WHERE org_id = ?)"
)
SERIES_OF_BUCKET = (
    "SELECT se.id FROM series se JOIN sources so ON so.id = se.source_id WHERE so.bucket_id = ?"
)
SERIES_OF_SOURCE = "SELECT id FROM series WHERE source_id = ?"

KEY_BY_ID = f"SELECT {KEY_COLUMNS} FROM api_keys WHERE key_id = ?"
KEYS_OF_ORG = f"SELECT {KEY_COLUMNS} FROM api_keys WHERE org_id = ? ORDER BY id"
KEYS_OF_BUCKET = (
    f"SELECT {KEY_COLUMNS} FROM api_keys WHERE org_id = ? AND bucket_id = ? ORDER BY id"
)
INSERT_KEY = (
    "INSERT INTO api_keys (key_id, org_id, name, scopes, bucket_id, server_admin, "
    "created_us, secret_hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id"
)
REVOKE_KEY = "UPDATE api_keys SET revoked_us = ? WHERE key_id = ? AND revoked_us IS NULL"

INSERT_REFRESH_TOKEN = (
    "INSERT INTO refresh_tokens (token_hash, key_id, expires_us) VALUES (?, ?, ?)"
)
TAKE_REFRESH_TOKEN = "DELETE FROM refresh_tokens WHERE token_hash = ? RETURNING key_id, expires_us"
DELETE_REFRESH_TOKENS_OF_KEY = "DELETE FROM refresh_tokens WHERE key_id = ?"
DELETE_EXPIRED_REFRESH_TOKENS = "DELETE FROM refresh_tokens WHERE expires_us < ?"

USER_BY_EMAIL = f"SELECT {USER_COLUMNS} FROM users WHERE email = ?"
USER_BY_ID = f"SELECT {USER_COLUMNS} FROM users WHERE id = ?"
USERS_OF_ORG = f"SELECT {USER_COLUMNS} FROM users WHERE org_id = ? ORDER BY id"
INSERT_USER = (
    "INSERT INTO users (org_id, email, password_hash, role, created_us, token_generation) "
    "VALUES (?, ?, ?, ?, ?, ?) RETURNING id"
)
UPDATE_USER = (
    "UPDATE users SET role = coalesce(?, role), password_hash = coalesce(?, password_hash), "
    f"token_generation = ? WHERE id = ? RETURNING {USER_COLUMNS}"
)
DELETE_USER = "DELETE FROM users WHERE id = ?"

GROUP_BY_ID = f"SELECT {GROUP_COLUMNS} FROM groups WHERE org_id = ? AND id = ?"
GROUPS_OF_ORG = f"SELECT {GROUP_COLUMNS} FROM groups WHERE org_id = ? ORDER BY id"
MEMBERS_OF_GROUP = (
    "SELECT group_id, source_id FROM group_members WHERE group_id = ? ORDER BY source_id"
)
MEMBERS_OF_ORG = (
    "SELECT m.group_id, m.source_id FROM group_members m JOIN groups g ON g.id = m.group_id "
    "WHERE g.org_id = ? ORDER BY m.group_id, m.source_id"
)
INSERT_GROUP = (
    "INSERT INTO groups (org_id, name, meta, created_us) VALUES (?, ?, ?, ?) RETURNING id"
)
DELETE_GROUP_MEMBERS = "DELETE FROM group_members WHERE group_id = ?"
INSERT_GROUP_MEMBER = (
    "INSERT INTO group_members (group_id, source_id) VALUES (?, ?) ON CONFLICT DO NOTHING"
)
DELETE_GROUP = "DELETE FROM groups WHERE id = ?"
