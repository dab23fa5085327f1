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
(autovacuum), as for any delete."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import psycopg

from sensorbase.model import PointColumns, TimeRange
from sensorbase.storage.chunks import CHUNK_COLUMNS, chunk_of_row, expire_chunk
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
    source = PgChunks(conn)
    for series_id in series_ids:
        for chunk in list(source.chunks(series_id, time_range)):
            if time_range.contains(chunk.start_us) and time_range.contains(chunk.end_us):
                replace(conn, series_id, chunk.start_us, PointColumns.empty())
                continue
            points = chunk.points()
            inside = time_range.mask(points.time_us)
            replace(conn, series_id, chunk.start_us, points.take(np.flatnonzero(~inside)))


def expire(
    conn: psycopg.Connection,
    series_ids: list[int],
    cutoff_us: int,
    keep_summaries: bool,
    max_chunks: int,
) -> tuple[int, int]:
    """Expire the points before `cutoff_us` of up to `max_chunks` chunks of the series: the
    chunks and points expired (fewer chunks than `max_chunks`: the series are done)."""
    fold.lock(conn)
    done_chunks = done_points = 0
    for series_id in series_ids:
        left = max_chunks - done_chunks
        if left <= 0:
            break
        found = conn.execute(
            f"SELECT {CHUNK_COLUMNS} FROM point_chunks WHERE series_id = %s AND start_us < %s "
            "ORDER BY start_us LIMIT %s",
            (series_id, cutoff_us, left),
        ).fetchall()
        for row in found:
            chunk = chunk_of_row(row)
            summary, kept, expired = expire_chunk(chunk, cutoff_us)
            replace(conn, series_id, chunk.start_us, kept)
            if keep_summaries:
                conn.execute(_INSERT_SUMMARY, (series_id, *summary))
            done_chunks += 1
            done_points += expired
    return done_chunks, done_points


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
