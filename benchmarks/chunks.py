#!/usr/bin/env python3
"""The SQLite chunk layout at scale, in one process (no HTTP): one 1 Hz series of N points (the
shared workload's dense series' values, repeated), written and folded a million points at a
time into a fresh store, then

- hourly means over the first 1M points (`Reader.aggregate_fixed`, what InfluxQL's
  `mean(value) ... GROUP BY time(1h)` and the native `every=1h` read), when N <= 2M,
- min/max/avg/count over the whole series (`Reader.aggregate`, the `stats` query),
- bytes per point of the stopped store (the file and its WAL, catalog included).

Times are the process's CPU time per query (median of 30 after 2 warm-ups), which the other
jobs of a shared machine move far less than wall time.

Usage:  .venv/bin/python benchmarks/chunks.py [--points 10000000]
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

from sensorbase.model import ResolvedBatch, TimeRange
from sensorbase.settings import Settings
from sensorbase.storage.sqlite.store import SQLiteStore

HERE = Path(__file__).resolve().parent
HOUR_US = 3_600_000_000


def _cpu_ms(query: Callable[[], object], n: int = 30) -> float:
    query()
    query()
    spent = []
    for _ in range(n):
        started = time.process_time()
        query()
        spent.append((time.process_time() - started) * 1000)
    return statistics.median(spent)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--points", type=int, default=1_000_000)
    args = ap.parse_args()
    sys.path.insert(0, str(HERE.parent.parent / "shared" / "bench"))
    import common  # the shared workload (../shared/bench/common.py)

    n = args.points
    base = Path(tempfile.mkdtemp(prefix="sensorbase-chunks-"))
    store = SQLiteStore(base / "sb.db", Settings(data_dir=base))
    store.open()
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
            hourly = _cpu_ms(lambda: reader.aggregate_fixed(sid, first, HOUR_US, 0, ("avg",)))
            print(f"hourly means over 1M points: {hourly:.2f} ms CPU")
        stats = ("min", "max", "avg", "count")
        whole = _cpu_ms(lambda: reader.aggregate(sid, TimeRange(None, None), stats))
        print(f"stats over {n:,} points: {whole:.2f} ms CPU")
    finally:
        store.close()
    size = sum(f.stat().st_size for f in base.iterdir() if f.name.startswith("sb.db"))
    print(f"disk: {size / n:.3f} bytes/point ({size:,} bytes)")
    shutil.rmtree(base)


if __name__ == "__main__":
    main()
