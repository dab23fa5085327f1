"""PostgreSQL's day summaries step (migration 7) on a database made at migration 6 with chunks
in it (written and folded by the store at that version): the rows are made from the chunks
there are, and the triggers keep them from then on.
`undo_point_rollups` turns the step back for the migration tests of the earlier steps."""

from __future__ import annotations

from typing import Any

import numpy as np
import psycopg
import pytest

from sensorbase.model import ResolvedBatch, TimeRange
from sensorbase.settings import Settings
from sensorbase.storage.postgres import schema as pg_schema
from sensorbase.storage.postgres.store import PostgresStore
from sensorbase.storage.rollups import DAY_US
from tests.pg import temporary_database

ROLLUPS_MIGRATION = next(v for v, step in pg_schema.MIGRATIONS if step is pg_schema._point_rollups)
T0 = 1_800_000_000_000_000


def undo_point_rollups(conn: psycopg.Connection) -> None:
    """The database as migration 6 left it."""
    conn.execute("DROP TABLE point_rollups")
    conn.execute("DROP TRIGGER point_rollups_add ON point_chunks")
    conn.execute("DROP TRIGGER point_rollups_remake ON point_chunks")
    conn.execute("DROP FUNCTION point_rollups_add(), point_rollups_remake()")
    conn.execute("DELETE FROM sensorbase_schema WHERE version >= %s", (ROLLUPS_MIGRATION,))


def _write(store: PostgresStore, sid: int, times: np.ndarray, values: np.ndarray) -> None:
    writer = store.writer()
    writer.begin().append(ResolvedBatch(np.full(len(times), sid, np.int64), times, values, None))
    writer.commit()


def _rows_and_made(conn: psycopg.Connection, sid: int) -> tuple[list[Any], list[Any]]:
    """The series' day rows, and those made again from its chunks (days of several)."""
    days = conn.execute(
        "SELECT day_us, start_us, end_us, count, min, max, first, last "
        "FROM point_rollups WHERE series_id = %s ORDER BY day_us",
        (sid,),
    ).fetchall()
    made = conn.execute(
        "SELECT day_us, min(start_us), max(end_us), sum(count), min(min), max(max), "
        "(array_agg(first ORDER BY start_us))[1], "
        "(array_agg(last ORDER BY start_us DESC))[1] FROM (SELECT *, "
        f"start_us - (((start_us %% {DAY_US}) + {DAY_US}) %% {DAY_US}) AS day_us "
        "FROM point_chunks WHERE series_id = %s) c GROUP BY day_us HAVING count(*) > 1 "
        "ORDER BY day_us",
        (sid,),
    ).fetchall()
    return days, made


def test_a_migration_6_database_with_chunks_gets_its_day_summaries(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rng = np.random.default_rng(7)
    n = 20_000  # 3 chunks in a day or two, and one from before 1970
    times = np.r_[-DAY_US - 5, T0 + np.arange(n, dtype=np.int64) * 3_000_000]
    values = np.round(rng.normal(20, 3, n + 1), 2)
    with temporary_database(migrated=False) as url:
        settings = Settings(database_url=url, durability="normal")
        with monkeypatch.context() as patched:  # the code of version 6: no day summaries
            patched.setattr(pg_schema, "MIGRATIONS", pg_schema.MIGRATIONS[: ROLLUPS_MIGRATION - 1])
            patched.setattr(pg_schema, "SCHEMA_VERSION", ROLLUPS_MIGRATION - 1)
            store = PostgresStore(url, settings)
            store.open()
            writer = store.writer()
            tx = writer.begin()
            org = tx.create_org("o", "o")
            bucket = tx.create_bucket(org.id, "b", "b", "", {})
            source = tx.create_source(org.id, bucket.id, "d", "d", {}, None)
            sid = tx.get_or_create_series(source.id, ["t"])["t"]
            writer.commit()
            _write(store, sid, times, values)
            store.fold_points()
            _write(store, sid, times[-3:] + 1, values[-3:])  # folded at close
            store.close()
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT max(version) FROM sensorbase_schema").fetchone() == (6,)
            assert conn.execute("SELECT to_regclass('point_rollups')").fetchone() == (None,)
        store = PostgresStore(url, settings)
        store.open()
        try:
            with psycopg.connect(url) as conn:
                days, made = _rows_and_made(conn, sid)
            # (the day before 1970 holds one chunk: no row, schema 10)
            assert days == made and len(days) >= 1 and days[0][0] > 0
            want_t = np.r_[times, times[-3:] + 1]
            want_v = np.r_[values, values[-3:]]
            got = store.reader().aggregate(
                sid, TimeRange(None, None), ("count", "min", "max", "sum", "first", "last")
            )
            assert got.values["count"] == len(want_t)
            assert got.values["min"] == want_v.min() and got.values["max"] == want_v.max()
            assert got.values["sum"] == pytest.approx(want_v.sum())
            assert got.values["first"] == values[0] and got.values["last"] == values[-1]
            _write(store, sid, times[:2] + 3, values[:2])  # kept by the triggers from now on
            store.fold_points()
            with psycopg.connect(url) as conn:
                days, made = _rows_and_made(conn, sid)
            assert days == made
        finally:
            store.close()
