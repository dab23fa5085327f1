#!/usr/bin/env python3
"""The SQLite fold helper's work, in process: bench.py's fleet (1,000 series, time-major, the
shared workload's values) appended to the write log in group commits of 10,000 points, folded
whenever a fold is due and merged after each fold, as the helper does (sqlite/folder.py), then
folded and merged once writes have paused, and merged at a clean stop; the CPU of each phase
per point, the WAL pages written, the chunks left and their blobs' bytes a point.

No server, no other process: what a change to folding or merging costs, without the HTTP
path, the helper's start and the machine's other load in the figure (`ab.py --scenario batch`
gives those, as "helpers" until settled). The version measured is the one imported, so

  .venv/bin/python benchmarks/fold.py [--points 3000000] [--profile]
  PYTHONPATH=<a worktree of another revision>/src .venv/bin/python benchmarks/fold.py

compare two revisions (alternate the runs). Revisions before the helper's own connection
(`folder.connect`) or the settled fold (`fold_once(..., settled=True)`) are driven as their
helper drove them.
"""

from __future__ import annotations

import argparse
import cProfile
import inspect
import pstats
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

import bench
from sensorbase.model import ResolvedBatch
from sensorbase.settings import Settings
from sensorbase.storage.sqlite import fold, folder, merges
from sensorbase.storage.sqlite.log import append_log
from sensorbase.storage.sqlite.store import SQLiteStore

GROUP_POINTS = 10_000  # a group commit's points
CLOSE_MERGE_STEPS = 64  # as store.py's clean stop


def fleet_store(path: Path, n_series: int) -> np.ndarray[Any, Any]:
    """A store with `n_series` series (a source each); their ids."""
    store = SQLiteStore(path, Settings(data_dir=path.parent))
    store.open()
    writer = store.writer()
    tx = writer.begin()
    org = tx.create_org("o", "o")
    bucket = tx.create_bucket(org.id, "b", "b", "", {})
    ids = []
    for s in range(n_series):
        source = tx.create_source(org.id, bucket.id, f"s{s:04d}", f"s{s:04d}", {}, None)
        ids.append(tx.get_or_create_series(source.id, ["value"])["value"])
    writer.commit()
    store.close()
    return np.array(ids, np.int64)


def helper_connection(path: Path) -> sqlite3.Connection:
    if hasattr(folder, "connect"):
        conn: sqlite3.Connection = folder.connect(path)
    else:  # (as older helpers connected)
        conn = sqlite3.connect(path, isolation_level=None)
        conn.execute("PRAGMA busy_timeout = 5000")
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute(f"PRAGMA cache_size = -{folder.CACHE_KIB}")
    conn.execute("PRAGMA wal_autocheckpoint = 0")  # (so that the WAL counts every page)
    return conn


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--points", type=int, default=3_000_000, help="fleet points (1,000 series)")
    ap.add_argument("--profile", action="store_true", help="cProfile the helper's phases")
    args = ap.parse_args()
    common = bench.common  # (the shared workload)
    path = Path(tempfile.mkdtemp(prefix="sensorbase-fold-")) / "sensorbase.db"
    ids = fleet_store(path, common.N_SERIES)
    index, seconds, values = common.fleet_block(common.N_SERIES, args.points // common.N_SERIES)
    series, times = ids[index], seconds * 1_000_000
    conn = helper_connection(path)
    settled = (
        {"settled": True} if "settled" in inspect.signature(folder.fold_once).parameters else {}
    )

    def locked(fn: Callable[[], Any]) -> Any:
        return fn()

    cpu = dict.fromkeys(("fold", "merge", "settled fold", "settled merge", "close merge"), 0.0)
    profile = cProfile.Profile() if args.profile else None

    def timed(phase: str, fn: Callable[[], Any]) -> Any:
        started = time.process_time()
        if profile:
            profile.enable()
        try:
            return fn()
        finally:
            if profile:
                profile.disable()
            cpu[phase] += time.process_time() - started

    for at in range(0, len(series), GROUP_POINTS):
        part = slice(at, at + GROUP_POINTS)
        conn.execute("BEGIN IMMEDIATE")
        append_log(conn, [ResolvedBatch(series[part], times[part], values[part], None)])
        conn.execute("COMMIT")
        due = (fold.due_points(conn), fold.FOLD_ROWS)
        if timed("fold", partial(folder.fold_once, conn, locked, due)):
            timed("merge", lambda: merges.merge(conn, locked, False, folder.MERGE_STEPS))
    timed("settled fold", lambda: folder.fold_once(conn, locked, (1, 1), **settled))
    timed("settled merge", lambda: merges.merge(conn, locked, True, folder.MERGE_STEPS))
    timed("close merge", lambda: merges.merge(conn, locked, True, CLOSE_MERGE_STEPS))

    wal_pages = conn.execute("PRAGMA wal_checkpoint").fetchone()[1]
    chunks, points, blob_bytes = conn.execute(
        "SELECT count(*), sum(count), sum(length(time_us) + length(value) + length(blocks)) "
        "FROM point_chunks"
    ).fetchone()
    per_point = {phase: round(s / args.points * 1e6, 3) for phase, s in cpu.items()}
    print(f"CPU us a point: {per_point}; all {sum(cpu.values()) / args.points * 1e6:.3f}")
    print(
        f"WAL pages written {wal_pages:,}; {chunks:,} chunks of {points:,} points, "
        f"blobs {blob_bytes / points:.3f} bytes a point"
    )
    if profile:
        pstats.Stats(profile, stream=sys.stdout).sort_stats("cumulative").print_stats(30)


if __name__ == "__main__":
    main()
