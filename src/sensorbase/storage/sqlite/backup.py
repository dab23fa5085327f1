"""Backups of the embedded store, taken while servers write to it, and their restore.

A backup is SQLite's online backup API run in one step (`Connection.backup(pages=-1)`) on a
connection that first opened a read transaction and counted what it sees: the copy is the
database at that one moment (the write log and the chunks together, whatever the WAL held
then), and the counts are the snapshot's own, so `verify` compares the copy with exactly what
it should hold. In WAL mode a reader never blocks a writer: servers go on committing meanwhile
(their WAL grows until the read ends, as under any long read, and starts over after).
The copy is written beside DEST and renamed over it once synced: a failed backup leaves no
half file. It is one plain SQLite file (rollback journal, no WAL beside it): `restore` or a
copy into a data directory puts it back.

A store is "in use" while any connection has it open: every connection in WAL mode holds a
shared lock on the file, so an exclusive lock taken at once (no busy wait) fails exactly then.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path

from sensorbase.errors import SensorbaseError
from sensorbase.storage.sqlite.schema import SCHEMA_VERSION

POINT_ROWS = "SELECT (SELECT coalesce(sum(count), 0) FROM point_chunks) + " \
    "(SELECT coalesce(sum(points), 0) FROM point_log)"  # fmt: skip
SIDE_FILES = ("-wal", "-shm", "-writer")


@dataclass
class Snapshot:
    """What a backup copied: rows per table, and point entries (chunked and logged: a point
    written again since its chunk was made counts twice until the next fold)."""

    tables: dict[str, int] = field(default_factory=dict)
    point_entries: int = 0


@dataclass
class BackupReport:
    path: Path
    size_bytes: int
    seconds: float
    snapshot: Snapshot
    verified: bool = False


def counts(conn: sqlite3.Connection) -> Snapshot:
    names = [
        r[0]
        for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
            "ORDER BY name"
        )
    ]
    found = Snapshot({n: conn.execute(f'SELECT count(*) FROM "{n}"').fetchone()[0] for n in names})
    if "point_chunks" in found.tables:
        found.point_entries = int(conn.execute(POINT_ROWS).fetchone()[0])
    return found


def in_use(path: Path) -> bool:
    """Whether any process (a server, a worker, a helper) has the database open."""
    if not path.exists():
        return False
    conn = sqlite3.connect(path, isolation_level=None, timeout=0)
    try:
        conn.execute("PRAGMA locking_mode = EXCLUSIVE")
        try:
            conn.execute("BEGIN EXCLUSIVE")
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc) or "busy" in str(exc):
                return True
            raise SensorbaseError(f"cannot open {path}: {exc}") from None
        conn.execute("ROLLBACK")
        return False
    finally:
        conn.close()


def backup(source: Path, dest: Path, verify: bool = False) -> BackupReport:
    """Copy the store at `source` to `dest` (a file that must not exist) at one moment."""
    if not source.exists():
        raise SensorbaseError(f"no Sensorbase store at {source}")
    if dest.exists():
        raise SensorbaseError(f"{dest} exists: choose a new name (a backup never overwrites)")
    if not dest.parent.is_dir():
        raise SensorbaseError(f"no directory {dest.parent} to write {dest.name} in")
    started = time.perf_counter()
    part = dest.with_name(f".{dest.name}.part")
    _remove(part)
    src = sqlite3.connect(source, isolation_level=None, timeout=30)
    try:
        src.execute("PRAGMA busy_timeout = 30000")
        src.execute("BEGIN")  # the snapshot: counts and copy see one moment
        try:
            snapshot = counts(src)
            target = sqlite3.connect(part, isolation_level=None)
            try:
                src.backup(target)
                # One self-contained file (no -wal or -shm beside it): it opens read-only
                # anywhere; a server turns it back to WAL when it opens it.
                target.execute("PRAGMA journal_mode = DELETE")
            finally:
                target.close()
        finally:
            src.execute("COMMIT")
    except sqlite3.Error as exc:
        _remove(part)
        raise SensorbaseError(f"the backup failed: {exc}") from None
    finally:
        src.close()
    try:
        _fsync(part)
        if verify:
            check(part, snapshot)
        os.replace(part, dest)
        _fsync(dest.parent)
    finally:
        _remove(part)
    seconds = time.perf_counter() - started
    return BackupReport(dest, dest.stat().st_size, seconds, snapshot, verify)


def check(path: Path, expected: Snapshot | None = None) -> Snapshot:
    """Open the copy at `path`, run SQLite's integrity and foreign key checks, and compare its
    counts with `expected`; its counts, or SensorbaseError naming every difference."""
    try:
        uri = f"{path.resolve().as_uri()}?mode=ro"
        conn = sqlite3.connect(uri, uri=True, isolation_level=None)
    except sqlite3.Error as exc:
        raise SensorbaseError(f"cannot open {path}: {exc}") from None
    try:
        try:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            problems = [r[0] for r in conn.execute("PRAGMA integrity_check(20)")]
            broken = conn.execute("PRAGMA foreign_key_check").fetchmany(5)
            found = counts(conn)
        except sqlite3.DatabaseError as exc:
            raise SensorbaseError(f"{path} is not a Sensorbase store: {exc}") from None
    finally:
        conn.close()
    if problems != ["ok"]:
        raise SensorbaseError(f"{path} fails SQLite's integrity check: {'; '.join(problems)}")
    if broken:
        raise SensorbaseError(f"{path} holds rows without their parent row: {broken}")
    if not 0 < version <= SCHEMA_VERSION or "point_chunks" not in found.tables:
        raise SensorbaseError(
            f"{path} is not a Sensorbase store this version can open (schema {version})"
        )
    if expected is not None and found != expected:
        differ = [
            f"{name}: {expected.tables.get(name)} in the store, {found.tables.get(name)} copied"
            for name in sorted(set(expected.tables) | set(found.tables))
            if expected.tables.get(name) != found.tables.get(name)
        ]
        if expected.point_entries != found.point_entries:
            differ.append(f"points: {expected.point_entries} vs {found.point_entries}")
        raise SensorbaseError(f"the copy differs from the snapshot: {'; '.join(differ)}")
    return found


def restore(source: Path, target: Path, force: bool = False) -> Snapshot:
    """Put the backup at `source` in place as the store at `target` (checked first). Refused
    while the target is in use, and over an existing store without `force`."""
    if not source.is_file():
        raise SensorbaseError(f"no backup at {source}")
    found = check(source)
    if in_use(target):
        raise SensorbaseError(
            f"the store {target} is in use (a server or another command has it open): "
            "stop every server on it first"
        )
    if target.exists() and not force:
        raise SensorbaseError(
            f"{target} exists: restoring would replace that store and every point written "
            "since the backup; add --force to replace it"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(f".{target.name}.restore")
    try:
        shutil.copyfile(source, part)
        _fsync(part)
        for suffix in SIDE_FILES:  # the old store's WAL must not be applied to the backup
            _remove(Path(f"{target}{suffix}"))
        os.replace(part, target)
        _fsync(target.parent)
    finally:
        _remove(part)
    return found


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove(path: Path) -> None:
    path.unlink(missing_ok=True)
