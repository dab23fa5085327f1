"""VictoriaMetrics beside Sensorbase in curve.py's series scenario (`curve.py --peer victoria`).

The same points (curve.fleet_per_writer's fleet, as InfluxDB line protocol to VictoriaMetrics'
own `/write`: `sensor,source=s0001 value=21.3 1577836800`, db=fleet), the same 2 writers of
5,000-point requests (bench.run_writers), the same sampler (curve.Sampler: the server's RSS
and one one-series read every 0.25 s, from a process of its own), VictoriaMetrics started as
the peer benchmark starts it (`../shared/bench/victoria_bench.py` through
peers.victoria_aside: caches off, 100 years' retention, a free loopback port).

What differs, and why the figures still answer the same question:
- the read: one `GET /api/v1/query` at the end of the data, the series' `count_over_time` and
  `avg_over_time` over all its points in one request (a union of the two, labelled): the count
  and avg that Sensorbase's `aggregate=count,avg` answers, computed by the server, a few
  bytes back either way (`/api/v1/export` would send every raw point to be counted here);
- VictoriaMetrics acknowledges a write before it is on disk (rows buffered in memory, flushed
  and searchable about a second later), Sensorbase once committed and synced: its ingest is
  not a durable one, and a read during the ingest sees up to a second less of it;
- settled: after the ingest the reads go on until VictoriaMetrics has no pending rows and no
  merge running (its /metrics), as Sensorbase's go on until its write log is folded;
- disk: its data directory after a clean stop (SIGTERM, which flushes what it buffered), by
  directory (`data`: the points; `indexdb`: the series names and their index, what
  Sensorbase's catalog holds; `cache`: look-up caches it saves at a stop), then again after
  `/internal/force_merge` (its floor, the figure the peer benchmark reports), both as `du`
  counts them (allocated blocks).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

import bench
import curve
import peers

common = bench.common
SETTLE_WAIT_S = 600.0


class Victoria:
    """VictoriaMetrics in a directory of its own, shaped as bench.Server for curve.Sampler and
    bench.run_writers (`base`, `headers`, `admin_key`, `cpu_by_role`, `rss_by_role`)."""

    admin_key = ""  # (bench.run_writers sends it as a token with line protocol: not looked at)

    def __init__(self) -> None:
        self.vb = peers.victoria_aside("curve-victoria-")
        self.base = f"http://{self.vb.HOST}:{self.vb.PORT}"
        self.headers: dict[str, str] = {}
        self.dir = Path(self.vb.BASE)
        self.proc: subprocess.Popen[bytes] | None = None
        self.argv: list[bytes] = []

    def start(self) -> None:
        self.proc = self.vb.start()
        peers._started(self.proc, str(self.dir / "vm.log"))
        self.argv = Path(f"/proc/{self.proc.pid}/cmdline").read_bytes().split(b"\0")[:-1]

    def restart(self) -> None:
        """Started again on its data (victoria_bench's start() begins from an empty directory),
        with the command line it ran with."""
        log = open(self.dir / "vm.log", "ab")  # noqa: SIM115 (lives as long as the server)
        self.proc = subprocess.Popen(self.argv, stdout=log, stderr=log)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            peers._started(self.proc, str(self.dir / "vm.log"))
            try:
                self.vb.req("GET", "/health")
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("victoria-metrics did not come back")

    def stop(self) -> None:
        """A clean stop: SIGTERM, on which it writes out the rows it buffered."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=300)
        self.proc = None

    def cleanup(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)

    def cpu_by_role(self) -> dict[str, dict[int, float]] | None:
        if self.proc is None:
            return None
        return {"server": {self.proc.pid: peers.process_cpu_s(self.proc.pid)}, "helpers": {}}

    def rss_by_role(self) -> dict[str, int]:
        if self.proc is None:
            return {"server": 0, "helpers": 0}
        pages = int(Path(f"/proc/{self.proc.pid}/statm").read_text().split()[1])
        return {"server": pages * os.sysconf("SC_PAGE_SIZE"), "helpers": 0}

    def busy(self) -> float:
        """Rows buffered and not yet flushed, and merges running, from its /metrics."""
        text = self.vb.req("GET", "/metrics").decode()
        found = re.findall(
            r"^vm_(?:pending_rows|active_merges|active_force_merges)(?:\{[^}]*\})? (\S+)$",
            text,
            re.M,
        )
        return sum(float(x) for x in found)

    def settle(self, still_s: float = 2.0) -> float:
        """Seconds until nothing is pending nor merging for `still_s` (SETTLE_WAIT_S at most)."""
        started = time.monotonic()
        still_since = None
        while time.monotonic() - started < SETTLE_WAIT_S:
            if self.busy():
                still_since = None
            elif still_since is None:
                still_since = time.monotonic()
            elif time.monotonic() - still_since >= still_s:
                break
            time.sleep(0.2)
        return time.monotonic() - started


def read_path(n_steps: int) -> Callable[[int], str]:
    """The one-series read of series k: its count and avg over all its points (n_steps of
    them, 10 s apart from common.T0), one request at the end of the data, caches off."""
    window = (n_steps + 1) * common.STEP_S
    end = common.T0 + n_steps * common.STEP_S

    def path(k: int) -> str:
        sel = f'sensor_{curve.FIELD}{{db="fleet",source="s{k:04d}"}}'
        query = (
            f'union(label_set(count_over_time({sel}[{window}s]), "agg", "count"), '
            f'label_set(avg_over_time({sel}[{window}s]), "agg", "avg"))'
        )
        return "/api/v1/query?" + urllib.parse.urlencode(
            {"query": query, "time": end, "nocache": 1}
        )

    return path


def checked_answers(vm: Victoria, n_series: int, n_steps: int) -> dict[str, Any]:
    """A few series' count and avg as VictoriaMetrics answers them, against the generator's
    own points: a peer that lost or changed points would not be measured."""
    _, _, val = common.fleet_block(n_series, n_steps, seed=1)
    by_series = val.reshape(n_steps, n_series)
    path = read_path(n_steps)
    out = {}
    for k in sorted({0, n_series // 2, n_series - 1}):
        answer = json.loads(vm.vb.req("GET", path(k)))["data"]["result"]
        got = {r["metric"]["agg"]: float(r["value"][1]) for r in answer}
        want = {"count": float(n_steps), "avg": float(np.mean(by_series[:, k]))}
        if got.get("count") != want["count"] or abs(got.get("avg", 0) - want["avg"]) > 1e-6:
            raise RuntimeError(f"VictoriaMetrics answered {got} for s{k:04d}, not {want}")
        out[f"s{k:04d}"] = got
    return out


def disk(path: Path, points: int) -> dict[str, Any]:
    """Its data directory's bytes (allocated blocks, as `du`), whole and by directory."""
    by_dir = {p.name: common.du_bytes(str(p), allocated=True) for p in path.iterdir()}
    total = sum(by_dir.values())
    return {
        "bytes": total,
        "apparent_bytes": common.du_bytes(str(path)),
        "by_dir": by_dir,
        "points": points,
        "bytes_per_point": total / points,
        "points_bytes_per_point": by_dir.get("data", 0) / points,
        "catalog_bytes_per_point": by_dir.get("indexdb", 0) / points,
        # without `cache/`: what it rebuilds if lost (Sensorbase's file holds no such thing)
        "store_bytes_per_point": (total - by_dir.get("cache", 0)) / points,
    }


def run_series(args: argparse.Namespace, n_series: int) -> dict[str, Any]:
    """curve.py's series scenario, one fleet size, on a fresh VictoriaMetrics."""
    print(f"VictoriaMetrics: {args.series_points:,} points over {n_series:,} series", flush=True)
    bodies = curve.fleet_per_writer(n_series, args.series_points, seed=1, lineproto=True)
    n_steps = max(1, args.series_points // n_series)
    vm = Victoria()
    vm.start()
    try:
        sampler = curve.Sampler(vm, n_series, read_path(n_steps), log=False)
        row = curve.series_ingest(vm, sampler, bodies, lineproto=True)
        row["settle_s"] = vm.settle()
        curve.series_reads(row, sampler)
        row["checked"] = checked_answers(vm, n_series, n_steps)
        vm.stop()
        row["disk"] = disk(vm.dir / "data", row["points"])
        vm.restart()
        vm.vb.req("GET", "/internal/force_merge")
        row["force_merge_s"] = vm.settle()
        vm.stop()
        row["disk_force_merged"] = disk(vm.dir / "data", row["points"])
    finally:
        vm.stop()
        vm.cleanup()
    during, after, nan = row["read_ms"].get("ingest", {}), row["read_ms"].get("after", {}), -1.0
    d, merged = row["disk"], row["disk_force_merged"]
    print(
        f"VictoriaMetrics, series {n_series:,}: creating them "
        f"{row['creating_points_per_s']:,.0f} points/s, then ingest "
        f"{row['ingest_points_per_s']:,.0f} points/s (server CPU "
        f"{row['server_cpu_us_per_point']:.2f} us/point), RSS peak "
        f"{row['rss_peak_bytes']['server'] / 2**20:.0f} MiB, one-series read during ingest "
        f"median {during.get('median', nan):.1f} max {during.get('max', nan):.1f} ms (n "
        f"{during.get('n', 0)}), first after {row['first_read_after_ingest_ms']:.1f} ms, after "
        f"median {after.get('median', nan):.1f} max {after.get('max', nan):.1f} ms, settled "
        f"{row['settle_s']:.1f} s after; stopped "
        f"{d['bytes_per_point']:.2f} B/point (data {d['points_bytes_per_point']:.2f}, indexdb "
        f"{d['catalog_bytes_per_point']:.2f}, without its saved caches "
        f"{d['store_bytes_per_point']:.2f}), force-merged {merged['bytes_per_point']:.2f} "
        f"(without caches {merged['store_bytes_per_point']:.2f})",
        flush=True,
    )
    return row


def header() -> dict[str, Any]:
    return {
        "name": "VictoriaMetrics",
        "version": peers.victoria_version(),
        "acknowledges": "before disk (rows buffered in memory, flushed about every second)",
    }
