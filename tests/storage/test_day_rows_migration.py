"""Schema 10 on both backends (SQLite's `_day_rows`, PostgreSQL's migration 10): a store whose
day summaries were made for every day, as schema 9 made them, keeps only those of days of more
than one chunk, reads answer as before, and the triggers keep the rows from then on."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import psycopg
import pytest

from sensorbase.model import ResolvedBatch, TimeRange
from sensorbase.settings import Settings
from sensorbase.storage import chunks
from sensorbase.storage.postgres import schema as pg_schema
from sensorbase.storage.postgres.store import PostgresStore
from sensorbase.storage.rollups import DAY_US
from sensorbase.storage.sqlite import schema
from sensorbase.storage.sqlite.store import SQLiteStore
from tests.pg import temporary_database
from tests.storage.conftest import new_series

DAY = 1_800_000_000_000_000 // DAY_US * DAY_US
# A day of one chunk, a day of three, a day of one again.
TIMES = np.r_[
    DAY + np.arange(400, dtype=np.int64) * 1_000_000,
    DAY + DAY_US + np.arange(2 * chunks.CHUNK_POINTS + 10, dtype=np.int64) * 2_000_000,
    DAY + 3 * DAY_US + np.arange(50, dtype=np.int64),
]
VALUES = np.round(np.sin(np.arange(len(TIMES)) / 11) * 30, 1)
# The rows of days of one chunk, as schema 9's triggers made them beside the others.
SINGLE_DAYS = (
    f"SELECT series_id, start_us - start_us % {DAY_US}, start_us, end_us, count, min, max, "
    "sum, first, last FROM point_chunks c WHERE NOT EXISTS (SELECT 1 FROM point_chunks o "
    "WHERE o.series_id = c.series_id AND o.start_us <> c.start_us "
    f"AND o.start_us - o.start_us % {DAY_US} = c.start_us - c.start_us % {DAY_US})"
)
# (day, chunks, points) of each day of the chunks
CHUNK_DAYS = (
    f"SELECT start_us - start_us % {DAY_US} AS d, count(*), sum(count) FROM point_chunks "
    "GROUP BY d ORDER BY d"
)


def _write(store: SQLiteStore | PostgresStore, sid: int) -> None:
    writer = store.writer()
    writer.begin().append(ResolvedBatch(np.full(len(TIMES), sid, np.int64), TIMES, VALUES, None))
    writer.commit()
    store.fold_points()


def _check(
    store: SQLiteStore | PostgresStore,
    sid: int,
    rows: list[tuple[int, int]],
    days: list[tuple[int, int, int]],
) -> None:
    """The rows left (day, count) against the days of the chunks, and the reads."""
    assert {n for _, n, _ in days} > {1}  # days of one chunk and of more
    assert sorted(rows) == [(d, points) for d, n, points in days if n > 1]
    reader = store.reader()
    got = reader.aggregate(sid, TimeRange(None, None), ("count", "min", "max", "first", "last"))
    assert got.values == {
        "count": len(TIMES),
        "min": VALUES.min(),
        "max": VALUES.max(),
        "first": VALUES[0],
        "last": VALUES[-1],
    }
    daily = reader.aggregate_fixed(sid, TimeRange(None, None), DAY_US, 0, ("count",))
    assert [(r.start_us, r.values["count"]) for r in daily] == [
        (DAY, 400),
        (DAY + DAY_US, 2 * chunks.CHUNK_POINTS + 10),
        (DAY + 3 * DAY_US, 50),
    ]


def test_a_schema_9_file_keeps_rows_of_days_of_several_chunks(tmp_path: Path) -> None:
    path = tmp_path / "sb.db"
    store = SQLiteStore(path, Settings(data_dir=tmp_path, durability="normal"))
    store.open()
    sid, _ = new_series(store)
    _write(store, sid)
    store.close()
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute(f"INSERT INTO point_rollups {SINGLE_DAYS}")  # (what schema 9 kept)
    days = conn.execute(CHUNK_DAYS).fetchall()
    assert conn.execute("SELECT count(*) FROM point_rollups").fetchone() == (len(days),)
    conn.execute("PRAGMA user_version = 9")
    conn.close()
    store.open()
    try:
        conn = store.reader().conn
        assert conn.execute("PRAGMA user_version").fetchone() == (schema.SCHEMA_VERSION,)
        _check(store, sid, conn.execute("SELECT day_us, count FROM point_rollups").fetchall(), days)
    finally:
        store.close()


def test_a_migration_9_database_keeps_rows_of_days_of_several_chunks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with temporary_database(migrated=False) as url:
        settings = Settings(database_url=url, durability="normal")
        with monkeypatch.context() as patched:  # the code of version 9 (but for the triggers)
            patched.setattr(pg_schema, "MIGRATIONS", pg_schema.MIGRATIONS[:9])
            patched.setattr(pg_schema, "SCHEMA_VERSION", 9)
            store = PostgresStore(url, settings)
            store.open()
            sid, _ = new_series(store)
            _write(store, sid)
            store.close()
        with psycopg.connect(url) as conn:
            conn.execute(f"INSERT INTO point_rollups {SINGLE_DAYS}")  # (what schema 9 kept)
            days = conn.execute(CHUNK_DAYS).fetchall()
            assert conn.execute("SELECT count(*) FROM point_rollups").fetchone() == (len(days),)
        store = PostgresStore(url, settings)
        store.open()
        try:
            with psycopg.connect(url) as conn:
                found = conn.execute("SELECT day_us, count FROM point_rollups").fetchall()
            _check(store, sid, found, days)
            writer = store.writer()  # and the triggers keep them from then on
            later = TIMES[-1] + 1 + np.arange(chunks.CHUNK_POINTS + 5, dtype=np.int64)
            batch = ResolvedBatch(np.full(len(later), sid, np.int64), later, later * 0.0, None)
            writer.begin().append(batch)
            writer.commit()
            store.fold_points()
            with psycopg.connect(url) as conn:
                found = conn.execute(
                    "SELECT day_us, count FROM point_rollups ORDER BY day_us"
                ).fetchall()
                days = conn.execute(CHUNK_DAYS).fetchall()
            assert found == [(d, points) for d, n, points in days if n > 1]
            count = store.reader().aggregate(sid, TimeRange(None, None), ("count",))
            assert count.values["count"] == len(TIMES) + len(later)
        finally:
            store.close()
