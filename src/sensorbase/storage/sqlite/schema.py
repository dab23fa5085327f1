"""The embedded store's schema: created on a new file, migrated on an old one.

`PRAGMA user_version` says which schema a file holds. A new file gets the current schema
(schema.sql and POINTS_SCHEMA) at once; an older one is migrated step by step
when it is opened, under the writer lock and in one transaction per step, each step looking
at the version again once it holds the lock: of several processes opening the file together
(`serve --workers N`), one migrates and the others find it done.

    1 -> 2  points from a row each into a write log and compressed chunks (sqlite/__init__)
    2 -> 3  ids never given twice (AUTOINCREMENT), a token generation per user, refresh
            tokens deleted with their key
    3 -> 4  a status per bucket, active or archived (`_bucket_status`)
    4 -> 5  alert rules, their states and events, webhooks and their outbox
            (storage/alerts_schema.py)
    5 -> 6  a retention per bucket and the summaries expired chunks leave (`_lifecycle`,
            lifecycle.sql)
    6 -> 7  chunks of up to 8,192 points in blocks with their own summaries, in a table with
            rowids, and a summary per series and day (`_chunk_blocks`, sqlite/chunks.py,
            sqlite/rollups.py)
    7 -> 8  an index of the chunks small enough to merge (`_small_chunks`,
            storage/chunk_merges.py, sqlite/merges.py)
    8 -> 9  block summaries in a compact form, no time column for regular times
            (`_compact_blocks`, storage/block_summaries.py)
    9 -> 10 a day summary only for days of more than one chunk, no index of the sources by
            organisation (`_fewer_rows`, storage/rollups.py, catalog_sql.py)
    10 -> 11 values of decimals within int32 as 32-bit integers in their pages (`_narrow`,
            storage/chunks.py, block_summaries.NARROW)
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path

import numpy as np
from pcodec import standalone

from sensorbase.errors import SensorbaseError
from sensorbase.model import PointColumns
from sensorbase.storage.alerts_schema import SQLITE_TYPES, alerts_ddl
from sensorbase.storage.chunks import EXTRAS_DECODER
from sensorbase.storage.rollups import DELETE_SINGLE_DAYS
from sensorbase.storage.sqlite import chunks, folder, rollups

SCHEMA_VERSION = 11
ALERTS_VERSION = 5  # the version `_alerts_tables` migrates to
LIFECYCLE_VERSION = 6  # the version `_lifecycle` migrates to
BLOCKS_VERSION = 7  # the version `_chunk_blocks` migrates to
SMALL_VERSION = 8  # the version `_small_chunks` migrates to
COMPACT_VERSION = 9  # the version `_compact_blocks` migrates to
FEWER_ROWS_VERSION = 10  # the version `_fewer_rows` migrates to
NARROW_VERSION = 11  # the version `_narrow` migrates to
MIGRATE_CHUNKS = 256  # chunks re-encoded per transaction by `_chunk_blocks`
# The catalog tables whose rows schema 3 copies into tables made anew (every table but
# `settings`, which did not change), parents first.
CATALOG_TABLES = (
    "orgs",
    "buckets",
    "sources",
    "series",
    "api_keys",
    "refresh_tokens",
    "users",
    "groups",
    "group_members",
)
_NEW_COLUMNS = {"token_generation": "lower(hex(randomblob(16)))"}  # what schema 3 added
POINTS_SCHEMA = """
CREATE TABLE IF NOT EXISTS point_log (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  points INTEGER NOT NULL,
  series_id BLOB NOT NULL,
  time_us BLOB NOT NULL,
  value BLOB NOT NULL,
  extra BLOB
);
-- A table with rowids: a row up to ~4 KiB stays in its leaf page, where a table without
-- rowid moves all of a row past ~1 KiB but 489 bytes to overflow pages of its own (a chunk
-- of ~1.5 KiB took two pages).
CREATE TABLE IF NOT EXISTS point_chunks (
  id INTEGER PRIMARY KEY,
  series_id INTEGER NOT NULL,
  start_us INTEGER NOT NULL,
  end_us INTEGER NOT NULL,
  count INTEGER NOT NULL,
  min REAL NOT NULL, max REAL NOT NULL, sum REAL NOT NULL,
  first REAL NOT NULL, last REAL NOT NULL,
  time_us BLOB NOT NULL,
  value BLOB NOT NULL,
  extra BLOB,
  blocks BLOB NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS point_chunks_start ON point_chunks (series_id, start_us);
"""


def catalog_schema() -> str:
    return resources.files("sensorbase.storage.sqlite").joinpath("schema.sql").read_text()


def lifecycle_schema() -> str:
    return resources.files("sensorbase.storage.sqlite").joinpath("lifecycle.sql").read_text()


@contextmanager
def _immediate(conn: sqlite3.Connection) -> Iterator[None]:
    """A write transaction on `conn` (autocommit), taken at once: committed when the block
    ends, a return inside it included; rolled back when it raises."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def prepare(conn: sqlite3.Connection, path: Path) -> None:
    """Give the database on `conn` (autocommit) the current schema, whatever it held."""
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version == 0:
        try:
            conn.executescript(
                "BEGIN IMMEDIATE;"
                + catalog_schema()
                + POINTS_SCHEMA
                + "".join(f"{statement};" for statement in alerts_ddl(SQLITE_TYPES))
                + lifecycle_schema()
                + rollups.SCHEMA
                + chunks.SMALL_INDEX
                + ";"
                + f"PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;"
            )
        except sqlite3.OperationalError:
            # Another process (uvicorn --workers N) created it first: then all is well.
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            if conn.execute("PRAGMA user_version").fetchone()[0] != SCHEMA_VERSION:
                raise
    elif version < SCHEMA_VERSION:
        folder.writer_locked(path)(lambda: _migrate(conn))
    elif version > SCHEMA_VERSION:
        raise SensorbaseError(
            f"{path} has schema version {version}; this Sensorbase knows "
            f"{SCHEMA_VERSION}: upgrade Sensorbase"
        )


def _migrate(conn: sqlite3.Connection) -> None:
    _points_into_chunks(conn)
    _ids_never_reused(conn)
    _bucket_status(conn)
    _alerts_tables(conn)
    _lifecycle(conn)
    _chunk_blocks(conn)
    _small_chunks(conn)
    _compact_blocks(conn)
    _fewer_rows(conn)
    _narrow(conn)


def _points_into_chunks(conn: sqlite3.Connection) -> None:
    """Schema 1 -> 2: the points of the one-row-per-point table, into chunks."""
    with _immediate(conn):
        if conn.execute("PRAGMA user_version").fetchone()[0] == 1:  # not done by another
            for statement in POINTS_SCHEMA.split(";"):
                if statement.strip():
                    conn.execute(statement)
            series = [r[0] for r in conn.execute("SELECT DISTINCT series_id FROM points")]
            for series_id in series:
                found = conn.execute(
                    "SELECT time_us, value, extra FROM points WHERE series_id = ? ORDER BY time_us",
                    (series_id,),
                ).fetchall()
                times, values, extras = zip(*found, strict=True)
                chunks.store_series(
                    conn,
                    series_id,
                    PointColumns(
                        np.array(times, np.int64),
                        np.array(values, np.float64),
                        list(extras) if any(e is not None for e in extras) else None,
                    ),
                )
            conn.execute("DROP TABLE points")
            conn.execute("DROP TABLE IF EXISTS point_blocks")
            conn.execute("PRAGMA user_version = 2")
    if conn.execute("PRAGMA auto_vacuum").fetchone()[0] != 2:
        # The dropped table (~29 bytes a point) is free pages of the file: rewrite it without
        # them, and in incremental auto-vacuum from now on, as a new database is.
        conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
        conn.execute("VACUUM")


def _ids_never_reused(conn: sqlite3.Connection) -> None:
    """Schema 2 -> 3. SQLite cannot add AUTOINCREMENT to a table, so the catalog tables are
    made anew from schema.sql and their rows copied over, ids kept (which sets each
    table's sequence to its largest id). Ids above that, deleted before the upgrade, cannot be
    known and may be given once more; no token minted before the upgrade is accepted after it
    (auth/tokens.py), so no credential can follow such an id.

    Foreign keys are off meanwhile (SQLite's own recipe for remaking a table): dropping the old
    tables must not cascade into their children. They are checked before the commit."""
    conn.execute("PRAGMA foreign_keys = OFF")  # (a no-op inside a transaction)
    try:
        with _immediate(conn):
            remade = conn.execute("PRAGMA user_version").fetchone()[0] == 2  # not by another
            if remade:
                if conn.execute("PRAGMA foreign_keys").fetchone()[0]:
                    raise SensorbaseError("cannot migrate: foreign keys are still enforced")
                _remake_catalog(conn)
                conn.execute("PRAGMA user_version = 3")
    finally:
        conn.execute("PRAGMA foreign_keys = ON")
    if remade:  # the old tables' pages back to the file system (executescript: every page)
        conn.executescript("PRAGMA incremental_vacuum;")


# The column schema 4 adds (also in schema.sql, which new files and the 2 -> 3 remake take).
BUCKET_STATUS_COLUMN = "status TEXT NOT NULL DEFAULT 'active'"


def _bucket_status(conn: sqlite3.Connection) -> None:
    """Schema 3 -> 4: every bucket active. A file remade by 2 -> 3 has the column already
    (the remake takes schema.sql as it is now)."""
    with _immediate(conn):
        if conn.execute("PRAGMA user_version").fetchone()[0] == 3:  # not done by another
            if "status" not in _columns(conn, "buckets"):
                conn.execute(f"ALTER TABLE buckets ADD COLUMN {BUCKET_STATUS_COLUMN}")
            conn.execute("PRAGMA user_version = 4")


def _alerts_tables(conn: sqlite3.Connection) -> None:
    """Schema 4 -> 5: the alert and webhook tables (storage/alerts_schema.py), empty."""
    with _immediate(conn):
        if conn.execute("PRAGMA user_version").fetchone()[0] == ALERTS_VERSION - 1:
            for statement in alerts_ddl(SQLITE_TYPES):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {ALERTS_VERSION}")


def _lifecycle(conn: sqlite3.Connection) -> None:
    """Schema 5 -> 6: a retention per bucket, and the table of summaries."""
    with _immediate(conn):
        if conn.execute("PRAGMA user_version").fetchone()[0] == LIFECYCLE_VERSION - 1:
            for statement in statements(lifecycle_schema()):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {LIFECYCLE_VERSION}")


def _chunk_blocks(conn: sqlite3.Connection) -> None:
    """Schema 6 -> 7: the chunks re-encoded in blocks (sqlite/chunks.py) into the table with
    rowids, `MIGRATE_CHUNKS` old chunks per transaction (a file of 100M points is ~50,000 of
    them: each transaction's WAL stays small, and a migration stopped half way goes on where
    it stopped), and the day summaries (sqlite/rollups.py), kept by triggers as
    the chunks move. A file that 1 -> 2 made now has the new table already (and a file that
    tests turned back from the current schema, its day summaries too: they are made again)."""
    with _immediate(conn):
        if conn.execute("PRAGMA user_version").fetchone()[0] != BLOCKS_VERSION - 1:
            return  # done by another
        if "point_chunks_v6" not in _tables(conn):
            moved = "blocks" not in _columns(conn, "point_chunks")
            if moved:  # (before the triggers are made: they go with a table renamed)
                conn.execute("ALTER TABLE point_chunks RENAME TO point_chunks_v6")
                for statement in statements(POINTS_SCHEMA):
                    conn.execute(statement)
            for statement in statements(rollups.SCHEMA):
                conn.execute(statement)
            if not moved:
                rollups.backfill(conn)
    while _move_chunks(conn):
        pass
    with _immediate(conn):
        conn.execute("DROP TABLE IF EXISTS point_chunks_v6")
        conn.execute(f"PRAGMA user_version = {BLOCKS_VERSION}")
    conn.executescript("PRAGMA incremental_vacuum;")  # the old chunks' pages


def _compact_blocks(conn: sqlite3.Connection) -> None:
    """Schema 8 -> 9: chunks written from now on may have their block summaries in the compact
    form and no time column (storage/block_summaries.py), which a Sensorbase of schema 8 would
    misread; the version alone changes, so that such a Sensorbase refuses the file. The
    chunks there keep their form and are read as they are."""
    with _immediate(conn):
        if conn.execute("PRAGMA user_version").fetchone()[0] == COMPACT_VERSION - 1:
            conn.execute(f"PRAGMA user_version = {COMPACT_VERSION}")


def _fewer_rows(conn: sqlite3.Connection) -> None:
    """Schema 9 -> 10: the triggers that keep a day's row only for days of more than one
    chunk (sqlite/rollups.py) in place of those that kept one for every day, and the rows of
    days of one chunk deleted (their chunk's own row says the same); readers of schema 9 would
    miss those days. And no index of the sources by organisation (~20 bytes a source): a
    source is found in an organisation through its buckets (catalog_sql.py)."""
    with _immediate(conn):
        done = conn.execute("PRAGMA user_version").fetchone()[0] != FEWER_ROWS_VERSION - 1
        if not done:  # (not by another)
            conn.execute("DROP TRIGGER IF EXISTS point_rollups_add")
            conn.execute("DROP TRIGGER IF EXISTS point_rollups_remove")
            for statement in statements(rollups.SCHEMA):
                conn.execute(statement)
            conn.execute(DELETE_SINGLE_DAYS)
            conn.execute("DROP INDEX IF EXISTS sources_org_key")
            conn.execute(f"PRAGMA user_version = {FEWER_ROWS_VERSION}")
    if not done:
        conn.executescript("PRAGMA incremental_vacuum;")  # the rows' and the index's pages


def _small_chunks(conn: sqlite3.Connection) -> None:
    """Schema 7 -> 8: the index of the chunks small enough to merge (sqlite/merges.py)."""
    with _immediate(conn):
        if conn.execute("PRAGMA user_version").fetchone()[0] == SMALL_VERSION - 1:
            conn.execute(chunks.SMALL_INDEX)
            conn.execute(f"PRAGMA user_version = {SMALL_VERSION}")


def _move_chunks(conn: sqlite3.Connection) -> bool:
    """Re-encode up to MIGRATE_CHUNKS old chunks into new ones, in one transaction; whether
    any was left."""
    with _immediate(conn):
        if "point_chunks_v6" not in _tables(conn):
            return False
        rows = conn.execute(
            "SELECT series_id, start_us, time_us, value, extra FROM point_chunks_v6 "
            "ORDER BY series_id, start_us LIMIT ?",
            (MIGRATE_CHUNKS,),
        ).fetchall()
        by_series: dict[int, list[PointColumns]] = {}
        for series_id, _, time_blob, value_blob, extra_blob in rows:
            by_series.setdefault(series_id, []).append(
                PointColumns(
                    standalone.simple_decompress(time_blob),
                    standalone.simple_decompress(value_blob),
                    None if extra_blob is None else EXTRAS_DECODER.decode(extra_blob),
                )
            )
        for series_id, parts in by_series.items():
            chunks.store_series(conn, series_id, PointColumns.concat(parts))
        conn.executemany(
            "DELETE FROM point_chunks_v6 WHERE series_id = ? AND start_us = ?",
            [(r[0], r[1]) for r in rows],
        )
    return bool(rows)


def _tables(conn: sqlite3.Connection) -> set[str]:
    return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def _remake_catalog(conn: sqlite3.Connection) -> None:
    marks = ", ".join("?" * len(CATALOG_TABLES))
    indexes = conn.execute(  # their names are taken again below (sqlite_autoindex_* are not)
        f"SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL "
        f"AND tbl_name IN ({marks})",
        CATALOG_TABLES,
    ).fetchall()
    for (index,) in indexes:
        conn.execute(f'DROP INDEX "{index}"')
    for table in CATALOG_TABLES:
        conn.execute(f"ALTER TABLE {table} RENAME TO {table}_v2")
    for statement in statements(catalog_schema()):
        if not statement.startswith("CREATE TABLE settings"):
            conn.execute(statement)
    for table in CATALOG_TABLES:
        old = _columns(conn, f"{table}_v2")
        columns = [c for c in _columns(conn, table) if c in old or c in _NEW_COLUMNS]
        values = ", ".join(c if c in old else _NEW_COLUMNS[c] for c in columns)
        sql = f"INSERT INTO {table} ({', '.join(columns)}) SELECT {values} FROM {table}_v2"
        if table == "refresh_tokens":  # those of keys already gone go too
            sql += " WHERE key_id IN (SELECT key_id FROM api_keys)"
        conn.execute(sql + " ORDER BY 1")
    for table in reversed(CATALOG_TABLES):
        conn.execute(f"DROP TABLE {table}_v2")
    broken = conn.execute("PRAGMA foreign_key_check").fetchmany(5)
    if broken:
        raise SensorbaseError(f"cannot migrate: rows without their parent row: {broken}")


def _columns(conn: sqlite3.Connection, table: str) -> list[str]:
    return [row[1] for row in conn.execute(f"PRAGMA table_info({table})")]


def statements(script: str) -> list[str]:
    """The SQL statements of a script, comments left out, each without its semicolon."""
    found, pending = [], ""
    for line in script.splitlines():
        if line.lstrip().startswith("--"):
            continue
        pending += line + "\n"
        if sqlite3.complete_statement(pending):
            found.append(pending.strip().rstrip(";"))
            pending = ""
    return found


def _narrow(conn: sqlite3.Connection) -> None:
    """Schema 10 -> 11: chunks written from now on may hold their values as 32-bit integers
    (block_summaries.NARROW), which a Sensorbase of schema 10 would misread; the version alone
    changes, so that such a Sensorbase refuses the file. The chunks there keep their form."""
    with _immediate(conn):
        if conn.execute("PRAGMA user_version").fetchone()[0] == NARROW_VERSION - 1:
            conn.execute(f"PRAGMA user_version = {NARROW_VERSION}")
