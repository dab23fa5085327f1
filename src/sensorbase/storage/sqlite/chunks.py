"""Chunks on SQLite (the layout: sqlite/__init__.py; the encoding: storage/chunks.py): the SQL
that reads and stores them, and `SQLiteChunks`, what storage/chunk_reads.py reads them by."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from typing import Any

from sensorbase.model import PointColumns, TimeRange
from sensorbase.storage import rollups
from sensorbase.storage.chunk_merges import MERGE_BELOW
from sensorbase.storage.chunks import CHUNK_COLUMNS, CHUNK_POINTS, Chunk, chunk_of_row, encode
from sensorbase.storage.rollups import DAY_US


def chunks(
    conn: sqlite3.Connection, series_id: int, time_range: TimeRange, order: str = "asc"
) -> Iterator[Chunk]:
    """The series' chunks holding points of the range, in time order (or reversed)."""
    sql = f"SELECT {CHUNK_COLUMNS} FROM point_chunks WHERE series_id = ?"
    params: list[Any] = [series_id]
    if time_range.start_us is not None:
        sql += " AND end_us >= ?"
        params.append(time_range.start_us)
    if time_range.end_us is not None:
        sql += " AND start_us < ?"
        params.append(time_range.end_us)
    sql += " ORDER BY start_us DESC" if order == "desc" else " ORDER BY start_us"
    for row in conn.execute(sql, params):
        yield chunk_of_row(row)


# The chunks merges.py's `small` looks for, so that it reads them alone (the only chunks of
# most series once merged: the last one or two), not every chunk of the file. Its condition
# is spelled as `small` spells it, else SQLite would not use it (schema.py, version 8).
SMALL_INDEX = (
    "CREATE INDEX IF NOT EXISTS point_chunks_small ON point_chunks (series_id, count) "
    f"WHERE count < {MERGE_BELOW}"
)


INSERT_CHUNK = (
    "INSERT INTO point_chunks (series_id, start_us, end_us, count, min, max, sum, first, "
    "last, time_us, value, extra, blocks) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


def store_series(conn: sqlite3.Connection, series_id: int, points: PointColumns) -> None:
    """Store time-ordered points of one series, where it has no chunk yet, as chunks."""
    conn.executemany(
        INSERT_CHUNK,
        [
            encode(series_id, points.take(slice(at, at + CHUNK_POINTS)))
            for at in range(0, len(points), CHUNK_POINTS)
        ],
    )


class SQLiteChunks:
    """The chunks of one connection's read transaction, as storage/chunk_reads.py reads them,
    with the day summaries (rollups.py) the aggregates start from."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def chunks(self, series_id: int, time_range: TimeRange, order: str = "asc") -> Iterator[Chunk]:
        return chunks(self.conn, series_id, time_range, order)

    def newest(self, series_id: int) -> tuple[int, float, bool] | None:
        row = self.conn.execute(
            "SELECT end_us, last, extra IS NULL FROM point_chunks WHERE series_id = ? "
            "ORDER BY start_us DESC LIMIT 1",
            (series_id,),
        ).fetchone()
        return None if row is None else (row[0], row[1], bool(row[2]))

    def days(self, series_id: int, time_range: TimeRange) -> list[tuple[Any, ...]]:
        return rollups.days(
            lambda sql, params: self.conn.execute(sql, params).fetchall(), series_id, time_range
        )

    def chunk_rows(
        self, series_id: int, time_range: TimeRange, days: list[int]
    ) -> list[tuple[Any, ...]]:
        sql = (
            f"SELECT {CHUNK_COLUMNS} FROM point_chunks WHERE series_id = ? "
            "AND start_us >= ? AND start_us < ?"
        )
        bounds: list[Any] = []
        if time_range.start_us is not None:
            sql += " AND end_us >= ?"
            bounds.append(time_range.start_us)
        if time_range.end_us is not None:
            sql += " AND start_us < ?"
            bounds.append(time_range.end_us)
        return [  # a day at a time: each an index range (in-process, no round trips)
            row
            for day_us in days
            for row in self.conn.execute(sql, [series_id, day_us, day_us + DAY_US, *bounds])
        ]

    def rows_at(self, series_id: int, starts: list[int]) -> list[tuple[Any, ...]]:
        return [self._row_at(series_id, start) for start in starts]

    def summaries(self, series_id: int, lo: int, hi: int) -> list[tuple[Any, ...]]:
        return self.conn.execute(
            "SELECT start_us, end_us, min, max, first, last FROM point_chunks "
            "WHERE series_id = ? AND end_us >= ? AND start_us < ? ORDER BY start_us",
            (series_id, lo, hi),
        ).fetchall()

    def chunk_at(self, series_id: int, start_us: int) -> Chunk:
        return chunk_of_row(self._row_at(series_id, start_us))

    def _row_at(self, series_id: int, start_us: int) -> tuple[Any, ...]:
        row: tuple[Any, ...] = self.conn.execute(
            f"SELECT {CHUNK_COLUMNS} FROM point_chunks WHERE series_id = ? AND start_us = ?",
            (series_id, start_us),
        ).fetchone()
        return row

    def stored_count(self, series_id: int) -> int:
        row = self.conn.execute(
            "SELECT total(count) FROM point_chunks WHERE series_id = ?", (series_id,)
        ).fetchone()
        return int(row[0])

    def series_counts(self, series_sql: str, param: int) -> tuple[int, list[int]]:
        total = self.conn.execute(
            f"SELECT total(count) FROM point_chunks WHERE series_id IN ({series_sql})", (param,)
        ).fetchone()[0]
        ids = [r[0] for r in self.conn.execute(series_sql, (param,)).fetchall()]
        return int(total), ids
