"""Folding the write log into chunks on PostgreSQL (the layout: postgres/__init__.py), by any
node: every change to the chunks (a fold, a delete, expiry) holds the cluster's fold lock
(`FOLD_LOCK`, a transaction-level advisory lock) for its transaction, so a fold reads the
chunks and the log after the last change committed, and writes its chunks and deletes the
log rows it folded (by id: rows committing meanwhile stay) in one transaction. Writers never
take the lock: appending to the log goes on during a fold, on every node."""

from __future__ import annotations

from itertools import pairwise
from typing import Any

import psycopg

from sensorbase.model import PointColumns
from sensorbase.storage import log_view
from sensorbase.storage.chunks import CHUNK_COLUMNS, REFILL_BELOW, chunk_of_row
from sensorbase.storage.log_view import LOG_COLUMNS, fold_input
from sensorbase.storage.postgres.chunks import encoded, rewrite
from sensorbase.storage.postgres.schema import FOLD_LOCK

FOLD_POINTS = 200_000  # a fold is due once the log holds this many points (more with many
FOLD_ROWS = 1024  # series: `due_points`), or this many rows (group commits)
_MOST_ROWS = 4096  # log rows one fold takes (its memory: the rest wait for the next)
FOLD_PART_SERIES = 4096  # series whose chunks a fold holds at once (`_fold_part`)

# Per series of the fold: its chunks among its new points' span, and the one before.
_TOUCHED = f"""
SELECT s.sid, {", ".join("c." + c.strip() for c in CHUNK_COLUMNS.split(","))}
FROM unnest(%s::bigint[], %s::bigint[], %s::bigint[]) AS s(sid, lo, hi)
JOIN LATERAL (
  (SELECT * FROM point_chunks WHERE series_id = s.sid AND start_us < s.lo
   ORDER BY start_us DESC LIMIT 1)
  UNION ALL
  SELECT * FROM point_chunks WHERE series_id = s.sid AND start_us >= s.lo AND start_us <= s.hi
) AS c ON true
ORDER BY s.sid, c.start_us
"""


def lock(conn: psycopg.Connection) -> None:
    """Wait for the fold lock, for the rest of the caller's transaction."""
    conn.execute("SELECT pg_advisory_xact_lock(%s)", (FOLD_LOCK,))


def try_lock(conn: psycopg.Connection) -> bool:
    row = conn.execute("SELECT pg_try_advisory_xact_lock(%s)", (FOLD_LOCK,)).fetchone()
    return bool(row and row[0])


def due_points(conn: psycopg.Connection, fold_points: int = FOLD_POINTS) -> int:
    """The points that make a fold due, with as many series as there are (log_view.py)."""
    row = conn.execute("SELECT coalesce(max(id), 0) FROM series").fetchone()
    return log_view.due_points(int(row[0]) if row else 0, fold_points)


def fold(conn: psycopg.Connection) -> int:
    """Fold the log rows committed so far (up to `_MOST_ROWS` of them), in the caller's
    transaction, which holds the fold lock (`lock`); the points folded. Costs per series,
    not per point: the rows' columns are sorted once, then each series' new points go into
    its chunks."""
    rows = conn.execute(
        f"SELECT {LOG_COLUMNS} FROM point_log ORDER BY id LIMIT %s", (_MOST_ROWS,)
    ).fetchall()
    if not rows:
        return 0
    taken = fold_input(rows)
    new, series, edges = taken.new, taken.series, taken.edges
    spans = [(int(series[lo]), lo, hi) for lo, hi in pairwise(edges)]
    # Written part by part, in this one transaction: a part's chunks are read, merged and
    # written before the next part's are read, so a fold holds one part's chunk rows (~1 KB
    # a series with their Python objects), not the fleet's.
    for at in range(0, len(spans), FOLD_PART_SERIES):
        _fold_part(conn, new, spans[at : at + FOLD_PART_SERIES])
    conn.execute("DELETE FROM point_log WHERE id = ANY(%s)", ([r[0] for r in rows],))
    return len(series)


def _fold_part(
    conn: psycopg.Connection, new: PointColumns, spans: list[tuple[int, int, int]]
) -> None:
    """Fold the new points of the series `spans` names ((series id, lo, hi) into `new`)."""
    times = new.time_us
    touched: dict[int, list[Any]] = {}
    for row in conn.execute(
        _TOUCHED,
        (
            [s for s, _, _ in spans],
            [int(times[lo]) for _, lo, _ in spans],
            [int(times[hi - 1]) for _, _, hi in spans],
        ),
    ):
        touched.setdefault(row[0], []).append(chunk_of_row(row[1:]))
    drop: list[tuple[int, int]] = []
    add: list[tuple[Any, ...]] = []
    for series_id, lo, hi in spans:
        points = new.take(slice(lo, hi))
        chunks = touched.pop(series_id, [])
        # The chunk before the new points is rewritten only while it holds fewer than
        # REFILL_BELOW points (as on SQLite, storage/chunks.py): a series' new points after
        # its last chunk fill that up (its size bounds what each fold rewrites), else they
        # start a chunk of their own.
        before = chunks and chunks[0].end_us < int(points.time_us[0])
        if before and chunks[0].count >= REFILL_BELOW:
            chunks = chunks[1:]
        if chunks:
            points = PointColumns.concat([*(c.points() for c in chunks), points]).latest_wins()
            drop.extend((series_id, c.start_us) for c in chunks)
        add.extend(encoded(series_id, points))
    rewrite(conn, drop, add)


def fold_all(conn: psycopg.Connection) -> int:
    """Fold every log row committed so far, in the caller's transaction (which holds the
    fold lock); the points folded."""
    total = 0
    while folded := fold(conn):
        total += folded
    return total
