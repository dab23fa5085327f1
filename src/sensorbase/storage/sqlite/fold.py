"""Folding the write log into chunks (the layout: sqlite/__init__.py), planned from a read
snapshot and applied under the writer lock; sqlite/folder.py decides when and where it runs."""

from __future__ import annotations

import secrets
import sqlite3
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

import numpy as np
import numpy.typing as npt

from sensorbase.model import PointColumns
from sensorbase.storage import log_view
from sensorbase.storage.chunk_merges import settled_tail
from sensorbase.storage.chunks import (
    CHUNK_COLUMNS,
    CHUNK_POINTS,
    REFILL_BELOW,
    chunk_of_row,
    encode,
)
from sensorbase.storage.log_view import LOG_COLUMNS, fold_input
from sensorbase.storage.sqlite import rollups
from sensorbase.storage.sqlite.chunks import INSERT_CHUNK
from sensorbase.storage.sqlite.log import log_size

FOLD_POINTS = 500_000  # a fold is due once the log holds this many points...
FOLD_ROWS = 16_384  # ...or this many rows (group commits); more with many series (`due_points`)


def due_points(conn: sqlite3.Connection, fold_points: int = FOLD_POINTS) -> int:
    """The points that make a fold due, with as many series as there are (log_view.py)."""
    series = conn.execute("SELECT coalesce(max(id), 0) FROM series").fetchone()[0]
    return log_view.due_points(int(series), fold_points)


def needs_fold(
    conn: sqlite3.Connection, fold_points: int = FOLD_POINTS, fold_rows: int = FOLD_ROWS
) -> bool:
    rows, points = log_size(conn)
    return rows >= fold_rows or points >= fold_points


@dataclass(slots=True)
class FoldPlan:
    """What a fold (or a part of one) will write, computed without the writer lock
    (`plan_part`) and applied with it (`apply_fold`), if nothing it read has changed
    meanwhile."""

    generation: str | None  # of the chunks when planned (see _GENERATION)
    last_row: int | None  # log rows up to this id are folded (None: a part but the last)
    points: int
    drop: list[tuple[int, int]]  # chunks replaced: (series_id, start_us)
    add: list[tuple[Any, ...]]  # chunk rows to insert


_GENERATION = "point_chunks_generation"  # changed by every fold and every delete of points
# (not by expiry: apply_fold checks the chunks it replaces instead; see lifecycle.py)


@dataclass(slots=True)
class LogFold:
    """The log rows a fold takes (`read_log`): their points sorted by series, then time (at
    equal (series, time) the later write's), planned into chunks part by part (`plan_part`)."""

    generation: str | None  # of the chunks when the log was read
    last_row: int  # log rows up to this id are folded
    points: int
    series: npt.NDArray[np.int64]  # each point's series id, ascending
    new: PointColumns
    edges: list[int]  # where each series' points begin, then the end

    @property
    def series_count(self) -> int:
        return len(self.edges) - 1


def read_log(conn: sqlite3.Connection) -> LogFold | None:
    """Every log row `conn` sees, sorted once (None: the log is empty)."""
    rows = conn.execute(f"SELECT {LOG_COLUMNS} FROM point_log ORDER BY id").fetchall()
    if not rows:
        return None
    taken = fold_input(rows)
    return LogFold(
        generation(conn), rows[-1][0], len(taken.series), taken.series, taken.new, taken.edges
    )


def plan_part(
    conn: sqlite3.Connection, log: LogFold, first: int, end: int, settled: bool = False
) -> FoldPlan:
    """The fold of the log's series `first` to `end` (indexes into its series, in id order),
    from the chunks `conn` sees. Costs per series, not per point. The first part carries the
    generation the log was read under, the last the log rows to let go (see `in_parts`).
    `settled`: writes have paused, and each series' trailing small chunks are taken in
    (chunk_merges.settled_tail)."""
    end = min(end, log.series_count)
    plan = FoldPlan(log.generation if first == 0 else None, None, 0, [], [])
    if end == log.series_count:
        plan.last_row, plan.points = log.last_row, log.points
    for lo, hi in pairwise(log.edges[first : end + 1]):
        _plan_series(conn, plan, int(log.series[lo]), log.new.take(slice(lo, hi)), settled)
    return plan


def plan_fold(conn: sqlite3.Connection) -> FoldPlan | None:
    """The fold of every log row `conn` sees, as one plan (None: the log is empty)."""
    log = read_log(conn)
    return None if log is None else plan_part(conn, log, 0, log.series_count)


_SETTLED_TAIL_MOST = 64  # chunks a settled fold looks at before a series' new points


def _plan_series(
    conn: sqlite3.Connection, plan: FoldPlan, series_id: int, new: PointColumns, settled: bool
) -> None:
    lo, hi = int(new.time_us[0]), int(new.time_us[-1])
    taken_from = None
    if settled:  # (the chunks before the new points, newest first)
        before = conn.execute(
            "SELECT start_us, count FROM point_chunks WHERE series_id = ? AND start_us < ? "
            f"ORDER BY start_us DESC LIMIT {_SETTLED_TAIL_MOST}",
            (series_id, lo),
        ).fetchall()
        taken = settled_tail([count for _, count in before], len(new))
        taken_from = before[taken - 1][0] if taken else None
    if taken_from is not None:  # those chunks, and the ones the new points fall among
        touched = [
            chunk_of_row(row)
            for row in conn.execute(
                f"SELECT {CHUNK_COLUMNS} FROM point_chunks WHERE series_id = ? "
                "AND start_us >= ? AND start_us <= ? ORDER BY start_us",
                (series_id, taken_from, hi),
            )
        ]
    else:
        # The chunks the new points fall among, and the one before them if it holds fewer
        # than REFILL_BELOW points: a series' new points after its last chunk fill that up
        # (its size bounds what each fold rewrites), else they start a chunk of their own.
        touched = [
            chunk_of_row(row)
            for row in conn.execute(
                f"SELECT {CHUNK_COLUMNS} FROM point_chunks WHERE series_id = ? AND start_us = "
                "(SELECT max(start_us) FROM point_chunks WHERE series_id = ? AND start_us < ?) "
                f"UNION ALL SELECT {CHUNK_COLUMNS} FROM point_chunks WHERE series_id = ? "
                "AND start_us >= ? AND start_us <= ? ORDER BY start_us",
                (series_id, series_id, lo, series_id, lo, hi),
            )
        ]
        first = touched[0] if touched and touched[0].end_us < lo else None
        if first is not None and first.count >= REFILL_BELOW:  # full enough: left as is
            touched.pop(0)
    if touched:
        merged = PointColumns.concat([*(c.points() for c in touched), new]).latest_wins()
        plan.drop.extend((series_id, c.start_us) for c in touched)
    else:
        merged = new
    plan.add.extend(
        encode(series_id, merged.take(slice(at, at + CHUNK_POINTS)))
        for at in range(0, len(merged), CHUNK_POINTS)
    )


# Series a part of a fold plans and writes: a fold is planned and applied part by part, each
# part in a transaction of its own (sqlite/folder.py `fold_once`). The writer lock, which every
# group commit waits for on the server's event loop, is let go between parts (a fold of
# 100,000 series applied at once held it for seconds; reads and replies waited, idle
# connections expired), and the planner holds one part's chunk rows at a time, not the whole
# fleet's (~1 KB a series: a fold of a million series' log peaked at 1 GiB planned at once).
# Only the last part deletes the folded log rows: until then the log still holds points that
# chunks hold too, which reads merge as one (the log wins at equal series and time), so every
# read in between reads the same points; a part refused (a delete, an expiry meanwhile) leaves
# the log for the next fold, which writes those points again.
FOLD_PART_SERIES = 4096


def apply_fold(conn: sqlite3.Connection, plan: FoldPlan) -> bool:
    """Write `plan` in the caller's write transaction, unless the chunks changed since it was
    planned (another fold, a delete): then nothing is written and False returned. Once
    written, `plan.generation` is the chunks' new one (the next part's: FOLD_PART_SERIES)."""
    if generation(conn) != plan.generation:
        return False
    for series_id, start_us in plan.drop:  # expiry (lifecycle.py) removed or cut it meanwhile
        if not conn.execute(
            "SELECT 1 FROM point_chunks WHERE series_id = ? AND start_us = ?", (series_id, start_us)
        ).fetchone():
            return False
    # Deleted, then inserted, never `INSERT OR REPLACE`: a replace would not fire the delete
    # trigger that keeps `point_rollups` (rollups.py; recursive triggers are off).
    conn.executemany("DELETE FROM point_chunks WHERE series_id = ? AND start_us = ?", plan.drop)
    conn.executemany(INSERT_CHUNK, plan.add)
    if plan.last_row is not None:
        conn.execute("DELETE FROM point_log WHERE id <= ?", (plan.last_row,))
    plan.generation = changed(conn)
    return True


def generation(conn: sqlite3.Connection) -> str | None:
    """The chunks' generation now (see _GENERATION)."""
    found = conn.execute("SELECT value FROM settings WHERE name = ?", (_GENERATION,)).fetchone()
    return found[0] if found else None


def apply_alone(conn: sqlite3.Connection, plan: FoldPlan) -> bool:
    """`apply_fold` in a write transaction of its own (the caller holds the writer lock)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        applied = apply_fold(conn, plan)
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return applied


def changed(conn: sqlite3.Connection) -> str:
    """A new generation of the chunks (see _GENERATION), which it returns."""
    generation = secrets.token_hex(8)
    conn.execute(
        "INSERT INTO settings (name, value) VALUES (?, ?) "
        "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
        (_GENERATION, generation),
    )
    return generation


def fold(conn: sqlite3.Connection) -> int:
    """Fold every log row, inside the caller's write transaction; the points folded."""
    plan = plan_fold(conn)
    if plan is None:
        return 0
    applied = apply_fold(conn, plan)
    assert applied, "planned and applied in one transaction"
    return plan.points


def delete_series(conn: sqlite3.Connection, series_sql: str, param: int) -> None:
    """Delete the points of the series `series_sql` selects (the log is folded first, so
    that no log row keeps points of a deleted series)."""
    fold(conn)
    rollups.forget(conn, series_sql, param)  # first: then no day's row is made again
    conn.execute(f"DELETE FROM point_chunks WHERE series_id IN ({series_sql})", (param,))
    changed(conn)
