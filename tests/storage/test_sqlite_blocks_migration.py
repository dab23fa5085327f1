"""Schema 6 -> 7 of the embedded store (schema.py's `_chunk_blocks`): a file whose chunks are
version 6's (2,048 points, one pcodec blob a column, a table without rowid, no day
summaries) keeps every point, extras included, when opened: its chunks are re-encoded in
blocks a bounded number per transaction, the day summaries made as they move, and reads,
aggregates and later writes answer as before."""

from __future__ import annotations

import math
import sqlite3
from pathlib import Path

import msgspec
import numpy as np
from pcodec import ChunkConfig, standalone

from sensorbase.model import ResolvedBatch, TimeRange
from sensorbase.settings import Settings
from sensorbase.storage.rollups import DAY_US
from sensorbase.storage.sqlite import schema
from sensorbase.storage.sqlite.store import SQLiteStore
from tests.storage.conftest import new_series

# point_chunks as schema 6 made it
CHUNKS_6 = """
CREATE TABLE point_chunks (
  series_id INTEGER NOT NULL,
  start_us INTEGER NOT NULL,
  end_us INTEGER NOT NULL,
  count INTEGER NOT NULL,
  min REAL NOT NULL, max REAL NOT NULL, sum REAL NOT NULL,
  first REAL NOT NULL, last REAL NOT NULL,
  time_us BLOB NOT NULL,
  value BLOB NOT NULL,
  extra BLOB,
  PRIMARY KEY (series_id, start_us)
) WITHOUT ROWID
"""
T0 = 1_750_000_000_000_000


def _chunk_6(series_id: int, t: np.ndarray, v: np.ndarray, extra: list[str | None]) -> tuple:
    config = ChunkConfig(compression_level=4)
    blob = None
    if any(e is not None for e in extra):
        blob = msgspec.json.encode(extra)
    return (
        series_id, int(t[0]), int(t[-1]), len(t), float(v.min()), float(v.max()),
        float(v.sum()), float(v[0]), float(v[-1]), standalone.simple_compress(t, config),
        standalone.simple_compress(v, config), blob,
    )  # fmt: skip


def test_a_schema_6_file_with_points_is_migrated(tmp_path: Path, monkeypatch: object) -> None:
    path = tmp_path / "sb.db"
    store = SQLiteStore(path, Settings(data_dir=tmp_path, durability="normal"))
    store.open()
    sid, _ = new_series(store)
    other, _ = new_series_of(store)
    store.close()
    rng = np.random.default_rng(11)
    n = 30_000  # 15 chunks of schema 6, over ~1.4 days at ~4 s
    times = (T0 + np.cumsum(rng.integers(1, 8_000_000, n))).astype(np.int64)
    values = np.round(rng.normal(20, 3, n), 1)
    values[::7] = rng.normal(0, 1, len(values[::7]))  # some chunks' values are not decimals
    extra: list[str | None] = [None] * n
    extra[12_345] = '{"note":"kept"}'
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("DROP TABLE point_chunks")  # (its triggers go with it)
    conn.execute("DROP TABLE point_rollups")
    conn.execute(CHUNKS_6)
    rows = [
        _chunk_6(s, times[at : at + 2048], values[at : at + 2048] * k, extra[at : at + 2048])
        for s, k in ((sid, 1), (other, -1))
        for at in range(0, n, 2048)
    ]
    conn.executemany(f"INSERT INTO point_chunks VALUES ({', '.join('?' * 12)})", rows)
    conn.execute("PRAGMA user_version = 6")
    conn.close()

    schema_moves = []
    real = schema._move_chunks

    def counted(c: sqlite3.Connection) -> bool:
        schema_moves.append(1)
        return real(c)

    monkeypatch.setattr(schema, "MIGRATE_CHUNKS", 4)  # type: ignore[attr-defined]
    monkeypatch.setattr(schema, "_move_chunks", counted)  # type: ignore[attr-defined]
    store.open()
    try:
        assert len(schema_moves) >= 8  # 30 old chunks, 4 a transaction
        reader = store.reader()
        version = reader.conn.execute("PRAGMA user_version").fetchone()[0]
        assert version == schema.SCHEMA_VERSION
        tables = {r[0] for r in reader.conn.execute("SELECT name FROM sqlite_master")}
        assert "point_chunks_v6" not in tables
        for s, k in ((sid, 1), (other, -1)):
            points = reader.read_range(s, TimeRange(None, None), 10 * n)
            assert np.array_equal(points.time_us, times)
            assert np.array_equal(points.value, values * k)
            assert points.extra is not None and points.extra[12_345] == '{"note":"kept"}'
            row = reader.aggregate(s, TimeRange(None, None), ("count", "min", "sum", "last")).values
            assert row["count"] == n and row["min"] == (values * k).min()
            assert math.isclose(row["sum"], (values * k).sum(), rel_tol=1e-9)  # type: ignore[arg-type]
            assert row["last"] == values[-1] * k
        days = reader.conn.execute(
            "SELECT day_us, count FROM point_rollups WHERE series_id = ? ORDER BY day_us", (sid,)
        ).fetchall()
        made = reader.conn.execute(  # (days of more than one chunk: schema 10)
            f"SELECT start_us - start_us % {DAY_US} AS d, sum(count) FROM point_chunks "
            "WHERE series_id = ? GROUP BY d HAVING count(*) > 1 ORDER BY d",
            (sid,),
        ).fetchall()
        assert days == made != []
        writer = store.writer()  # and it takes writes and folds them as a new file does
        tx = writer.begin()
        late = np.array([int(times[5]), int(times[-1]) + 1], np.int64)
        tx.append(ResolvedBatch(np.full(2, sid, np.int64), late, np.array([99.0, 98.0]), None))
        writer.commit()
        store.fold_points()
        reader = store.reader()
        row = reader.aggregate(sid, TimeRange(None, None), ("count", "max", "last")).values
        assert row == {"count": n + 1, "max": 99.0, "last": 98.0}
    finally:
        store.close()


def new_series_of(store: SQLiteStore) -> tuple[int, int]:
    """A second series of another source, in the organisation `new_series` made."""
    writer = store.writer()
    tx = writer.begin()
    org = tx.create_org("o2", "o2")
    bucket = tx.create_bucket(org.id, "b", "b", "", {})
    source = tx.create_source(org.id, bucket.id, "dev", "dev", {}, None)
    sid = tx.get_or_create_series(source.id, ["t"])["t"]
    writer.commit()
    return sid, source.id
