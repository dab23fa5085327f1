#!/usr/bin/env python3
"""Before and after: one scenario of bench.py, run alternately on two versions of the code.

On a shared machine the same code measures 1.3x apart within an hour, so one run before a
change and one after prove nothing. This runs the working tree and a git revision (checked
out in a temporary worktree, its `src/` put first on PYTHONPATH) in random order, each run on
a fresh server, and prints every run and the medians:

  .venv/bin/python benchmarks/ab.py                  # single-point: working tree vs HEAD
  .venv/bin/python benchmarks/ab.py --ref HEAD~3 --scenario batch --runs 8
  .venv/bin/python benchmarks/ab.py --ref abc123~1 --new abc123   # one commit's own effect

Scenarios (higher is better for the first two, lower for the last two):

- `single`: wrk -c32 one-point writes for --seconds, as bench.py; requests/s
- `batch`: bench.py's 4 writers of 5,000-point requests, --points fleet points; points/s
- `stats`: min/max/mean/count over bench.py's 1M-point dense series; a run's figure is the
  median of --queries timed queries (after 2 warm-ups), as bench.py's; ms
- `latest`: the latest 10,000 raw points of the dense series, likewise; ms

A `stats` or `latest` run loads only the dense series (1M points, a few seconds; bench.py
loads its fleet first, which these queries do not read), then waits until the server has
folded its write log into chunks (/metrics' sqlite_log_points at 0), so that every run times
the settled store rather than wherever the fold happened to be.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import bench

ROOT = Path(__file__).resolve().parent.parent


def one_run(version: Path, scenario: str, args: argparse.Namespace, bodies: Any) -> float:
    os.environ["PYTHONPATH"] = str(version / "src")
    server = bench.Server(
        argparse.Namespace(
            workers=args.workers, database_url=None, port=None, admin_key=None, keep=False
        )
    )
    server.start()
    try:
        bench.checked("POST", server, "/v1/buckets", {"key": "ab"})
        if scenario == "single":
            driver = bench.single_wrk if shutil.which("wrk") else bench.single_python
            return float(driver(server, "ab", args.seconds, 0)["rps"])
        if scenario == "batch":
            return float(bench.run_writers(server, bodies, "ab")["points_per_s"])
        bench.run_writers(server, bodies, "ab")  # the dense series
        wait_folded(server)
        path = bench.stats_path("ab") if scenario == "stats" else bench.latest_path("ab")
        xs, body = bench.timed_queries(server, path, args.queries)
        check_answer(scenario, body)
        return statistics.median(xs)
    finally:
        server.stop()
        server.cleanup()


def wait_folded(server: bench.Server, timeout_s: float = 120) -> None:
    """Until /metrics says the SQLite write log holds no points (a store without the gauge:
    at once)."""
    deadline = time.monotonic() + timeout_s
    while True:
        _, text = bench.request("GET", server.base, "/metrics", None, server.headers)
        found = re.search(rb"^\w*sqlite_log_points(?:\{[^}]*\})? (\S+)$", text, re.M)
        if found is None or float(found.group(1)) == 0:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"the write log still holds {found.group(1)!r} points")
        time.sleep(0.2)


def check_answer(scenario: str, body: bytes) -> None:
    """Both versions must answer the query in full, or their times say nothing."""
    if scenario == "latest":
        n = len(json.loads(body)["series"][0]["points"])
        if n != 10_000:
            raise RuntimeError(f"the latest query gave {n} points, not 10,000")
    elif json.loads(body)["series"][0]["aggregates"]["count"] != 1_000_000:
        raise RuntimeError(f"the stats query did not count 1,000,000 points: {body[:300]!r}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--ref", default="HEAD", help="the git revision to compare with")
    ap.add_argument("--new", default=None, help="a revision instead of the working tree")
    ap.add_argument("--scenario", choices=["single", "batch", "stats", "latest"], default="single")
    ap.add_argument("--runs", type=int, default=6, help="runs of each version")
    ap.add_argument("--seconds", type=int, default=5, help="length of a single-point run")
    ap.add_argument("--points", type=int, default=2_000_000, help="points of a batch run")
    ap.add_argument("--queries", type=int, default=20, help="timed queries of a stats/latest run")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--seed", type=int, default=None, help="of the run order")
    args = ap.parse_args()

    versions: dict[str, Path] = {}
    if args.new is None:
        versions["working tree"] = ROOT
    for ref in (args.new, args.ref):
        if ref is not None:
            versions[ref] = Path(tempfile.mkdtemp(prefix="sensorbase-ab-"))
            subprocess.run(
                ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(versions[ref]), ref],
                check=True,
                capture_output=True,
            )
    order = [name for name in versions for _ in range(args.runs)]
    random.Random(args.seed).shuffle(order)
    bodies: Any = None
    if args.scenario == "batch":
        bodies = bench.fleet_bodies(args.points, seed=1)
    elif args.scenario in ("stats", "latest"):
        bodies = bench.big_bodies()
    unit = {"single": "requests/s", "batch": "points/s"}.get(args.scenario, "ms")
    fmt = ",.1f" if unit == "ms" else ",.0f"
    figures: dict[str, list[float]] = {name: [] for name in versions}
    try:
        for name in order:
            figure = one_run(versions[name], args.scenario, args, bodies)
            figures[name].append(figure)
            print(f"{name}: {figure:{fmt}} {unit}", flush=True)
    finally:
        for path in versions.values():
            if path != ROOT:
                subprocess.run(
                    ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(path)],
                    check=False,
                    capture_output=True,
                )
    print(json.dumps({"scenario": args.scenario, "unit": unit, "runs": figures}))
    for name, xs in figures.items():
        runs = " / ".join(f"{x:{fmt}}" for x in sorted(xs))
        print(f"{name:>14}: median {statistics.median(xs):{fmt}} {unit} ({runs})")


if __name__ == "__main__":
    sys.exit(main())
