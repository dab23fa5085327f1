"""The embedded store's side of `sensorbase dump` and `load` (storage/transfer.py): a read
transaction on a connection of its own (a server may go on writing), and the loading
transaction under the writer lock."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from sensorbase.errors import SensorbaseError
from sensorbase.model import ResolvedBatch
from sensorbase.storage import chunk_reads
from sensorbase.storage.sqlite.chunks import SQLiteChunks
from sensorbase.storage.sqlite.errors import driver_errors
from sensorbase.storage.sqlite.log import SQLiteLogCache
from sensorbase.storage.transfer import LEFT_BEHIND, LOCAL_SETTINGS, parents_first

POINT_TABLES = frozenset({"point_log", "point_chunks", "point_rollups"})  # (rollups: made anew)


def _tables(conn: sqlite3.Connection) -> list[str]:
    names = [
        r[0]
        for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        )
        if r[0] not in POINT_TABLES and r[0] not in LEFT_BEHIND
    ]
    refers = {n: {r[2] for r in conn.execute(f'PRAGMA foreign_key_list("{n}")')} for n in names}
    return parents_first(refers)


def _columns(conn: sqlite3.Connection, table: str) -> list[str]:
    return [r[1] for r in conn.execute(f'PRAGMA table_info("{table}")')]


def _order(conn: sqlite3.Connection, table: str) -> str:
    """The order rows are read in: as inserted, or by primary key in a table without rowid
    (point_summaries)."""
    row = conn.execute("SELECT sql FROM sqlite_master WHERE name = ?", (table,)).fetchone()
    if "WITHOUT ROWID" not in row[0].upper():
        return "rowid"
    keys = sorted((r[5], r[1]) for r in conn.execute(f'PRAGMA table_info("{table}")') if r[5])
    return ", ".join(f'"{name}"' for _, name in keys)


class SQLiteSnapshot:
    def __init__(self, path: Path) -> None:
        uri = f"{path.resolve().as_uri()}?mode=ro"
        self.conn = sqlite3.connect(uri, uri=True, isolation_level=None)
        self.conn.execute("PRAGMA busy_timeout = 30000")
        self.conn.execute("BEGIN")
        self.conn.execute("SELECT count(*) FROM sqlite_master").fetchone()  # the snapshot starts
        self._log = SQLiteLogCache()

    def close(self) -> None:
        self.conn.close()

    def tables(self) -> list[str]:
        return _tables(self.conn)

    def columns(self, table: str) -> list[str]:
        return _columns(self.conn, table)

    def rows(self, table: str) -> Iterator[tuple[Any, ...]]:
        names = ", ".join(f'"{c}"' for c in self.columns(table))
        order = _order(self.conn, table)
        yield from self.conn.execute(f'SELECT {names} FROM "{table}" ORDER BY {order}')

    def last_ids(self) -> dict[str, int]:
        return {name: int(seq) for name, seq in self.conn.execute("SELECT * FROM sqlite_sequence")}

    def points(self, batch_points: int) -> Iterator[ResolvedBatch]:
        view = self._log.view(self.conn)
        series = [r[0] for r in self.conn.execute("SELECT id FROM series ORDER BY id")]
        yield from chunk_reads.every_point(SQLiteChunks(self.conn), view, series, batch_points)


class SQLiteLoader:
    """The catalog's rows in one transaction on the store's writer connection, with foreign
    keys checked at the commit (rows go in parents first all the same)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.conn.execute("PRAGMA defer_foreign_keys = ON")

    def refuse_unless_empty(self) -> None:
        held = []
        for table in [*_tables(self.conn), *POINT_TABLES]:
            if table == "settings":
                marks = ", ".join("?" * len(LOCAL_SETTINGS))
                sql = f"SELECT count(*) FROM settings WHERE name NOT IN ({marks})"
                n = self.conn.execute(sql, tuple(LOCAL_SETTINGS)).fetchone()[0]
            else:
                n = self.conn.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0]
            if n:
                held.append(f"{table}: {n} row(s)")
        if held:
            raise SensorbaseError(
                "the target store is not empty (" + ", ".join(held) + "): load into a new "
                "data directory or database, one no server was started on"
            )

    def columns(self, table: str) -> list[str]:
        return _columns(self.conn, table)

    def insert(self, table: str, columns: list[str], rows: Iterable[tuple[Any, ...]]) -> int:
        names = ", ".join(f'"{c}"' for c in columns)
        marks = ", ".join("?" * len(columns))
        verb = "INSERT OR REPLACE" if table == "settings" else "INSERT"
        before = self.conn.total_changes
        with driver_errors():
            self.conn.executemany(f'{verb} INTO "{table}" ({names}) VALUES ({marks})', rows)
        return self.conn.total_changes - before

    def set_last_ids(self, last: dict[str, int]) -> None:
        for table, seq in last.items():
            found = self.conn.execute(
                "SELECT 1 FROM sqlite_master WHERE name = ? AND sql LIKE '%AUTOINCREMENT%'",
                (table,),
            ).fetchone()
            if not found:
                continue
            self.conn.execute("DELETE FROM sqlite_sequence WHERE name = ?", (table,))
            self.conn.execute(
                "INSERT INTO sqlite_sequence (name, seq) "
                f'SELECT ?, max(?, coalesce(max(rowid), 0)) FROM "{table}"',
                (table, seq),
            )
