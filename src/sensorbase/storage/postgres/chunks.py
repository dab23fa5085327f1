"""Chunks on PostgreSQL (the encoding: storage/chunks.py, the same blocks as SQLite's; the
layout: postgres/__init__.py): the SQL that reads and stores them, and `PgChunks`, what
storage/chunk_reads.py reads them by, with the day summaries (rollups.py) the aggregates start
from; the chunks' stats are read without their blobs."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg

from sensorbase.model import PointColumns, TimeRange
from sensorbase.storage import rollups
from sensorbase.storage.chunk_merges import MERGE_BELOW
from sensorbase.storage.chunks import CHUNK_COLUMNS, CHUNK_POINTS, Chunk, chunk_of_row, encode
from sensorbase.storage.rollups import day_of

# The chunks merges.py's `small` looks for, so that it reads them alone (the only chunks of
# most series once merged), not every chunk; its condition spelled as `small` spells it, so
# that the planner sees that the index holds what it asks for (schema.py, version 8).
SMALL_INDEX = (
    "CREATE INDEX IF NOT EXISTS point_chunks_small ON point_chunks (series_id, count) "
    f"WHERE count < {MERGE_BELOW}"
)


INSERT_CHUNK = (
    "INSERT INTO point_chunks (series_id, start_us, end_us, count, min, max, sum, first, "
    "last, time_us, value, extra, blocks) "
    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
)


def encoded(series_id: int, points: PointColumns) -> list[tuple[Any, ...]]:
    """Time-ordered points of one series as the rows of their chunks."""
    return [
        encode(series_id, points.take(slice(at, at + CHUNK_POINTS)))
        for at in range(0, len(points), CHUNK_POINTS)
    ]


def rewrite(
    conn: psycopg.Connection, drop: list[tuple[int, int]], add: list[tuple[Any, ...]]
) -> None:
    """Delete the chunks `drop` names ((series_id, start_us)) and insert the rows `add`: a
    fold's or a merge's write, in the caller's transaction."""
    with conn.cursor() as cur:
        if drop:
            cur.execute(
                "DELETE FROM point_chunks c USING unnest(%s::bigint[], %s::bigint[]) AS d(s, t) "
                "WHERE c.series_id = d.s AND c.start_us = d.t",
                ([s for s, _ in drop], [t for _, t in drop]),
            )
        cur.executemany(INSERT_CHUNK, add)


def replace(conn: psycopg.Connection, series_id: int, start_us: int, kept: PointColumns) -> None:
    """The chunk at `start_us` replaced by the points `kept` of it (none: deleted)."""
    conn.execute(
        "DELETE FROM point_chunks WHERE series_id = %s AND start_us = %s", (series_id, start_us)
    )
    if len(kept):
        conn.cursor().executemany(INSERT_CHUNK, encoded(series_id, kept))


# CHUNK_COLUMNS without the time, value and extra blobs (~all of a chunk's bytes); an
# aggregate reads those of the few chunks it decodes (`PgChunks.rows_at`): stats over 1M
# points cost ~1 ms of the server's time this way against ~6 ms with every chunk's blobs.
_WITHOUT_BLOBS = (
    "start_us, end_us, count, min, max, sum, first, last, NULL::bytea, NULL::bytea, "
    "NULL::bytea, blocks"
)
_PAGE = 64  # chunks a read from the near end takes a round trip


class PgChunks:
    """The chunks one connection's read snapshot sees, as storage/chunk_reads.py reads them."""

    def __init__(self, conn: psycopg.Connection) -> None:
        self.conn = conn

    def chunks(self, series_id: int, time_range: TimeRange, order: str = "asc") -> Iterator[Chunk]:
        sql, params = _in_range(CHUNK_COLUMNS, series_id, time_range)
        sql += " ORDER BY start_us DESC" if order == "desc" else " ORDER BY start_us"
        # A page at a time: a read from the near end stops after the chunks it needs.
        with self.conn.cursor() as cur:
            cur.execute(f"{sql} LIMIT {_PAGE}", params)
            rows = cur.fetchall()
            while rows:
                for row in rows:
                    yield chunk_of_row(row)
                if len(rows) < _PAGE:
                    return
                edge = rows[-1][0]
                more = " AND start_us < %s" if order == "desc" else " AND start_us > %s"
                head, _, tail = sql.partition(" ORDER BY")
                cur.execute(f"{head}{more} ORDER BY{tail} LIMIT {_PAGE}", [*params, edge])
                rows = cur.fetchall()

    def newest(self, series_id: int) -> tuple[int, float, bool] | None:
        row = self.conn.execute(
            "SELECT end_us, last, extra IS NULL FROM point_chunks WHERE series_id = %s "
            "ORDER BY start_us DESC LIMIT 1",
            (series_id,),
        ).fetchone()
        return None if row is None else (row[0], row[1], bool(row[2]))

    def days(self, series_id: int, time_range: TimeRange) -> list[tuple[Any, ...]]:
        return rollups.days(self._fetch, series_id, time_range)

    def _fetch(self, sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
        """Run SQL of `?` marks (storage/rollups.py's)."""
        return self.conn.execute(sql.replace("%", "%%").replace("?", "%s"), params).fetchall()

    def chunk_rows(
        self, series_id: int, time_range: TimeRange, days: list[int]
    ) -> list[tuple[Any, ...]]:
        # Every day in one round trip (hourly means read the chunks of every day).
        sql, params = _in_range(_WITHOUT_BLOBS, series_id, time_range)
        day = day_of("start_us").replace("%", "%%")
        sql += f" AND {day} = ANY(%s) ORDER BY start_us"
        return self.conn.execute(sql, [*params, days]).fetchall()

    def rows_at(self, series_id: int, starts: list[int]) -> list[tuple[Any, ...]]:
        found = {
            row[0]: row
            for row in self.conn.execute(
                f"SELECT {CHUNK_COLUMNS} FROM point_chunks "
                "WHERE series_id = %s AND start_us = ANY(%s)",
                (series_id, starts),
            )
        }
        return [found[start] for start in starts]

    def summaries(self, series_id: int, lo: int, hi: int) -> list[tuple[Any, ...]]:
        return self.conn.execute(
            "SELECT start_us, end_us, min, max, first, last FROM point_chunks "
            "WHERE series_id = %s AND end_us >= %s AND start_us < %s ORDER BY start_us",
            (series_id, lo, hi),
        ).fetchall()

    def chunk_at(self, series_id: int, start_us: int) -> Chunk:
        (row,) = self.rows_at(series_id, [start_us])
        return chunk_of_row(row)

    def stored_count(self, series_id: int) -> int:
        row = self.conn.execute(
            "SELECT coalesce(sum(count), 0) FROM point_chunks WHERE series_id = %s", (series_id,)
        ).fetchone()
        return int(row[0]) if row else 0

    def series_counts(self, series_sql: str, param: int) -> tuple[int, list[int]]:
        sql = series_sql.replace("?", "%s")
        row = self.conn.execute(
            f"SELECT coalesce(sum(count), 0) FROM point_chunks WHERE series_id IN ({sql})",
            (param,),
        ).fetchone()
        ids = [r[0] for r in self.conn.execute(sql, (param,)).fetchall()]
        return (int(row[0]) if row else 0), ids


def _in_range(columns: str, series_id: int, time_range: TimeRange) -> tuple[str, list[Any]]:
    """SQL of the series' chunks reaching into the range, and its parameters."""
    sql = f"SELECT {columns} FROM point_chunks WHERE series_id = %s"
    params: list[Any] = [series_id]
    if time_range.start_us is not None:
        sql += " AND end_us >= %s"
        params.append(time_range.start_us)
    if time_range.end_us is not None:
        sql += " AND start_us < %s"
        params.append(time_range.end_us)
    return sql, params
