"""The write log on PostgreSQL (the layout: postgres/__init__.py): a group commit's points as
one row of raw columns, and the per-process cache that decodes each row once for every reading
thread (storage/log_view.py, shared with SQLite).

A later row wins over an earlier one, so ids must follow the commits: a transaction takes
the cluster's log lock (`LOG_LOCK`) before it inserts its row and holds it to its commit.
Without it, of two nodes writing one point at once, the one committing first could win
while a read between the two commits had already seen the other's (not linearizable). It
costs one commit at a time across the nodes, each a whole group commit. A read takes the set
of ids its repeatable-read snapshot sees (one index-only scan of the log's ids), not only
their least and greatest: what it reads stays right should a row ever commit after one with
a higher id (a view of a set the cache holds more of is made apart: log_view.LogCache)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import psycopg

from sensorbase.model import ResolvedBatch, ResolvedPoint
from sensorbase.storage.log_view import LOG_COLUMNS, LogCache, LoggedRow, LogView, log_row
from sensorbase.storage.postgres.schema import LOG_LOCK


def append_log(
    conn: psycopg.Connection, batches: list[ResolvedBatch | ResolvedPoint]
) -> LoggedRow | None:
    """Append the points of one group commit as one log row: its id, the row and the log's
    first id (the writer's log cache lets go of the rows below it), or None when there are
    no points."""
    row = log_row(batches)
    if row is None:
        return None
    conn.execute("SELECT pg_advisory_xact_lock(%s)", (LOG_LOCK,))
    # The first id in the same round trip (the subquery does not see the new row: alone in
    # the log, it is the first).
    made = conn.execute(
        "INSERT INTO point_log (points, series_id, time_us, value, extra) "
        "VALUES (%s, %s, %s, %s, %s) RETURNING id, (SELECT min(id) FROM point_log)",
        row,
    ).fetchone()
    assert made is not None
    row_id = int(made[0])
    return row_id, row, row_id if made[1] is None else min(row_id, int(made[1]))


def log_size(conn: psycopg.Connection) -> tuple[int, int]:
    """Rows and points in the log."""
    row = conn.execute("SELECT count(*), coalesce(sum(points), 0) FROM point_log").fetchone()
    return (int(row[0]), int(row[1])) if row else (0, 0)


class PgLogCache(LogCache):
    def view(self, conn: psycopg.Connection) -> LogView:
        """The log as `conn`'s open (repeatable read) transaction sees it."""
        found = conn.execute("SELECT array_agg(id ORDER BY id) FROM point_log").fetchone()
        if not found or not found[0]:
            return LogView(())
        ids = np.array(found[0], np.int64)

        def read(wanted: list[int]) -> Iterable[tuple[Any, ...]]:
            return conn.execute(
                f"SELECT {LOG_COLUMNS} FROM point_log WHERE id = ANY(%s) ORDER BY id", (wanted,)
            ).fetchall()

        return self.view_of(int(ids[0]), int(ids[-1]), ids, read)
