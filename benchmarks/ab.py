#!/usr/bin/env python3
"""Before and after: one scenario of bench.py, run alternately on two versions of the code.

On a shared machine the same code measures 1.3x apart within an hour, so one run before a
change and one after prove nothing. This runs the working tree and a git revision (checked
out in a temporary worktree, its `src/` put first on PYTHONPATH) in random order, each run on
a fresh server, and prints every run and the medians:

  .venv/bin/python benchmarks/ab.py                  # single-point: working tree vs HEAD
  .venv/bin/python benchmarks/ab.py --ref HEAD~3 --scenario batch --runs 8
  .venv/bin/python benchmarks/ab.py --ref abc123~1 --new abc123   # one commit's own effect

Scenarios: `single` (wrk -c32 one-point writes, as bench.py; requests/s) and `batch`
(bench.py's 4 writers of 5,000-point requests; points/s).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
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
        return float(bench.run_writers(server, bodies, "ab")["points_per_s"])
    finally:
        server.stop()
        server.cleanup()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--ref", default="HEAD", help="the git revision to compare with")
    ap.add_argument("--new", default=None, help="a revision instead of the working tree")
    ap.add_argument("--scenario", choices=["single", "batch"], default="single")
    ap.add_argument("--runs", type=int, default=6, help="runs of each version")
    ap.add_argument("--seconds", type=int, default=5, help="length of a single-point run")
    ap.add_argument("--points", type=int, default=2_000_000, help="points of a batch run")
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
    bodies = bench.fleet_bodies(args.points, seed=1) if args.scenario == "batch" else None
    unit = "requests/s" if args.scenario == "single" else "points/s"
    figures: dict[str, list[float]] = {name: [] for name in versions}
    try:
        for name in order:
            figure = one_run(versions[name], args.scenario, args, bodies)
            figures[name].append(figure)
            print(f"{name}: {figure:,.0f} {unit}", flush=True)
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
        runs = " / ".join(f"{x:,.0f}" for x in sorted(xs))
        print(f"{name:>14}: median {statistics.median(xs):,.0f} {unit} ({runs})")


if __name__ == "__main__":
    sys.exit(main())
