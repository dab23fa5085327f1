"""Merging small chunks (storage/chunk_merges.py) on PostgreSQL, by any node: each step in a
transaction of its own that holds the fold lock (postgres/fold.py), tried, not waited for, as
a fold's, so that no fold, delete or expiry changes the chunks it reads before it commits."""

from __future__ import annotations

from typing import Any

import psycopg

from sensorbase.storage import chunk_merges
from sensorbase.storage.postgres import fold
from sensorbase.storage.postgres.chunks import rewrite
from sensorbase.storage.postgres.reader import pg_sql


class PgMerges(chunk_merges.ChunkMerges):
    """The chunks of a transaction holding the fold lock, as chunk_merges.plan reads them."""

    def __init__(self, conn: psycopg.Connection) -> None:
        self.conn = conn

    def _rows(self, statement: str, params: tuple[Any, ...]) -> list[Any]:
        return self.conn.execute(pg_sql(statement), params).fetchall()


def merge(conn: psycopg.Connection, settled: bool, most_steps: int, wait: bool = False) -> int:
    """Merge the small chunks of every series (`settled`: chunk_merges.groups), a step a
    transaction, at most `most_steps` steps, while no other node holds the fold lock (`wait`:
    waiting for it at each step instead); the points merged. `conn` is in autocommit mode."""
    merged = 0
    after = 0
    for _ in range(most_steps):
        with conn.transaction():
            if wait:
                fold.lock(conn)
            elif not fold.try_lock(conn):
                break
            step = chunk_merges.plan(PgMerges(conn), after, settled)
            if step.add:
                rewrite(conn, step.drop, step.add)
            merged += step.points
        if step.next_series is None:
            break
        after = step.next_series
    return merged
