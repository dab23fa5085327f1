"""Merging small chunks (storage/chunk_merges.py) on SQLite, as a fold is written (fold.py):
each step planned from a read snapshot, then applied holding the writer lock by
`fold.apply_fold`, which refuses it if the chunks changed meanwhile (the generation: a fold,
a delete; a chunk it replaces gone: expiry); a refused step is planned again."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from functools import partial
from typing import Any

from sensorbase.storage import chunk_merges
from sensorbase.storage.sqlite.fold import FoldPlan, apply_alone, generation


class SQLiteMerges(chunk_merges.ChunkMerges):
    """The chunks of one connection's read transaction, as chunk_merges.plan reads them."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def _rows(self, statement: str, params: tuple[Any, ...]) -> list[Any]:
        return self.conn.execute(statement, params).fetchall()


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
            if not locked(partial(apply_alone, conn, part)):
                continue  # the chunks changed meanwhile: planned again from the same series
            merged += step.points
        if step.next_series is None:
            break
        after = step.next_series
    return merged
