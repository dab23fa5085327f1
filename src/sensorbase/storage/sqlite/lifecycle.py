"""Deleting a range of points and expiring old ones (docs/lifecycle.md), inside the caller's
write transaction.

A delete folds the write log first (fold.py), as deleting a whole series does: then no log
row still holds a deleted point for a later fold to bring back, and points written after the
delete go to a log row of their own and stay. Each chunk the range reaches is dropped, or
(cut by the range) written again with the points outside it. The delete changes the chunks'
generation, so that a fold planned before it is planned again.

Expiry cuts a series' oldest chunks at the cutoff, a bounded number per transaction, and
leaves their summaries where the bucket keeps them. It does not touch the log (a point
older than the cutoff there is hidden from reads and expires once folded) nor the
generation: a fold planned meanwhile is refused only if a chunk it replaces is gone
(fold.apply_fold), so that folds keep up while a long retention pass runs. The chunk work
of both is storage/chunk_changes.py's, shared with PostgreSQL."""

from __future__ import annotations

import sqlite3

from sensorbase.model import PointColumns, TimeRange
from sensorbase.storage import chunk_changes
from sensorbase.storage.chunks import CHUNK_COLUMNS, Chunk, Summary, chunk_of_row, encode
from sensorbase.storage.sqlite.chunks import INSERT_CHUNK, SQLiteChunks
from sensorbase.storage.sqlite.fold import changed, fold

# The same start again (a late point written below an expired one) adds to the row.
_INSERT_SUMMARY = (
    "INSERT INTO point_summaries (series_id, start_us, end_us, count, min, max, sum, first, last) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (series_id, start_us) DO UPDATE SET "
    "count = count + excluded.count, sum = sum + excluded.sum, "
    "min = CASE WHEN excluded.min < min THEN excluded.min ELSE min END, "
    "max = CASE WHEN excluded.max > max THEN excluded.max ELSE max END, "
    "last = CASE WHEN excluded.end_us >= end_us THEN excluded.last ELSE last END, "
    "end_us = CASE WHEN excluded.end_us >= end_us THEN excluded.end_us ELSE end_us END"
)
RECLAIM_BYTES = 16 * 1024 * 1024  # free pages given back to the file system per delete or pass


def delete_range(conn: sqlite3.Connection, series_ids: list[int], time_range: TimeRange) -> None:
    fold(conn)
    chunk_changes.delete_range(_Changes(conn), series_ids, time_range)
    changed(conn)


def delete_summaries(conn: sqlite3.Connection, series_sql: str, param: int) -> None:
    """Delete the summaries of the series `series_sql` selects (they are being deleted)."""
    conn.execute(f"DELETE FROM point_summaries WHERE series_id IN ({series_sql})", (param,))


def expire(
    conn: sqlite3.Connection,
    series_ids: list[int],
    cutoff_us: int,
    keep_summaries: bool,
    max_chunks: int,
) -> tuple[int, int]:
    return chunk_changes.expire(_Changes(conn), series_ids, cutoff_us, keep_summaries, max_chunks)


class _Changes(SQLiteChunks):
    """The chunks of a write transaction, as storage/chunk_changes.py changes them."""

    def oldest(self, series_id: int, before_us: int, limit: int) -> list[Chunk]:
        rows = self.conn.execute(
            f"SELECT {CHUNK_COLUMNS} FROM point_chunks WHERE series_id = ? AND start_us < ? "
            "ORDER BY start_us LIMIT ?",
            (series_id, before_us, limit),
        ).fetchall()
        return [chunk_of_row(row) for row in rows]

    def replace(self, series_id: int, start_us: int, kept: PointColumns) -> None:
        self.conn.execute(
            "DELETE FROM point_chunks WHERE series_id = ? AND start_us = ?", (series_id, start_us)
        )
        if len(kept):
            self.conn.execute(INSERT_CHUNK, encode(series_id, kept))

    def add_summary(self, series_id: int, summary: Summary) -> None:
        self.conn.execute(_INSERT_SUMMARY, (series_id, *summary))


def reclaim(conn: sqlite3.Connection) -> int:
    """Give up to RECLAIM_BYTES of free pages back to the file system (the file is in
    incremental auto-vacuum); the free pages left."""
    pages = RECLAIM_BYTES // conn.execute("PRAGMA page_size").fetchone()[0]
    conn.execute(f"PRAGMA incremental_vacuum({pages})").fetchall()
    return int(conn.execute("PRAGMA freelist_count").fetchone()[0])
