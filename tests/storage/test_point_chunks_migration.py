"""PostgreSQL's point chunks step (migration 6) on a database made at migration 5 with points in
it: a row per point in the week-partitioned `points` table becomes the same points in
compressed chunks, moved in bounded batches, and `points` is dropped. `undo_point_chunks`
turns the step back for the migration tests of the earlier steps."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import psycopg
import pytest

from sensorbase.model import PointColumns, ResolvedBatch, TimeRange
from sensorbase.settings import Settings
from sensorbase.storage.chunks import CHUNK_COLUMNS, CHUNK_POINTS, chunk_of_row
from sensorbase.storage.log_view import columns_of
from sensorbase.storage.postgres import schema as pg_schema
from sensorbase.storage.postgres.store import PostgresStore
from tests.pg import temporary_database
from tests.storage.test_point_rollups_migration import undo_point_rollups

CHUNKS_MIGRATION = next(v for v, step in pg_schema.MIGRATIONS if step is pg_schema._point_chunks)
T0 = 1_800_000_000_000_000
WEEK = pg_schema.PARTITION_US


def _partition(conn: psycopg.Connection, k: int) -> None:
    name = f"points_p{k}" if k >= 0 else f"points_m{-k}"
    conn.execute(
        f"CREATE TABLE IF NOT EXISTS {name} PARTITION OF points "
        f"FOR VALUES FROM ({k * WEEK}) TO ({(k + 1) * WEEK})"
    )


def _insert_rows(conn: psycopg.Connection, rows: list[tuple[int, int, float, str | None]]) -> None:
    for k in sorted({t // WEEK for _, t, _, _ in rows}):
        _partition(conn, k)
    conn.cursor().executemany(
        "INSERT INTO points (series_id, time_us, value, extra) VALUES (%s, %s, %s, %s)", rows
    )


def undo_point_chunks(conn: psycopg.Connection) -> None:
    """The database as migration 5 left it: the points of `point_chunks` and `point_log` (a
    later log row winning) as rows of a week-partitioned `points` table."""
    undo_point_rollups(conn)  # the later step's
    found: dict[tuple[int, int], tuple[float, str | None]] = {}
    for row in conn.execute(f"SELECT series_id, {CHUNK_COLUMNS} FROM point_chunks"):
        points = chunk_of_row(row[1:]).points()
        extra = points.extra or [None] * len(points)
        for t, v, e in zip(points.time_us.tolist(), points.value.tolist(), extra, strict=True):
            found[(row[0], t)] = (v, e)
    log = conn.execute("SELECT id, series_id, time_us, value, extra FROM point_log ORDER BY id")
    for row in log:
        columns = columns_of([row])
        points = columns.all_points()
        extra = points.extra or [None] * len(points)
        for s, t, v, e in zip(
            columns.series.tolist(),
            points.time_us.tolist(),
            points.value.tolist(),
            extra,
            strict=True,
        ):
            found[(s, t)] = (v, e)
    conn.execute(f"CREATE TABLE points ({pg_schema._POINTS_COLUMNS}) PARTITION BY RANGE (time_us)")
    _insert_rows(conn, [(s, t, v, e) for (s, t), (v, e) in found.items()])
    conn.execute("DROP TABLE point_log, point_chunks")
    conn.execute("INSERT INTO settings (name, value) VALUES ('points_partitioning', 'native')")
    conn.execute("DELETE FROM sensorbase_schema WHERE version >= %s", (CHUNKS_MIGRATION,))


def _at_migration_5(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A database made by the migrations before the chunks' (the code of that version)."""
    with monkeypatch.context() as patched:
        patched.setattr(pg_schema, "MIGRATIONS", pg_schema.MIGRATIONS[: CHUNKS_MIGRATION - 1])
        patched.setattr(pg_schema, "SCHEMA_VERSION", CHUNKS_MIGRATION - 1)
        with psycopg.connect(url, autocommit=True) as conn:
            pg_schema.migrate(conn)


def _catalog(conn: psycopg.Connection) -> list[int]:
    """An organisation, a bucket, a source and three series; their ids."""
    conn.execute("INSERT INTO orgs (key, name, created_us) VALUES ('o', 'o', 0)")
    conn.execute("INSERT INTO buckets (org_id, key, name, created_us) VALUES (1, 'b', 'b', 0)")
    conn.execute(
        "INSERT INTO sources (org_id, bucket_id, key, name, created_us) VALUES (1, 1, 'd', 'd', 0)"
    )
    ids = []
    for field in ("dense", "sparse", "empty"):
        row = conn.execute(
            "INSERT INTO series (source_id, field) VALUES (1, %s) RETURNING id", (field,)
        ).fetchone()
        assert row is not None
        ids.append(int(row[0]))
    return ids


def test_a_migration_5_database_with_points_moves_them_into_chunks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Small batches, so that the move takes several series batches and several pages.
    monkeypatch.setattr(pg_schema, "MOVE_SERIES", 1)
    monkeypatch.setattr(pg_schema, "MOVE_PAGE_POINTS", 1000)
    rng = np.random.default_rng(6)
    n = 2 * CHUNK_POINTS + 500  # across chunk edges and a week's partition edge
    dense_t = T0 - 1_000 * 1_000_000 + np.arange(n, dtype=np.int64) * 1_000_000
    dense_v = np.round(rng.normal(20, 3, n), 2)
    extra: list[str | None] = [None] * n
    extra[7] = '{"lat":1.5}'
    sparse_t = np.array([-3 * WEEK, 5, T0], np.int64)  # before 1970 as well
    sparse_v = np.array([-1.0, 0.0, 1e300])
    with temporary_database(migrated=False) as url:
        _at_migration_5(url, monkeypatch)
        with psycopg.connect(url, autocommit=True) as conn:
            dense, sparse, empty = _catalog(conn)
            rows = [
                (dense, t, v, e)
                for t, v, e in zip(dense_t.tolist(), dense_v.tolist(), extra, strict=True)
            ]
            rows += [
                (sparse, t, v, None)
                for t, v in zip(sparse_t.tolist(), sparse_v.tolist(), strict=True)
            ]
            _insert_rows(conn, rows)
            weeks = conn.execute("SELECT count(*) FROM pg_inherits").fetchone()
            assert weeks is not None and weeks[0] >= 3

        store = PostgresStore(url, Settings(data_dir=tmp_path, database_url=url))
        store.open()
        try:
            reader = store.reader()
            everything = TimeRange(None, None)
            got = reader.read_range(dense, everything, 10 * n)
            assert got.time_us.tolist() == dense_t.tolist()
            assert got.value.tolist() == dense_v.tolist()
            assert got.extra is not None and got.extra[7] == '{"lat":1.5}' and got.extra[8] is None
            stats = reader.aggregate(dense, everything, ("count", "min", "max", "first", "last"))
            assert stats.values == {
                "count": n,
                "min": float(dense_v.min()),
                "max": float(dense_v.max()),
                "first": float(dense_v[0]),
                "last": float(dense_v[-1]),
            }
            back = reader.read_range(sparse, everything, 10)
            assert back.time_us.tolist() == sparse_t.tolist()
            assert back.value.tolist() == sparse_v.tolist()
            assert reader.count(empty, everything) == 0
            assert reader.bucket_stats(1)["points"] == n + 3

            # The store goes on: a point rewritten replaces the moved one.
            writer = store.writer()
            tx = writer.begin()
            tx.append(ResolvedBatch(np.array([dense]), dense_t[:1], np.array([99.0]), None))
            writer.commit()
            assert store.reader().read_range(dense, everything, 1).value.tolist() == [99.0]
        finally:
            store.close()

        with psycopg.connect(url, autocommit=True) as conn:
            assert conn.execute("SELECT to_regclass('points')").fetchone() == (None,)
            version = conn.execute("SELECT max(version) FROM sensorbase_schema").fetchone()
            assert version == (pg_schema.SCHEMA_VERSION,)
            chunks = conn.execute(
                "SELECT count(*), sum(count) FROM point_chunks WHERE series_id = %s", (dense,)
            ).fetchone()
            assert chunks is not None and chunks[1] == n and chunks[0] >= 3


def test_undo_point_chunks_keeps_every_point(tmp_path: Path) -> None:
    """The helper the earlier steps' tests use: what it turns back, the step brings again."""
    with temporary_database() as url:
        store = PostgresStore(url, Settings(data_dir=tmp_path, database_url=url))
        store.open()
        writer = store.writer()
        tx = writer.begin()
        org = tx.create_org("o", "o")
        bucket = tx.create_bucket(org.id, "b", "b", "", {})
        source = tx.create_source(org.id, bucket.id, "d", "d", {}, None)
        sid = tx.get_or_create_series(source.id, ["t"])["t"]
        times = np.arange(3000, dtype=np.int64) + T0
        tx.append(ResolvedBatch(np.full(3000, sid), times, np.ones(3000), None))
        writer.commit()
        store.close()
        with psycopg.connect(url, autocommit=True) as conn:
            undo_point_chunks(conn)
        store = PostgresStore(url, Settings(data_dir=tmp_path, database_url=url))
        store.open()
        try:
            got = store.reader().read_range(sid, TimeRange(None, None), 5000)
            assert got.time_us.tolist() == times.tolist()
            assert PointColumns.concat([got]).value.tolist() == [1.0] * 3000
        finally:
            store.close()
