"""Merging small chunks (storage/chunk_merges.py) on SQLite, as a fold is written (fold.py):
each step planned from a read snapshot, then applied holding the writer lock by
`fold.apply_fold`, which refuses it if the chunks changed meanwhile (the generation: a fold,
a delete; a chunk it replaces gone: expiry); a refused step is planned again."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from functools import partial

from sensorbase.storage import chunk_merges
from sensorbase.storage.chunk_merges import MERGE_BELOW
from sensorbase.storage.chunks import CHUNK_COLUMNS, Chunk, chunk_of_row
from sensorbase.storage.sqlite.fold import FoldPlan, apply_fold, generation


class SQLiteMerges:
    """The chunks of one connection's read transaction, as chunk_merges.plan reads them."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def small(self, after_series: int, limit: int, least_points: int) -> list[int]:
        return [
            row[0]
            for row in self.conn.execute(
                f"SELECT series_id FROM point_chunks WHERE count < {MERGE_BELOW} "
                "AND series_id > ? GROUP BY series_id "
                "HAVING count(*) >= 2 AND sum(count) >= ? ORDER BY series_id LIMIT ?",
                (after_series, least_points, limit),
            )
        ]

    def counts(self, series_id: int) -> list[tuple[int, int]]:
        return self.conn.execute(
            "SELECT start_us, count FROM point_chunks WHERE series_id = ? ORDER BY start_us",
            (series_id,),
        ).fetchall()

    def chunks_at(self, series_id: int, starts: list[int]) -> list[Chunk]:
        return [
            chunk_of_row(
                self.conn.execute(
                    f"SELECT {CHUNK_COLUMNS} FROM point_chunks "
                    "WHERE series_id = ? AND start_us = ?",
                    (series_id, start_us),
                ).fetchone()
            )
            for start_us in starts
        ]


def merge(
    conn: sqlite3.Connection,
    locked: Callable[[Callable[[], bool]], bool],
    settled: bool,
    most_steps: int,
) -> int:
    """Merge the small chunks of every series (`settled`: chunk_merges.groups), a step at a
    time, each applied holding the writer lock (`locked`), at most `most_steps` steps (a step
    refused counts too); the points merged. `conn` is outside a transaction."""
    merged = 0
    after = 0
    for _ in range(most_steps):
        conn.execute("BEGIN")
        try:
            found = generation(conn)
            step = chunk_merges.plan(SQLiteMerges(conn), after, settled)
        finally:
            conn.execute("COMMIT")
        if step.add:
            part = FoldPlan(found, None, 0, step.drop, step.add)
            if not locked(partial(_apply, conn, part)):
                continue  # the chunks changed meanwhile: planned again from the same series
            merged += step.points
        if step.next_series is None:
            break
        after = step.next_series
    return merged


def _apply(conn: sqlite3.Connection, part: FoldPlan) -> bool:
    conn.execute("BEGIN IMMEDIATE")
    try:
        applied = apply_fold(conn, part)
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return applied
