#!/usr/bin/env python3
"""Before and after: one scenario of bench.py, run alternately on two versions of the code.

On a shared machine the same code measures 1.3x apart within an hour, so one run before a
change and one after prove nothing. This runs the working tree and a git revision (checked
out in a temporary worktree, its `src/` put first on PYTHONPATH) in random order, each run on
a fresh server, and prints every run and the medians:

  .venv/bin/python benchmarks/ab.py                  # single-point: working tree vs HEAD
  .venv/bin/python benchmarks/ab.py --ref HEAD~3 --scenario batch --runs 8
  .venv/bin/python benchmarks/ab.py --ref abc123~1 --new abc123   # one commit's own effect
  .venv/bin/python benchmarks/ab.py --ref c2aeec7 3f4fe6e --new main --scenario batch

Scenarios (higher is better for the first two, lower for the last two):

- `single`: wrk -c32 one-point writes for --seconds, as bench.py; requests/s
- `batch`: bench.py's 4 writers of 5,000-point requests, --points fleet points; points/s
- `stats`: min/max/mean/count over bench.py's 1M-point dense series; a run's figure is the
  median of --queries timed queries (after 2 warm-ups), as bench.py's; ms
- `latest`: the latest 10,000 raw points of the dense series, likewise; ms
- `columns`: the same points as columns with epoch milliseconds (`format=columns&epoch=ms`, the
  shape of bench.py's headline figure); only code that has the format runs it
- `exact`: count, stddev, p99, spread, increase and integral over the dense series, which read
  every point (query/reducers.py), likewise; ms. Only code that has these aggregates runs it
  (`--ref HEAD` for the figure alone)

A `stats` or `latest` run loads only the dense series (1M points, a few seconds; bench.py
loads its fleet first, which these queries do not read), then waits until the server has
folded its write log into chunks (/metrics' sqlite_log_points at 0) and the helpers' CPU is
still for 1.5 s (the merges done: bench.wait_settled), so that every run times the settled
store rather than wherever the fold happened to be.

Beside each run's figure stands the server's CPU time per unit: per point (batch), per
request (single), per query (stats, latest). It is read from /proc/<pid>/stat (utime + stime)
of the server's process tree just before and just after the measured phase (the writers, the
wrk or Python driver, the timed queries with their two warm-ups, so divided by --queries + 2),
and summed over the server processes: the process started, its workers and every other
descendant except the storage's helpers. Wall-clock figures on this shared 2-core machine move
1.3x with other load; the CPU a unit costs the server moves far less, since another process's
load slows the server down but does not make it do more work (it moves somewhat, with cache
and frequency effects), so it is the figure to compare first.

The helpers, the WAL sync (an fdatasync per group commit with durability=full) and the folder
(which folds the write log into chunks), are left out of that figure and shown apart as
"helpers": a fold runs when the log is due, inside the measured phase or after it depending
on how fast the writers went, so its seconds of CPU would land in one run and not in the
next and swamp a difference of a tenth of a microsecond per point; it is the store's deferred
work, not the request path that a change of the server's code mostly moves. A change that
moves work into the helpers shows there.

So a batch run also waits, after the writers, until the store has settled (the log folded,
and the helpers' CPU still for 1.5 s: the merges after the last fold done) and prints the
server's and the helpers' CPU per point until then, "until settled": what the writes cost in
all, wherever the folds fell (a fold's pages are copied into the database by the server's
checkpointer thread, so a fold inside the measured phase raises the server's figure too).

Several revisions can be compared in one go (--ref A B C), all run in one shuffled order.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, NamedTuple

import bench

ROOT = Path(__file__).resolve().parent.parent


class Run(NamedTuple):
    figure: float  # the scenario's own: points/s, requests/s or ms
    cpu_us: float  # the server processes' CPU per unit, microseconds
    helpers_us: float  # the helpers' CPU per unit, microseconds
    settled_cpu_us: float = math.nan  # batch: the server's until the store settled (below)
    settled_helpers_us: float = math.nan  # batch: the helpers' until then
    rss_mib: float = math.nan  # batch: the server processes' RSS as the writers end


def one_run(version: Path, scenario: str, args: argparse.Namespace, bodies: Any) -> Run:
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
            before = server.cpu_by_role()
            out = driver(server, "ab", args.seconds, 0)
            return measured(server, before, float(out["rps"]), out["requests"])
        if scenario == "batch":
            before = server.cpu_by_role()
            out = bench.run_writers(server, bodies, "ab")
            run = measured(server, before, float(out["points_per_s"]), out["points"])
            rss = server.rss_by_role()
            run = run._replace(rss_mib=rss["server"] / 2**20 if rss else math.nan)
            bench.wait_settled(server)
            settled = measured(server, before, run.figure, out["points"])
            return run._replace(
                settled_cpu_us=settled.cpu_us, settled_helpers_us=settled.helpers_us
            )
        bench.run_writers(server, bodies, "ab")  # the dense series
        bench.wait_settled(server)
        path = {
            "stats": bench.stats_path("ab"),
            "latest": bench.latest_path("ab"),
            "columns": bench.latest_path("ab", columns=True),
            "exact": bench.exact_path("ab"),
        }[scenario]
        before = server.cpu_by_role()
        xs, body = bench.timed_queries(server, path, args.queries)
        run = measured(server, before, statistics.median(xs), args.queries + 2)
        check_answer(scenario, body)
        return run
    finally:
        server.stop()
        server.cleanup()


def measured(
    server: bench.Server, before: dict[str, dict[int, float]] | None, figure: float, units: int
) -> Run:
    """The run's figure with the CPU per unit its server's processes used since `before`
    (NaN where /proc does not tell)."""
    after = server.cpu_by_role()
    if before is None or after is None or not units:
        return Run(figure, math.nan, math.nan)

    def used(role: str) -> float:
        was = before[role]
        return sum(s - was.get(pid, 0.0) for pid, s in after[role].items()) / units * 1e6

    return Run(figure, used("server"), used("helpers"))


def check_answer(scenario: str, body: bytes) -> None:
    """Both versions must answer the query in full, or their times say nothing."""
    if scenario in ("latest", "columns"):
        series = json.loads(body)["series"][0]
        n = len(series["points"] if scenario == "latest" else series["columns"]["value"])
        if n != 10_000:
            raise RuntimeError(f"the latest query gave {n} points, not 10,000")
    elif json.loads(body)["series"][0]["aggregates"]["count"] != 1_000_000:
        raise RuntimeError(f"the stats query did not count 1,000,000 points: {body[:300]!r}")


def build_extensions(version: Path) -> None:
    """Build a revision's compiled modules in its worktree (setup.py's, in place), as `pip
    install -e` built the working tree's: without them its server would decode through the
    slower fallbacks, and its CPU per point would say so, not what its change did."""
    if (version / "setup.py").exists():
        subprocess.run(
            [sys.executable, "setup.py", "-q", "build_ext", "--inplace"],
            cwd=version,
            check=True,
            capture_output=True,
        )


def settled_note(run: Run, cfmt: str) -> str:
    if math.isnan(run.settled_helpers_us):
        return ""
    return (
        f"; until settled: server {run.settled_cpu_us:{cfmt}},"
        f" helpers {run.settled_helpers_us:{cfmt}}"
    )


def settled_medians(runs: list[Run], cfmt: str) -> str:
    def listed(xs: list[float]) -> str:
        return f"{statistics.median(xs):{cfmt}} ({' / '.join(f'{x:{cfmt}}' for x in sorted(xs))})"

    return (
        f"; until settled: server {listed([x.settled_cpu_us for x in runs])},"
        f" helpers {listed([x.settled_helpers_us for x in runs])}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument(
        "--ref", nargs="+", default=["HEAD"], help="the git revision(s) to compare with"
    )
    ap.add_argument("--new", default=None, help="a revision instead of the working tree")
    ap.add_argument(
        "--scenario",
        choices=["single", "batch", "stats", "latest", "columns", "exact"],
        default="single",
    )
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
    for ref in (args.new, *args.ref):
        if ref is not None and ref not in versions:
            versions[ref] = Path(tempfile.mkdtemp(prefix="sensorbase-ab-"))
            subprocess.run(
                ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(versions[ref]), ref],
                check=True,
                capture_output=True,
            )
            build_extensions(versions[ref])
    order = [name for name in versions for _ in range(args.runs)]
    random.Random(args.seed).shuffle(order)
    bodies: Any = None
    if args.scenario == "batch":
        bodies = bench.fleet_bodies(args.points, seed=1)
    elif args.scenario in ("stats", "latest", "columns", "exact"):
        bodies = bench.big_bodies()
    unit = {"single": "requests/s", "batch": "points/s"}.get(args.scenario, "ms")
    per = {"single": "request", "batch": "point"}.get(args.scenario, "query")
    fmt = ",.1f" if unit == "ms" else ",.0f"
    cfmt = ".3f" if per == "point" else ".0f"
    runs: dict[str, list[Run]] = {name: [] for name in versions}
    load = [os.getloadavg()[0]]
    try:
        for name in order:
            run = one_run(versions[name], args.scenario, args, bodies)
            runs[name].append(run)
            load.append(os.getloadavg()[0])
            print(
                f"{name}: {run.figure:{fmt}} {unit}, server CPU {run.cpu_us:{cfmt}} us/{per}"
                f" (helpers {run.helpers_us:{cfmt}}{settled_note(run, cfmt)}), load {load[-1]:.2f}"
                + ("" if math.isnan(run.rss_mib) else f", server RSS {run.rss_mib:.0f} MiB"),
                flush=True,
            )
    finally:
        for path in versions.values():
            if path != ROOT:
                subprocess.run(
                    ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(path)],
                    check=False,
                    capture_output=True,
                )
    print(
        json.dumps(
            {
                "scenario": args.scenario,
                "unit": unit,
                "cpu_unit": f"us/{per}",
                "runs": {name: [x.figure for x in xs] for name, xs in runs.items()},
                "server_cpu_us": {name: [x.cpu_us for x in xs] for name, xs in runs.items()},
                "helpers_cpu_us": {name: [x.helpers_us for x in xs] for name, xs in runs.items()},
                "settled_server_cpu_us": {
                    name: [x.settled_cpu_us for x in xs] for name, xs in runs.items()
                },
                "settled_helpers_cpu_us": {
                    name: [x.settled_helpers_us for x in xs] for name, xs in runs.items()
                },
                "server_rss_mib": {name: [x.rss_mib for x in xs] for name, xs in runs.items()},
                "load_1min": load,
            }
        )
    )
    width = max(len(name) for name in runs)
    for name, xs in runs.items():
        figures = " / ".join(f"{x.figure:{fmt}}" for x in sorted(xs, key=lambda x: x.figure))
        cpus = sorted(x.cpu_us for x in xs)
        print(
            f"{name:>{width}}: median {statistics.median(x.figure for x in xs):{fmt}} {unit}"
            f" ({figures}); server CPU median {statistics.median(cpus):{cfmt}} us/{per}"
            f" ({' / '.join(f'{c:{cfmt}}' for c in cpus)}); helpers median"
            f" {statistics.median(x.helpers_us for x in xs):{cfmt}}"
            + ("" if math.isnan(xs[0].settled_helpers_us) else settled_medians(xs, cfmt))
        )
    print(f"load (1 min) from {min(load):.2f} to {max(load):.2f}")


if __name__ == "__main__":
    main()
