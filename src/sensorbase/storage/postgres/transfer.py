"""PostgreSQL's side of `sensorbase dump` and `load` (storage/transfer.py): a REPEATABLE READ
transaction of its own (every node may go on writing), and the loading transaction on the
writer's connection. Types follow the target's columns (SQLite's 0/1 become booleans)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import psycopg

from sensorbase.errors import SensorbaseError
from sensorbase.model import ResolvedBatch
from sensorbase.storage import chunk_reads
from sensorbase.storage.postgres.chunks import PgChunks
from sensorbase.storage.postgres.errors import driver_errors
from sensorbase.storage.postgres.log import PgLogCache
from sensorbase.storage.transfer import LEFT_BEHIND, LOCAL_SETTINGS, parents_first

_TABLES = (
    "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
    "WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') AND NOT c.relispartition"
)
_REFERENCES = (
    "SELECT f.conrelid::regclass::text, f.confrelid::regclass::text FROM pg_constraint f "
    "JOIN pg_class c ON c.oid = f.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
    "WHERE f.contype = 'f' AND n.nspname = current_schema()"
)
_COLUMNS = (
    "SELECT column_name, data_type, is_identity FROM information_schema.columns "
    "WHERE table_schema = current_schema() AND table_name = %s ORDER BY ordinal_position"
)


# Dumped as points, not rows (the day summaries: made anew as the points are folded).
POINT_TABLES = frozenset({"point_log", "point_chunks", "point_rollups"})


def _tables(conn: psycopg.Connection) -> list[str]:
    names = {
        r[0] for r in conn.execute(_TABLES) if r[0] not in POINT_TABLES and r[0] not in LEFT_BEHIND
    }
    refers: dict[str, set[str]] = {n: set() for n in names}
    for child, parent in conn.execute(_REFERENCES):
        if child in refers:
            refers[child].add(parent)
    return parents_first(refers)


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class PgSnapshot:
    def __init__(self, url: str, log: PgLogCache) -> None:
        self._log = log
        self.conn = psycopg.connect(url, application_name="sensorbase-dump")
        self.conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        self.conn.execute("SELECT 1").fetchone()  # the snapshot starts

    def close(self) -> None:
        self.conn.rollback()
        self.conn.close()

    def tables(self) -> list[str]:
        return _tables(self.conn)

    def columns(self, table: str) -> list[str]:
        return [r[0] for r in self.conn.execute(_COLUMNS, (table,))]

    def rows(self, table: str) -> Iterator[tuple[Any, ...]]:
        names = ", ".join(_quoted(c) for c in self.columns(table))
        with self.conn.cursor(name=f"dump_{table}") as cur:
            cur.itersize = 10_000
            cur.execute(f"SELECT {names} FROM {_quoted(table)}")
            yield from cur

    def last_ids(self) -> dict[str, int]:
        found = {}
        for table in self.tables():
            for column, _, identity in self.conn.execute(_COLUMNS, (table,)):
                if identity != "YES":
                    continue
                sequence = self.conn.execute(
                    "SELECT pg_get_serial_sequence(%s, %s)", (_quoted(table), column)
                ).fetchone()
                assert sequence is not None
                row = self.conn.execute(f"SELECT last_value, is_called FROM {sequence[0]}")
                last, called = row.fetchone() or (0, False)
                if called:
                    found[table] = int(last)
        return found

    def points(self, batch_points: int) -> Iterator[ResolvedBatch]:
        """Every series' points, chunks merged with the log, in the one snapshot."""
        view = self._log.view(self.conn)
        series = [r[0] for r in self.conn.execute("SELECT id FROM series ORDER BY id")]
        yield from chunk_reads.every_point(PgChunks(self.conn), view, series, batch_points)


class PgLoader:
    def __init__(self, conn: psycopg.Connection) -> None:
        self.conn = conn
        self._types: dict[str, dict[str, str]] = {}

    def _columns(self, table: str) -> dict[str, str]:
        if table not in self._types:
            self._types[table] = {r[0]: r[1] for r in self.conn.execute(_COLUMNS, (table,))}
        return self._types[table]

    def refuse_unless_empty(self) -> None:
        held = []
        for table in _tables(self.conn):
            sql = f"SELECT count(*) FROM {_quoted(table)}"
            params: tuple[Any, ...] = ()
            if table == "settings":
                sql += " WHERE NOT (name = ANY(%s))"
                params = (list(LOCAL_SETTINGS),)
            row = self.conn.execute(sql, params).fetchone()
            if row and row[0]:
                held.append(f"{table}: {row[0]} row(s)")
        point = self.conn.execute(
            "SELECT 1 FROM point_chunks UNION ALL SELECT 1 FROM point_log LIMIT 1"
        ).fetchone()
        if point:
            held.append("points")
        if held:
            raise SensorbaseError(
                "the target store is not empty (" + ", ".join(held) + "): load into a new "
                "data directory or database, one no server was started on"
            )

    def columns(self, table: str) -> list[str]:
        return list(self._columns(table))

    def insert(self, table: str, columns: list[str], rows: Iterable[tuple[Any, ...]]) -> int:
        types = self._columns(table)
        flags = [i for i, c in enumerate(columns) if types.get(c) == "boolean"]
        names = ", ".join(_quoted(c) for c in columns)
        marks = ", ".join(["%s"] * len(columns))
        sql = f"INSERT INTO {_quoted(table)} ({names}) VALUES ({marks})"
        if table == "settings":
            sql += " ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value"

        def typed(row: tuple[Any, ...]) -> tuple[Any, ...]:
            if not flags:
                return row
            out = list(row)
            for i in flags:
                out[i] = None if out[i] is None else bool(out[i])
            return tuple(out)

        count = 0
        with driver_errors(), self.conn.cursor() as cur:
            batch: list[tuple[Any, ...]] = []
            for row in rows:
                batch.append(typed(row))
                if len(batch) >= 10_000:
                    cur.executemany(sql, batch)
                    count += len(batch)
                    batch = []
            if batch:
                cur.executemany(sql, batch)
                count += len(batch)
        return count

    def set_last_ids(self, last: dict[str, int]) -> None:
        for table in _tables(self.conn):
            for column, _, identity in self.conn.execute(_COLUMNS, (table,)).fetchall():
                if identity != "YES":
                    continue
                row = self.conn.execute(
                    f"SELECT greatest(%s, coalesce(max({_quoted(column)}), 0)) "
                    f"FROM {_quoted(table)}",
                    (last.get(table, 0),),
                ).fetchone()
                if row and row[0] > 0:
                    self.conn.execute(
                        "SELECT setval(pg_get_serial_sequence(%s, %s), %s)",
                        (_quoted(table), column, row[0]),
                    )
