"""The write log on PostgreSQL (the layout: postgres/__init__.py): a group commit's points as
one row of raw columns (storage/log_view.py), and the per-process cache that decodes each row
once for every reading thread.

A later row wins over an earlier one, so ids must follow the commits: a transaction takes
the cluster's log lock (`LOG_LOCK`) before it inserts its row and holds it to its commit.
Without it, of two nodes writing one point at once, the one committing first could win
while a read between the two commits had already seen the other's (not linearizable). It
costs one commit at a time across the nodes, each a whole group commit. A read snapshot sees
a set of ids (the cache asks which), all those below its newest."""

from __future__ import annotations

import threading

import psycopg

from sensorbase.model import PointColumns, ResolvedBatch
from sensorbase.storage.log_view import LogRow, LogView, index_row, log_row
from sensorbase.storage.postgres.schema import LOG_LOCK

_LOG_COLUMNS = "id, series_id, time_us, value, extra"


def append_log(conn: psycopg.Connection, batches: list[ResolvedBatch]) -> int:
    """Append the points of one group commit as one log row; how many."""
    row = log_row(batches)
    if row is None:
        return 0
    conn.execute("SELECT pg_advisory_xact_lock(%s)", (LOG_LOCK,))
    conn.execute(
        "INSERT INTO point_log (points, series_id, time_us, value, extra) "
        "VALUES (%s, %s, %s, %s, %s)",
        row,
    )
    return row[0]


def log_size(conn: psycopg.Connection) -> tuple[int, int]:
    """Rows and points in the log."""
    row = conn.execute("SELECT count(*), coalesce(sum(points), 0) FROM point_log").fetchone()
    return (int(row[0]), int(row[1])) if row else (0, 0)


class PgLogCache:
    """The log's rows decoded once per process and indexed by series (shared by the reading
    threads: a row holds a whole group commit, so a read must not decode it again)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rows: dict[int, LogRow] = {}
        self._by_series: dict[int, list[tuple[int, int, int]]] = {}  # -> (row, lo, hi)
        self._merged: dict[tuple[object, ...], PointColumns] = {}

    def view(self, conn: psycopg.Connection) -> LogView:
        """The log as `conn`'s open (repeatable read) transaction sees it."""
        row = conn.execute("SELECT array_agg(id) FROM point_log").fetchone()
        ids = frozenset(row[0]) if row and row[0] else frozenset()
        if not ids:
            return LogView(1, 0)
        with self._lock:
            missing = [i for i in ids if i not in self._rows]
            if len(self._rows) > len(ids) - len(missing):  # folded meanwhile: let those go
                # (a snapshot older than the fold that needs one reads it again below)
                self._rows = {i: r for i, r in self._rows.items() if i in ids}
                self._by_series = {
                    s: kept
                    for s, spans in self._by_series.items()
                    if (kept := [span for span in spans if span[0] in ids])
                }
                self._merged = {}
            rows, by_series, merged = self._rows, self._by_series, self._merged
            if missing:
                for found in conn.execute(
                    f"SELECT {_LOG_COLUMNS} FROM point_log WHERE id = ANY(%s)", (missing,)
                ):
                    index_row(found, rows, by_series)
        return LogView(min(ids), max(ids), rows, by_series, merged, ids)
