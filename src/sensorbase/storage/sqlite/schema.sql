-- Sensorbase embedded schema, version 3 (with schema.py's POINTS_SCHEMA: the points). Applied
-- when PRAGMA user_version is 0; schema.py migrates older files to it.
-- Every id that can be deleted is AUTOINCREMENT: SQLite would otherwise give the largest id
-- again once its row is deleted, and whatever still names it (a token, a cached key, a
-- client) would reach the new row.
CREATE TABLE settings (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE orgs (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  key TEXT NOT NULL UNIQUE, name TEXT NOT NULL, created_us INTEGER NOT NULL
);
CREATE TABLE buckets (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  org_id INTEGER NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
  key TEXT NOT NULL, name TEXT NOT NULL, description TEXT NOT NULL DEFAULT '',
  meta TEXT NOT NULL DEFAULT '{}', created_us INTEGER NOT NULL,
  -- active | archived (an archived bucket refuses writes): BUCKET_STATUS_COLUMN in schema.py
  status TEXT NOT NULL DEFAULT 'active',
  UNIQUE (org_id, key)
);
CREATE TABLE sources (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  org_id INTEGER NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
  bucket_id INTEGER NOT NULL REFERENCES buckets(id) ON DELETE CASCADE,
  key TEXT NOT NULL, name TEXT NOT NULL, meta TEXT NOT NULL DEFAULT '{}', schema TEXT,
  created_us INTEGER NOT NULL,
  UNIQUE (bucket_id, key)
);
CREATE TABLE series (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  source_id INTEGER NOT NULL REFERENCES sources(id) ON DELETE CASCADE,
  field TEXT NOT NULL, unit TEXT, meta TEXT NOT NULL DEFAULT '{}',
  UNIQUE (source_id, field)
);
CREATE TABLE api_keys (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  key_id TEXT NOT NULL UNIQUE,
  org_id INTEGER NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
  name TEXT NOT NULL, scopes TEXT NOT NULL,
  bucket_id INTEGER REFERENCES buckets(id) ON DELETE CASCADE,
  server_admin INTEGER NOT NULL DEFAULT 0,
  created_us INTEGER NOT NULL, revoked_us INTEGER, secret_hash TEXT NOT NULL
);
-- A refresh token goes with its key, however the key goes (revoked, or deleted with its
-- bucket or organisation).
CREATE TABLE refresh_tokens (
  token_hash TEXT PRIMARY KEY,
  key_id TEXT NOT NULL REFERENCES api_keys(key_id) ON DELETE CASCADE,
  expires_us INTEGER NOT NULL
);
CREATE INDEX refresh_tokens_key ON refresh_tokens (key_id);
CREATE TABLE users (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  org_id INTEGER NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
  email TEXT NOT NULL UNIQUE COLLATE NOCASE,
  password_hash TEXT NOT NULL,
  role TEXT NOT NULL,
  created_us INTEGER NOT NULL,
  -- Random, new whenever the row changes: a user token carries it, so that no change to the
  -- user (role, password) leaves an earlier token working.
  token_generation TEXT NOT NULL
);
-- A group gathers sources across buckets under one integer id (a Datacooee asset).
CREATE TABLE groups (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  org_id INTEGER NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
  name TEXT NOT NULL, meta TEXT NOT NULL DEFAULT '{}', created_us INTEGER NOT NULL
);
CREATE TABLE group_members (
  group_id INTEGER NOT NULL REFERENCES groups(id) ON DELETE CASCADE,
  source_id INTEGER NOT NULL REFERENCES sources(id) ON DELETE CASCADE,
  PRIMARY KEY (group_id, source_id)
);
