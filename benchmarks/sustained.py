#!/usr/bin/env python3
"""Sustained ingest at 80% of capacity (issue 28, item 3 of the cost curve).

The goal: "10 minutes of sustained ingest at 80% of capacity: throughput never more than 20%
below its start, memory flat, the unfolded log bounded. On SQLite and PostgreSQL."

Against a fresh server started as bench.py starts it (SQLite, or PostgreSQL with
--database-url; one worker by default, as curve.py):

  1. capacity: --burst-s (20) seconds of batch ingest as fast as it goes, --writers (4)
     writers of 5,000-point native JSON requests over the --series (1,000) fleet series
  2. --minutes (10) of the same requests paced at --fraction (0.8) of that capacity: request j
     is due at j * 5,000 / rate seconds after the start, whenever the replies come, and the
     next free one of --connections (32) connections sends it (a fleet's devices do not wait
     for each other): only when every connection waits for a reply is a request sent late
     (counted, and the latest; "kept up" if none is more than 2 s late), and the schedule
     never slows

The fleet is time-major (every series at t, then at t + 10 s, ...), the shared generator's
walk (../shared/bench/common.py), and its times keep growing through the run, so the store
grows as a fleet's does. The JSON of every body is encoded before the clock starts, a cycle of
templates; a request's times are stamped into its template (a bytes join: ~0.5 ms a
5,000-point body) before its due time.

Every --every (5) seconds: acknowledged points/s, the p99 latency of the requests acknowledged
in the interval, requests late against the schedule, RSS of the server's processes and of its
helpers (the fold helper, the WAL sync) apart, from /proc; the unfolded write log's points from
/metrics (sensorbase_sqlite_log_points / sensorbase_postgres_log_points); CPU a point of the
server, its helpers and (PostgreSQL) the database's backends. The verdicts (`judge`): did the
throughput stay within 20% of its start, did the server keep up with the schedule, is RSS flat,
is the log bounded. With --reads, a one-series read (count and avg of a series not read
before, as a dashboard opening a device's page) every 0.25 s meanwhile, timed. A JSON result
and a PNG plot (throughput, p99, RSS, log over time) go to --out and beside it (the plot needs
matplotlib: `pip install -e '.[bench]'`).

Usage:  .venv/bin/python benchmarks/sustained.py [--minutes 10] [--database-url postgresql://...]
        [--series 1000] [--burst-s 20] [--fraction 0.8] [--reads] [--out benchmarks/sustained.json]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import bench
import curve

common = bench.common
BATCH = bench.BATCH
MiB = 2**20
# Verdicts: the goal's 20%; RSS "flat" within 20% of its value once warm; the log "bounded"
# if its second half's maximum is within 25% of its first half's.
THROUGHPUT_DROP = 0.2
RSS_GROWTH = 0.2
LOG_GROWTH = 0.25
WARM_S = 30.0  # windows before this are the writers' and caches' start, not judged
LATE_S = 0.1  # a request sent later than this after its due time is late
# Kept up: no request sent more than this behind its due time. Requests a little late are
# the connections' doing as much as the server's (at 600,000 points/s and 0.4 s a reply, 32
# connections are all busy); a lag that grows to seconds is the server falling behind.
LAG_S = 2.0


# ---------------------------------------------------------------------------------------------
# The fleet's bodies: templates encoded before the clock, times stamped per request


class Fleet:
    """Body j holds rounds [j * R, (j + 1) * R) of the time-major fleet (R = 5,000 / series),
    every series at each round's time. Its JSON is one of `cycle` templates encoded up front
    (values from the shared walk); `body(j)` joins the round's time into it."""

    def __init__(self, n_series: int, cycle: int = 40, seed: int = 1) -> None:
        if n_series <= 0 or BATCH % n_series:
            sys.exit(f"--series must divide {BATCH:,} (a body holds whole rounds): {n_series}")
        self.n_series = n_series
        self.rounds = BATCH // n_series
        sid, _, val = common.fleet_block(n_series, cycle * self.rounds, seed=seed)
        s, v = sid.tolist(), val.tolist()
        self.templates: list[list[list[bytes]]] = []  # per template, per round: pieces
        for b in range(cycle):
            pieces = []
            for r in range(self.rounds):
                lo = (b * self.rounds + r) * n_series
                items = [
                    f'{{"source":"s{s[i]:04d}","field":"{bench.FIELD}","time":@T@,"value":{v[i]}}}'
                    for i in range(lo, lo + n_series)
                ]
                pieces.append(",".join(items).encode().split(b"@T@"))
            self.templates.append(pieces)

    def body(self, j: int) -> bytes:
        pieces = self.templates[j % len(self.templates)]
        t = common.T0 + j * self.rounds * common.STEP_S
        stamped = [(b"%d" % (t + r * common.STEP_S)).join(p) for r, p in enumerate(pieces)]
        return b"[" + b",".join(stamped) + b"]"


# ---------------------------------------------------------------------------------------------
# The load generator


@dataclass
class Sent:
    """One acknowledged request: when it was due and sent and acknowledged (seconds since the
    drive's start), its points."""

    due: float
    sent: float
    done: float
    points: int

    @property
    def latency(self) -> float:
        return self.done - self.sent

    @property
    def late(self) -> float:
        return self.sent - self.due


@dataclass
class Drive:
    """Requests of `fleet` from body `first` on, over `connections` connections: paced at
    `rate` points/s (None: each connection sends its next request on the reply) until
    `seconds` have passed. `sent` fills as replies arrive."""

    server: bench.Server
    fleet: Fleet
    connections: int
    seconds: float
    rate: float | None = None
    first: int = 0
    sent: list[Sent] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def start(self) -> None:
        self._next = self.first
        self._lock = threading.Lock()
        self._threads = [
            threading.Thread(target=self._work, daemon=True) for _ in range(self.connections)
        ]
        self.t0 = time.perf_counter() + 0.05
        for thread in self._threads:
            thread.start()

    def join(self) -> None:
        for thread in self._threads:
            thread.join()
        if self.errors:
            raise RuntimeError(f"{len(self.errors)} write(s) failed, first: {self.errors[0]}")

    @property
    def next_body(self) -> int:
        return self._next

    def _work(self) -> None:
        conn = http.client.HTTPConnection(bench.HOST, self.server.port, timeout=600)
        path = "/v1/write?bucket=fleet&precision=s"
        headers = {**self.server.headers, "Content-Type": "application/json"}
        while not self.errors:
            with self._lock:
                j = self._next
                self._next += 1
            due = 0.0 if self.rate is None else (j - self.first) * BATCH / self.rate
            if due >= self.seconds:
                break
            body = self.fleet.body(j)
            wait = self.t0 + due - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
            sent = time.perf_counter() - self.t0
            if self.rate is None and sent >= self.seconds:
                break
            status, data = bench.request("POST", self.server.base, path, body, headers, conn)
            if status != 200:
                self.errors.append(f"{status} {data[:300]!r}")
                break
            done = time.perf_counter() - self.t0
            self.sent.append(Sent(due if self.rate else sent, sent, done, BATCH))
        conn.close()


# ---------------------------------------------------------------------------------------------
# Sampling


def runqueue_wait_s(server: bench.Server) -> float | None:
    """Seconds the threads of the server's processes (helpers apart) have waited for a CPU on
    a run queue so far (/proc/<pid>/task/*/schedstat); None where /proc does not tell. Beside
    CPU seconds it tells a server starved by the machine from one busy with its own work."""
    total, found = 0, False
    for pid, role in server.processes():
        if role != "server":
            continue
        try:
            for task in Path(f"/proc/{pid}/task").iterdir():
                total += int((task / "schedstat").read_text().split()[1])
                found = True
        except (OSError, IndexError):  # a process or thread that just ended
            continue
    return total / 1e9 if found else None


def _cpu_delta(before: dict[int, float] | None, after: dict[int, float] | None) -> float:
    if before is None or after is None:
        return float("nan")
    return sum(s - before.get(pid, 0.0) for pid, s in after.items())


def window(
    sent: list[Sent], start: float, end: float, rate: float | None
) -> dict[str, float | int | None]:
    """The requests acknowledged in [start, end): points/s, latency p50/p99 (ms), requests
    sent late in it and the latest of them (s)."""
    mine = [x for x in sent if start <= x.done < end]
    latencies = sorted(x.latency for x in mine)
    launched = [x for x in sent if start <= x.sent < end]
    return {
        "points_per_s": sum(x.points for x in mine) / (end - start),
        "requests": len(mine),
        "latency_p50_ms": latencies[len(latencies) // 2] * 1000 if latencies else None,
        "latency_p99_ms": latencies[int(len(latencies) * 0.99)] * 1000 if latencies else None,
        "late_requests": sum(x.late > LATE_S for x in launched) if rate else 0,
        "late_max_s": max((x.late for x in launched), default=0.0) if rate else 0.0,
    }


def sample_run(
    server: bench.Server, drive: Drive, every: float, database_url: str | None
) -> list[dict[str, Any]]:
    """Every `every` seconds until the drive's end: its window, RSS by role, the log's points,
    CPU by role a point (server, helpers; PostgreSQL's backends)."""
    timeline: list[dict[str, Any]] = []
    cpu = server.cpu_by_role()
    pg = bench.postgres_cpu_s(database_url)
    waited = runqueue_wait_s(server)
    at = 0.0
    while at < drive.seconds:
        at += every
        time.sleep(max(0.0, drive.t0 + at - time.perf_counter()))
        row: dict[str, Any] = {"t_s": at, **window(drive.sent, at - every, at, drive.rate)}
        now_cpu, now_pg = server.cpu_by_role(), bench.postgres_cpu_s(database_url)
        points = row["points_per_s"] * every
        for role in ("server", "helpers"):
            spent = _cpu_delta(cpu[role] if cpu else None, now_cpu[role] if now_cpu else None)
            row[f"{role}_cpu_us_per_point"] = spent / points * 1e6 if points else None
        row["load_1min"] = os.getloadavg()[0]
        now_waited = runqueue_wait_s(server)
        row["server_runqueue_wait_s_per_s"] = (
            (now_waited - waited) / every if now_waited is not None and waited is not None else None
        )
        waited = now_waited
        if database_url:
            spent = _cpu_delta(pg, now_pg)
            row["postgres_cpu_us_per_point"] = spent / points * 1e6 if points else None
        cpu, pg = now_cpu, now_pg
        row["rss_bytes"] = server.rss_by_role()
        row["log_points"] = bench.log_points(server)
        timeline.append(row)
        print(
            f"  {at:5.0f} s: {row['points_per_s']:>9,.0f} points/s, p99 "
            f"{row['latency_p99_ms'] or float('nan'):6.0f} ms, late {row['late_requests']:3d}, "
            f"RSS {row['rss_bytes']['server'] / MiB:4.0f} + "
            f"{row['rss_bytes']['helpers'] / MiB:4.0f} MiB, log {row['log_points']}, "
            f"CPU {row['server_cpu_us_per_point'] or float('nan'):.2f} + "
            f"{row['helpers_cpu_us_per_point'] or float('nan'):.2f} us/point "
            f"(server {_cores(row):.2f} cores, waiting for one "
            f"{row['server_runqueue_wait_s_per_s'] or float('nan'):.2f}), load "
            f"{row['load_1min']:.1f}",
            flush=True,
        )
    return timeline


def _cores(row: dict[str, Any]) -> float:
    """The server's CPU seconds a second in a window: under 1 while it falls behind, it was
    starved of CPU by the machine or waiting (an fsync), not busy with its own work."""
    return (row["server_cpu_us_per_point"] or 0.0) * row["points_per_s"] / 1e6


# ---------------------------------------------------------------------------------------------
# The verdicts


def judge(timeline: list[dict[str, Any]], paced: float, warm_s: float = WARM_S) -> dict[str, Any]:
    """The goal's three questions on a run's timeline (windows before `warm_s` not judged):

    - throughput: its start is the median of the first 30 s of judged windows; the lowest
      window after must be no more than 20% below it. Paced, a drop means the server fell
      behind the schedule, so beside it: requests late, latency p99 at the start and end
    - memory: RSS (server, helpers), the median of the first 30 s judged against the last 30 s
    - the log: its maximum over the run's judged first half against its second half's
    """
    judged = [r for r in timeline if r["t_s"] > warm_s] or timeline
    first = [r for r in judged if r["t_s"] <= judged[0]["t_s"] + 30] or judged[:1]
    start = statistics.median(r["points_per_s"] for r in first)
    lowest = min(r["points_per_s"] for r in judged)
    out: dict[str, Any] = {
        "paced_points_per_s": paced,
        "start_points_per_s": start,
        "lowest_points_per_s": lowest,
        "lowest_vs_start": lowest / start if start else None,
        "lowest_vs_paced": lowest / paced,
        "throughput_ok": lowest >= (1 - THROUGHPUT_DROP) * start,
        "mean_points_per_s": statistics.mean(r["points_per_s"] for r in judged),
        "late_requests": sum(r["late_requests"] for r in timeline),
        "late_max_s": max(r["late_max_s"] for r in timeline),
        "requests": sum(r["requests"] for r in timeline),
    }
    last = [r for r in judged if r["t_s"] >= judged[-1]["t_s"] - 30]
    p99 = [
        [r["latency_p99_ms"] for r in rows if r["latency_p99_ms"] is not None]
        for rows in (first, last)
    ]
    out["latency_p99_ms_start_end"] = [statistics.median(x) if x else None for x in p99]
    out["kept_up"] = out["late_max_s"] <= LAG_S
    for role in ("server", "helpers"):
        # (medians of the first and last 30 s: the helpers' RSS moves with each fold)
        was = statistics.median(r["rss_bytes"][role] for r in first)
        now = statistics.median(r["rss_bytes"][role] for r in last)
        peak = max(r["rss_bytes"][role] for r in judged)
        out[f"rss_{role}_mib"] = {"start": was / MiB, "end": now / MiB, "peak": peak / MiB}
        out[f"rss_{role}_flat"] = now <= (1 + RSS_GROWTH) * was + 16 * MiB
    logs = [r["log_points"] for r in judged if r["log_points"] is not None]
    if logs:
        half = len(logs) // 2 or 1
        first_max, second_max = max(logs[:half]), max(logs[half:] or logs)
        out["log_max_points"] = max(logs)
        out["log_max_first_second_half"] = [first_max, second_max]
        out["log_end_points"] = logs[-1]
        out["log_bounded"] = second_max <= (1 + LOG_GROWTH) * max(first_max, BATCH)
    for role in ("server", "helpers", "postgres"):
        xs = [r[f"{role}_cpu_us_per_point"] for r in judged if r.get(f"{role}_cpu_us_per_point")]
        if xs:
            out[f"{role}_cpu_us_per_point_median"] = statistics.median(xs)
    out["server_cores_median"] = statistics.median(_cores(r) for r in judged)
    waits = [
        r["server_runqueue_wait_s_per_s"]
        for r in judged
        if r.get("server_runqueue_wait_s_per_s") is not None
    ]
    if waits:
        out["server_runqueue_wait_s_per_s_median"] = statistics.median(waits)
    return out


# ---------------------------------------------------------------------------------------------
# The run


def run(args: argparse.Namespace) -> dict[str, Any]:
    fleet = Fleet(args.series)
    server = bench.Server(
        argparse.Namespace(
            port=None, admin_key=None, database_url=args.database_url, workers=args.workers
        )
    )
    server.start()
    result: dict[str, Any] = {"server_command": server.command}
    try:
        bench.checked("POST", server, "/v1/buckets", {"key": "fleet"})
        burst = Drive(server, fleet, args.writers, args.burst_s)
        burst.start()
        burst.join()
        wall = max(x.done for x in burst.sent)
        capacity = sum(x.points for x in burst.sent) / wall
        rate = args.fraction * capacity
        lat = sorted(x.latency for x in burst.sent)
        result["capacity"] = {
            "points_per_s": capacity,
            "points": sum(x.points for x in burst.sent),
            "wall_s": wall,
            "latency_p99_ms": lat[int(len(lat) * 0.99)] * 1000,
        }
        print(
            f"capacity {capacity:,.0f} points/s ({args.burst_s:.0f} s, {args.writers} writers, "
            f"p99 {result['capacity']['latency_p99_ms']:.0f} ms); pacing at {rate:,.0f} "
            f"({BATCH / rate * 1000:.1f} ms a request) for {args.minutes} min",
            flush=True,
        )
        cpu0 = os.times()
        paced = Drive(
            server, fleet, args.connections, args.minutes * 60, rate=rate, first=burst.next_body
        )
        reads = curve.Sampler(server, args.series) if args.reads else None
        paced.start()
        if reads:
            reads.start()
        timeline = sample_run(server, paced, args.every, args.database_url)
        paced.join()
        if reads:
            reads.stop()
            ms = [x["read_ms"] for x in reads.samples if x["read_ms"]]
            result["one_series_read_ms"] = common.summarize(ms) if ms else None
        cpu1 = os.times()
        result["load_generator_cpu_s"] = (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system)
    finally:
        server.stop()
        server.cleanup()
    result.update(
        {
            "paced_points_per_s": rate,
            "acknowledged_points": sum(x.points for x in paced.sent),
            "verdict": judge(timeline, rate),
            "timeline": timeline,
        }
    )
    return result


def report(result: dict[str, Any]) -> None:
    v = result["verdict"]
    rs, rh = v["rss_server_mib"], v["rss_helpers_mib"]
    print(
        f"throughput: start {v['start_points_per_s']:,.0f} points/s (paced "
        f"{v['paced_points_per_s']:,.0f}), lowest {v['lowest_points_per_s']:,.0f} "
        f"({v['lowest_vs_start']:.2f} of the start, {v['lowest_vs_paced']:.2f} of the paced rate): "
        f"{'within' if v['throughput_ok'] else 'NOT within'} 20%\n"
        f"schedule: {v['late_requests']} of {v['requests']} requests late by > "
        f"{LATE_S * 1000:.0f} ms, the latest by {v['late_max_s']:.2f} s: "
        f"{'kept up' if v['kept_up'] else 'FELL BEHIND'} (lag <= {LAG_S:.0f} s); p99 latency "
        f"start/end "
        f"{' -> '.join(f'{x:.0f}' for x in v['latency_p99_ms_start_end'] if x)} ms\n"
        f"RSS server {rs['start']:.0f} -> {rs['end']:.0f} MiB (peak {rs['peak']:.0f}): "
        f"{'flat' if v['rss_server_flat'] else 'GROWING'}; helpers {rh['start']:.0f} -> "
        f"{rh['end']:.0f} MiB (peak {rh['peak']:.0f}): "
        f"{'flat' if v['rss_helpers_flat'] else 'GROWING'}",
        flush=True,
    )
    if "log_max_points" in v:
        print(
            f"write log: max {v['log_max_points']:,.0f} points (first half / second half "
            f"{v['log_max_first_second_half']}), at the end {v['log_end_points']:,.0f}: "
            f"{'bounded' if v['log_bounded'] else 'GROWING'}"
        )
    cpu = {k: round(x, 2) for k, x in v.items() if k.endswith("cpu_us_per_point_median")}
    print(
        f"CPU a point (median of the windows, us): {cpu}; the server's CPU s a s "
        f"{v['server_cores_median']:.2f}, waiting for a CPU "
        f"{v.get('server_runqueue_wait_s_per_s_median', float('nan')):.2f} s a s",
        flush=True,
    )


def plot(result: dict[str, Any], out: Path) -> Path | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed (pip install -e '.[bench]'): no plot")
        return None
    tl, v = result["timeline"], result["verdict"]
    t = [r["t_s"] for r in tl]
    fig, ax = plt.subplots(2, 3, figsize=(15, 7))
    ax[0][0].plot(t, [r["points_per_s"] for r in tl], label="acknowledged")
    ax[0][0].axhline(v["paced_points_per_s"], color="grey", lw=0.7, label="paced")
    ax[0][0].axhline(
        (1 - THROUGHPUT_DROP) * v["start_points_per_s"], color="red", lw=0.7, ls="--",
        label="start - 20%",
    )  # fmt: skip
    ax[0][0].set(
        xlabel="s", ylabel="points/s", ylim=(0, None),
        title=f"sustained ingest ({result['store']}, {result['load_1min']:.1f} load)",
    )  # fmt: skip
    ax[0][0].legend()
    ax[0][1].plot(t, [r["latency_p99_ms"] for r in tl], label="p99")
    ax[0][1].plot(t, [r["latency_p50_ms"] for r in tl], label="p50")
    ax[0][1].set(xlabel="s", ylabel="ms", yscale="log", title="request latency, each 5 s")
    ax[0][1].legend()
    ax[1][0].plot(t, [r["rss_bytes"]["server"] / MiB for r in tl], label="server")
    ax[1][0].plot(t, [r["rss_bytes"]["helpers"] / MiB for r in tl], label="helpers")
    ax[1][0].set(xlabel="s", ylabel="MiB", ylim=(0, None), title="RSS")
    ax[1][0].legend()
    ax[1][1].plot(t, [r["log_points"] or 0 for r in tl])
    ax[1][1].set(xlabel="s", ylabel="points", ylim=(0, None), title="unfolded write log")
    for role in ("server", "helpers", "postgres"):
        if any(r.get(f"{role}_cpu_us_per_point") for r in tl):
            ax[0][2].plot(t, [r.get(f"{role}_cpu_us_per_point") for r in tl], label=role)
    ax[0][2].set(xlabel="s", ylabel="us", ylim=(0, None), title="CPU a point")
    ax[0][2].legend()
    ax[1][2].plot(t, [_cores(r) for r in tl], label="server: CPU s a s")
    if all(r.get("server_runqueue_wait_s_per_s") is not None for r in tl):
        waits = [r["server_runqueue_wait_s_per_s"] for r in tl]
        ax[1][2].plot(t, waits, label="server: waiting for a CPU, s a s")
    ax[1][2].set(xlabel="s", ylabel="s a s", ylim=(0, None), title="the shared machine")
    ax[1][2].legend(loc="upper left")
    if all("load_1min" in r for r in tl):
        load = ax[1][2].twinx()
        load.plot(t, [r["load_1min"] for r in tl], color="grey", ls=":", label="load (1 min)")
        load.set(ylabel="load average (1 min), dotted", ylim=(0, None))
    path = out.with_suffix(".png")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--minutes", type=float, default=10.0, help="of paced ingest")
    ap.add_argument("--fraction", type=float, default=0.8, help="of capacity, paced")
    ap.add_argument("--burst-s", type=float, default=20.0, help="capacity burst's length")
    ap.add_argument("--writers", type=int, default=4, help="of the capacity burst")
    ap.add_argument("--connections", type=int, default=32, help="of the paced ingest")
    ap.add_argument("--series", type=int, default=common.N_SERIES, help="fleet series")
    ap.add_argument(
        "--reads",
        action="store_true",
        help="also a one-series read every 0.25 s meanwhile (curve.py's Sampler), timed",
    )
    ap.add_argument("--every", type=float, default=5.0, help="seconds between samples")
    ap.add_argument("--workers", type=int, default=1, help="server processes")
    ap.add_argument("--database-url", default=None, help="PostgreSQL instead of SQLite")
    ap.add_argument("--out", type=Path, default=bench.HERE / "sustained.json")
    args = ap.parse_args()
    result: dict[str, Any] = {
        **bench.run_header(args.database_url),
        "args": {k: str(x) for k, x in vars(args).items()},
    }
    result.update(run(args))
    result["load_1min_end"] = os.getloadavg()[0]
    report(result)
    args.out.write_text(json.dumps(result, indent=1))
    print(f"wrote {args.out}", plot(result, args.out) or "", sep="\n")


if __name__ == "__main__":
    main()
