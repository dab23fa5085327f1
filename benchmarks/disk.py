#!/usr/bin/env python3
"""Where a settled SQLite store's bytes go, in process: bench.py's store (the fleet of 3M
points in `bench_r0`, the same fleet as line protocol's sources in `lp_r0`, the dense series
`big` of 1M points and wrk's single points in `single`, as many as a 15 s run of ~3,900
requests/s left) written to the write log in group commits of 10,000 points, folded and
merged as the helper does (fold.py's driving), then closed as the server stops (the settled
fold and merges, the WAL folded in). Deterministic: no server, no clock in the layout, so
that a change to the encoding or the schema shows in bytes a point to the last digit.

Prints the file's bytes a point, their breakdown by table (dbstat: payload and slack; the
chunk blobs by column), the CPU of appending, folding and merging a point, and the CPU of
queries on the settled store (bench.py's two, stats over the 1M points and the latest 10,000;
hourly means over the 1M; a fleet series' stats; a fleet bucket's point count), medians of
30 (`--runs`).

  .venv/bin/python benchmarks/disk.py [--keep] [--runs 30]
  PYTHONPATH=<a worktree of another revision>/src .venv/bin/python benchmarks/disk.py
"""

from __future__ import annotations

import argparse
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

import bench
from fold import GROUP_POINTS, helper_connection
from sensorbase.model import ResolvedBatch, TimeRange
from sensorbase.settings import Settings
from sensorbase.storage.sqlite import fold, folder, merges
from sensorbase.storage.sqlite import store as store_module
from sensorbase.storage.sqlite.log import append_log
from sensorbase.storage.sqlite.store import SQLiteStore

common = bench.common
SINGLE_POINTS = 58_516  # (what bench.py's single-point run stored, 2026-12-07)


def catalog(store: SQLiteStore) -> dict[str, Any]:
    """The buckets and series bench.py's run makes: per bucket the series ids by source."""
    writer = store.writer()
    tx = writer.begin()
    org = tx.create_org("o", "o")
    ids: dict[str, Any] = {}
    for key in ("bench_r0", "bench", "single", "lp_r0"):
        bucket = tx.create_bucket(org.id, key, key, "", {})
        names = ["big"] if key == "bench" else [f"s{s:04d}" for s in range(common.N_SERIES)]
        series = []
        for name in names:
            meta: dict[str, Any] = {}
            if key == "lp_r0":
                meta = {"influx": {"measurement": "sensor", "tags": {"id": name}}}
                name = f"sensor,id={name}"
            source = tx.create_source(org.id, bucket.id, name, name, meta, None)
            series.append(tx.get_or_create_series(source.id, ["value"])["value"])
        ids[key] = np.array(series, np.int64)
    writer.commit()
    return ids


def workload(ids: dict[str, Any]) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Each bucket's points as bench.py sends them: (series, time_us, value), in order."""
    index, seconds, values = common.fleet_block(common.N_SERIES, 3_000_000 // common.N_SERIES)
    fleet = (index, seconds * 1_000_000, values)
    big_s, big_v = common.big_series()
    big = (np.zeros(len(big_s), np.int64), big_s * 1_000_000, big_v)
    # wrk's Lua script: per thread a counter, source counter % 1000, time T0 + tid * 1e8 +
    # counter, value (counter % 97) + 0.5; two threads taking turns.
    counter = np.repeat(np.arange(1, SINGLE_POINTS // 2 + 1), 2)
    tid = np.tile([0, 1], SINGLE_POINTS // 2)
    single = (
        counter % 1000,
        (common.T0 + tid * 100_000_000 + counter) * 1_000_000,
        (counter % 97) + 0.5,
    )
    return [
        (ids[key][i], t.astype(np.int64), v.astype(np.float64))
        for key, (i, t, v) in (("bench_r0", fleet), ("lp_r0", fleet), ("bench", big),
                               ("single", single))
    ]  # fmt: skip


def breakdown(path: Path, points: int) -> None:
    conn = sqlite3.connect(path)
    size = path.stat().st_size
    print(f"file {size:,} bytes, {size / points:.4f} bytes a point ({points:,} points)")
    groups: dict[str, list[int]] = {}
    for name, pages, bytes_, payload, unused in conn.execute(
        "SELECT name, count(*), sum(pgsize), sum(payload), sum(unused) FROM dbstat GROUP BY name"
    ):
        if pages == 1 and payload < 200:
            name = "(tables and indexes of one page)"
        elif name.startswith("point_chunks") and name != "point_chunks":
            name = "point_chunks indexes"
        elif not name.startswith("point_"):
            name = "catalog"
        group = groups.setdefault(name, [0, 0, 0])
        for i, x in enumerate((bytes_, payload, unused)):
            group[i] += x
    for name, (bytes_, payload, unused) in sorted(groups.items(), key=lambda g: -g[1][0]):
        print(
            f"  {name:34s} {bytes_ / points:.4f} (payload {payload / points:.4f}, "
            f"unused {unused / points:.4f})"
        )
    row = conn.execute(
        "SELECT count(*), sum(length(time_us)), sum(length(value)), sum(length(blocks)), "
        "total(length(extra)) FROM point_chunks"
    ).fetchone()
    print(
        f"  chunk blobs ({row[0]:,} chunks): times {row[1] / points:.4f}, values "
        f"{row[2] / points:.4f}, blocks {row[3] / points:.4f}, extras {row[4] / points:.4f}"
    )
    conn.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument(
        "--page-size",
        type=int,
        default=getattr(store_module, "PAGE_SIZE", 4096),
        help="of the file",
    )
    ap.add_argument("--keep", action="store_true", help="keep the store (its path is printed)")
    ap.add_argument("--runs", type=int, default=30, help="of each query timed")
    args = ap.parse_args()
    store_module.PAGE_SIZE = args.page_size
    base = Path(tempfile.mkdtemp(prefix="sensorbase-disk-"))
    path = base / "sensorbase.db"
    settings = Settings(data_dir=base)
    store = SQLiteStore(path, settings)
    store.open()
    ids = catalog(store)
    store.close()
    conn = helper_connection(path)

    def locked(fn: Callable[[], Any]) -> Any:
        return fn()

    cpu = dict.fromkeys(("append", "fold and merge"), 0.0)
    points = 0
    for series, times, values in workload(ids):
        points += len(series)
        for at in range(0, len(series), GROUP_POINTS):
            part = slice(at, at + GROUP_POINTS)
            started = time.process_time()
            conn.execute("BEGIN IMMEDIATE")
            append_log(conn, [ResolvedBatch(series[part], times[part], values[part], None)])
            conn.execute("COMMIT")
            cpu["append"] += time.process_time() - started
            started = time.process_time()
            if folder.fold_once(conn, locked, (fold.due_points(conn), fold.FOLD_ROWS)):
                merges.merge(conn, locked, False, folder.MERGE_STEPS)
            cpu["fold and merge"] += time.process_time() - started
    conn.close()
    store = SQLiteStore(path, settings)
    store.open()
    started = time.process_time()
    store.close()  # (the settled fold and merges, the WAL folded in)
    cpu["close"] = time.process_time() - started
    breakdown(path, points)
    print("CPU us a point: " + ", ".join(f"{k} {s / points * 1e6:.3f}" for k, s in cpu.items()))
    store = SQLiteStore(path, settings)
    store.open()
    reader = store.reader()
    big, fleet = int(ids["bench"][0]), int(ids["bench_r0"][7])
    whole, stats = TimeRange(None, None), ("min", "max", "avg", "count")
    bucket = int(reader.conn.execute("SELECT id FROM buckets WHERE key = 'bench_r0'").fetchone()[0])
    queries: dict[str, Callable[[], object]] = {
        "stats over 1M": lambda: reader.aggregate(big, whole, stats),
        "latest 10,000": lambda: reader.read_range(big, whole, 10_000, "desc"),
        "hourly means over 1M": lambda: reader.aggregate_fixed(
            big, whole, 3_600_000_000, 0, ("avg",)
        ),
        "a fleet series' stats": lambda: reader.aggregate(fleet, whole, stats),
        "a fleet bucket's stats": lambda: reader.bucket_stats(bucket),
    }
    spent = {name: bench.cpu_ms(query, args.runs) for name, query in queries.items()}
    store.close()
    print(
        f"query CPU ms (median of {args.runs}): "
        + ", ".join(f"{name} {ms:.3f}" for name, ms in spent.items())
    )
    if args.keep:
        print(f"kept: {path}")
    else:
        shutil.rmtree(base)


if __name__ == "__main__":
    main()
