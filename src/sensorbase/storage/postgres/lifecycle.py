"""Deleting a range of points and expiring old ones on PostgreSQL (docs/lifecycle.md), in the
caller's transaction, and the lease that lets one node of a cluster run retention.

Both change the chunks, so both hold the fold lock (postgres/fold.py) to their commit. A
delete folds the log first, as deleting a whole series does: then no log row still holds a
deleted point for a later fold to bring back, and points written after the delete go to a
log row of their own and stay. Each chunk the range reaches is dropped, or (cut by the range)
written again with the points outside it.

Expiry cuts a series' oldest chunks at the cutoff, a bounded number per transaction, and
leaves their summaries (one row per chunk, or the expired part of one) where the bucket
keeps them. It does not fold the log (a point older than the cutoff there is hidden from
reads and expires once folded). The space of deleted rows is PostgreSQL's to reuse
(autovacuum), as for any delete. The chunk work of both is storage/chunk_changes.py's,
shared with SQLite."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg

from sensorbase.model import PointColumns, TimeRange
from sensorbase.storage import chunk_changes
from sensorbase.storage.chunks import CHUNK_COLUMNS, Chunk, Summary, chunk_of_row
from sensorbase.storage.postgres import fold
from sensorbase.storage.postgres.chunks import PgChunks, replace
from sensorbase.storage.postgres.pool import CONNECT_OPTIONS
from sensorbase.storage.postgres.schema import RETENTION_LOCK

# The same start again (a late point written below an expired one) adds to the row.
_INSERT_SUMMARY = """
INSERT INTO point_summaries AS s (series_id, start_us, end_us, count, min, max, sum, first, last)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (series_id, start_us) DO UPDATE SET
  count = s.count + excluded.count, sum = s.sum + excluded.sum,
  min = least(s.min, excluded.min), max = greatest(s.max, excluded.max),
  last = CASE WHEN excluded.end_us >= s.end_us THEN excluded.last ELSE s.last END,
  end_us = greatest(s.end_us, excluded.end_us)
"""


def delete_range(conn: psycopg.Connection, series_ids: list[int], time_range: TimeRange) -> None:
    fold.lock(conn)
    fold.fold_all(conn)
    chunk_changes.delete_range(_Changes(conn), series_ids, time_range)


def expire(
    conn: psycopg.Connection,
    series_ids: list[int],
    cutoff_us: int,
    keep_summaries: bool,
    max_chunks: int,
) -> tuple[int, int]:
    fold.lock(conn)
    return chunk_changes.expire(_Changes(conn), series_ids, cutoff_us, keep_summaries, max_chunks)


class _Changes(PgChunks):
    """The chunks of a write transaction, as storage/chunk_changes.py changes them."""

    def oldest(self, series_id: int, before_us: int, limit: int) -> list[Chunk]:
        rows = self.conn.execute(
            f"SELECT {CHUNK_COLUMNS} FROM point_chunks WHERE series_id = %s AND start_us < %s "
            "ORDER BY start_us LIMIT %s",
            (series_id, before_us, limit),
        ).fetchall()
        return [chunk_of_row(row) for row in rows]

    def replace(self, series_id: int, start_us: int, kept: PointColumns) -> None:
        replace(self.conn, series_id, start_us, kept)

    def add_summary(self, series_id: int, summary: Summary) -> None:
        self.conn.execute(_INSERT_SUMMARY, (series_id, *summary))


@contextmanager
def lease(url: str) -> Iterator[bool]:
    """True when this node may run a retention pass now: it holds the cluster's retention
    lock (on a connection of its own, for the pass) and no other node does."""
    with psycopg.connect(url, autocommit=True, **CONNECT_OPTIONS) as conn:
        row = conn.execute("SELECT pg_try_advisory_lock(%s)", (RETENTION_LOCK,)).fetchone()
        held = bool(row and row[0])
        try:
            yield held
        finally:
            if held:
                conn.execute("SELECT pg_advisory_unlock(%s)", (RETENTION_LOCK,))
