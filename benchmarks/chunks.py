#!/usr/bin/env python3
"""The chunk layout at scale, in one process (no HTTP): one 1 Hz series of N points (the
shared workload's dense series' values, repeated), written and folded a million points at a
time into a fresh store (SQLite, or with --database-url a new database on that PostgreSQL
server, dropped afterwards), then

- hourly means over the first 1M points (`Reader.aggregate_fixed`, what InfluxQL's
  `mean(value) ... GROUP BY time(1h)` and the native `every=1h` read), when N <= 2M,
- min/max/avg/count over the whole series (`Reader.aggregate`, the `stats` query),
- the newest 10,000 points (`Reader.read_latest`) laid out as the native query's JSON reply
  (`points_json`), what `GET /v1/query?...&order=desc&limit=10000` does besides HTTP,
- bytes per point of the stopped store (SQLite: the file and its WAL, catalog included;
  PostgreSQL: the point tables, `pg_total_relation_size`).

Times are the process's CPU time per query (median of 30 after 2 warm-ups), which the other
jobs of a shared machine move far less than wall time; on PostgreSQL also the CPU time of the
server's backends serving the database (from /proc, which counts in ticks of 10 ms: the mean
of 200 queries, not a median), and the median wall time.

Usage:  .venv/bin/python benchmarks/chunks.py [--points 10000000]
            [--database-url postgresql://postgres@127.0.0.1:5432/postgres]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import psycopg

import bench  # (this folder: benchmarks/bench.py)
from sensorbase.dialects.native.points_json import points_json
from sensorbase.model import PointColumns, ResolvedBatch, TimeRange
from sensorbase.settings import Settings
from sensorbase.storage.postgres.store import PostgresStore
from sensorbase.storage.sqlite.store import SQLiteStore

HERE = Path(__file__).resolve().parent
HOUR_US = 3_600_000_000


def _columns(points: PointColumns) -> tuple[np.ndarray, np.ndarray]:
    return points.time_us, points.value


def _backends_cpu_s(url: str) -> float:
    """CPU seconds so far of the PostgreSQL backends serving the database of `url`, summed
    (bench.py's reading of /proc)."""
    return sum((bench.postgres_cpu_s(url) or {}).values())


def _pg_costs(query: Callable[[], object], url: str, n: int = 200) -> str:
    """Per query: the client's and the backends' CPU (means of `n`) and the median wall."""
    query()
    query()
    walls = []
    server = _backends_cpu_s(url)
    client = time.process_time()
    for _ in range(n):
        started = time.perf_counter()
        query()
        walls.append((time.perf_counter() - started) * 1000)
    client = (time.process_time() - client) * 1000 / n
    server = (_backends_cpu_s(url) - server) * 1000 / n
    return (
        f"{client + server:.2f} ms CPU (client {client:.2f}, PostgreSQL {server:.2f}), "
        f"wall median {statistics.median(walls):.2f} ms"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--points", type=int, default=1_000_000)
    ap.add_argument(
        "--database-url",
        default=None,
        help="a PostgreSQL server (any database of it) to make the store's database on",
    )
    args = ap.parse_args()
    with bench.new_database(args.database_url) as url:
        _run(args.points, url, Path(tempfile.mkdtemp(prefix="sensorbase-chunks-")))


def _run(n: int, url: str | None, base: Path) -> None:
    sys.path.insert(0, str(HERE.parent.parent / "shared" / "bench"))
    import common  # the shared workload (../shared/bench/common.py)

    settings = Settings(data_dir=base, database_url=url)
    store = PostgresStore(url, settings) if url else SQLiteStore(base / "sb.db", settings)
    store.open()

    def costs(query: Callable[[], object]) -> str:
        return _pg_costs(query, url) if url else f"{bench.cpu_ms(query):.2f} ms CPU"

    try:
        writer = store.writer()
        tx = writer.begin()
        org = tx.create_org("o", "o")
        bucket = tx.create_bucket(org.id, "b", "b", "", {})
        source = tx.create_source(org.id, bucket.id, "big", "big", {}, None)
        sid = tx.get_or_create_series(source.id, ["value"])["value"]
        writer.commit()
        t0, values = int(common.T0) * 1_000_000, common.big_series()[1]
        started = time.perf_counter()
        for at in range(0, n, 1_000_000):
            m = min(1_000_000, n - at)
            times = t0 + np.arange(at, at + m, dtype=np.int64) * 1_000_000
            tx = writer.begin()
            tx.append(ResolvedBatch(np.full(m, sid, np.int64), times, np.resize(values, m), None))
            writer.commit()
            store.fold_points()
        print(f"{n:,} points written and folded in {time.perf_counter() - started:.1f} s")
        reader = store.reader()
        if n <= 2_000_000:
            first = TimeRange(t0, t0 + 1_000_000 * 1_000_000)
            hourly = costs(lambda: reader.aggregate_fixed(sid, first, HOUR_US, 0, ("avg",)))
            print(f"hourly means over 1M points: {hourly}")
        stats = ("min", "max", "avg", "count")
        whole = costs(lambda: reader.aggregate(sid, TimeRange(None, None), stats))
        print(f"stats over {n:,} points: {whole}")
        newest = costs(lambda: points_json(*_columns(reader.read_latest([sid], 10_000)[0])))
        print(f"latest 10,000 points, read and laid out as the native reply's JSON: {newest}")
        if url:
            with psycopg.connect(url, autocommit=True) as conn:
                row = conn.execute(
                    "SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c "
                    "WHERE c.relname LIKE 'point\\_%' AND c.relkind = 'r'"
                ).fetchone()
                size = int(row[0]) if row and row[0] else 0
            print(f"disk: {size / n:.3f} bytes/point of the point tables ({size:,} bytes)")
    finally:
        store.close()
    if not url:
        size = sum(f.stat().st_size for f in base.iterdir() if f.name.startswith("sb.db"))
        print(f"disk: {size / n:.3f} bytes/point ({size:,} bytes)")
    shutil.rmtree(base)


if __name__ == "__main__":
    main()
