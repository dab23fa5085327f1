"""The write log (the layout: sqlite/__init__.py): a group commit's points as one row of raw
columns, and the per-process cache that decodes each row once for every reading thread
(storage/log_view.py, shared with PostgreSQL). Ids of `point_log` follow the commits (one
writer; AUTOINCREMENT) and a fold always takes the oldest rows, so the rows a transaction
sees are exactly the ids between its min(id) and max(id)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from typing import Any

from sensorbase.model import ResolvedBatch, ResolvedPoint
from sensorbase.storage.log_view import LOG_COLUMNS, LogCache, LoggedRow, LogView, log_row


def append_log(
    conn: sqlite3.Connection, batches: list[ResolvedBatch | ResolvedPoint]
) -> LoggedRow | None:
    """Append the points of one group commit as one log row: its id, the row and the log's
    first id (the writer's log cache lets go of the rows below it), or None when there are
    no points."""
    row = log_row(batches)
    if row is None:
        return None
    done = conn.execute(
        "INSERT INTO point_log (points, series_id, time_us, value, extra) VALUES (?, ?, ?, ?, ?)",
        row,
    )
    assert done.lastrowid is not None
    # (one descent of the rowid B-tree: SQLite's min() optimisation)
    first = conn.execute("SELECT min(id) FROM point_log").fetchone()[0]
    return done.lastrowid, row, first


def log_size(conn: sqlite3.Connection) -> tuple[int, int]:
    """Rows and points in the log."""
    rows, points = conn.execute("SELECT count(*), total(points) FROM point_log").fetchone()
    return int(rows), int(points)


class SQLiteLogCache(LogCache):
    def view(self, conn: sqlite3.Connection) -> LogView:
        """The log as `conn`'s open read transaction sees it."""
        first, last = conn.execute("SELECT min(id), max(id) FROM point_log").fetchone()
        if first is None:
            return LogView(())

        def read(ids: list[int]) -> Iterable[tuple[Any, ...]]:
            wanted = set(ids)
            rows = conn.execute(
                f"SELECT {LOG_COLUMNS} FROM point_log WHERE id >= ? AND id <= ? ORDER BY id",
                (min(ids), max(ids)),
            )
            return (row for row in rows if row[0] in wanted)

        return self.view_of(first, last, None, read)
