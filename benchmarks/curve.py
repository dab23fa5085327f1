#!/usr/bin/env python3
"""The cost curve (issue 28): how reads, ingest, memory and disk move as the data grows.

Two scenarios, each against a fresh server started as bench.py starts it (SQLite, or
PostgreSQL with --database-url), written through `POST /v1/write` by 2 writers of 5,000-point
JSON requests (an acknowledgement means committed and synced, as always):

  points     one dense series (1 s apart) grown to each of --sizes points (default 1M; the
             issue's curve is 1M,10M,100M): at each size, the server stopped (disk bytes/point
             of the settled file) and started again, then stats (count/min/max/avg) over the
             whole series, the latest 10,000 points and a one-day raw range (86,400 points),
             medians of --queries; server RSS
  series     --series-points points (default 1M) written time-major over each of --series
             series (default 1,000 and 100,000; the issue's curve adds 1,000,000), one point per
             series per round: ingest points/s, server RSS (peak, sampled every 0.25 s), a
             one-series read's latency (count and avg of a series not read before) sampled
             during the ingest and after it until the write log is folded, the first such read
             after the ingest, and disk bytes/point once the server is stopped

Sustained ingest at 80% of capacity, the curve's third item, is benchmarks/sustained.py.

Each figure is printed; all of them go to --out (JSON) and, with matplotlib installed
(`pip install -e '.[bench]'`), a PNG per scenario beside it (curve-points.png,
curve-series.png).

Usage:  .venv/bin/python benchmarks/curve.py [--scenario series] [--series 1000,100000]
        [--sizes 1000000,10000000,100000000] [--database-url postgresql://...]
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import sqlite3
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

import bench

common = bench.common
WRITERS = 2
FIELD = bench.FIELD
SAMPLE_S = 0.25
# The tables (and their indexes) of a device's catalog rows
_CATALOG = ("sources", "series", "sqlite_autoindex_sources", "sqlite_autoindex_series")
FOLD_WAIT_S = 600.0
STILL_S = 60.0


def _ints(text: str) -> list[int]:
    return [int(x.replace("_", "")) for x in text.split(",") if x]


def server_args(args: argparse.Namespace, database_url: str | None) -> argparse.Namespace:
    """What bench.Server reads of its arguments (on PostgreSQL, each server a new database of
    the server `--database-url` names: bench.new_database)."""
    return argparse.Namespace(
        port=None, admin_key=None, database_url=database_url, workers=args.workers
    )


def fleet_per_writer(n_series: int, n_points: int, seed: int) -> list[list[bytes]]:
    """Time-major fleet bodies (one point per series per round, the shared generator's walk),
    5,000 points each; writer w owns series w::WRITERS."""
    sid, ts, val = common.fleet_block(n_series, max(1, n_points // n_series), seed=seed)
    out: list[list[bytes]] = []
    for w in range(WRITERS):
        mine = sid % WRITERS == w
        s, t, v = sid[mine].tolist(), ts[mine].tolist(), val[mine].tolist()
        b = bench.BATCH
        out.append([
            bench._body(s[i : i + b], t[i : i + b], v[i : i + b], big=False)
            for i in range(0, len(s), b)
        ])  # fmt: skip
    return out


def settled_disk(server: bench.Server, points: int) -> dict[str, Any]:
    """Disk bytes per point with the server stopped (SQLite folds its WAL into the file)."""
    server.stop()
    disk = bench.disk_bytes(server)
    disk["points"] = points
    disk["bytes_per_point"] = disk["bytes"] / points
    db = server.data_dir / "data" / "sensorbase.db"
    if disk["store"] == "sqlite" and db.exists():
        # What holds the bytes: points (chunks, the log), the catalog (a device's source and
        # series rows and their indexes), free pages.
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
            tables = conn.execute("SELECT name, sum(pgsize) FROM dbstat GROUP BY name").fetchall()
            free = conn.execute("PRAGMA freelist_count").fetchone()[0]
            page = conn.execute("PRAGMA page_size").fetchone()[0]
        disk["by_table"] = dict(tables)
        disk["free_bytes"] = free * page
        points_bytes = sum(b for name, b in tables if name.startswith("point_"))
        disk["points_bytes_per_point"] = points_bytes / points
        disk["catalog_bytes_per_point"] = (
            sum(b for name, b in tables if name.startswith(_CATALOG)) / points
        )
    return disk


# ---------------------------------------------------------------------------------------------
# 1. Stored points on one dense series


def dense_bodies(start: int, n: int) -> list[list[bytes]]:
    ts = common.T0 + np.arange(start, start + n, dtype=np.int64) * common.BIG_STEP_S
    val = common.values_walk(n, seed=42 + start)
    t, v = ts.tolist(), val.tolist()
    bodies = [
        bench._body([], t[i : i + bench.BATCH], v[i : i + bench.BATCH], big=True)
        for i in range(0, n, bench.BATCH)
    ]
    return [bodies[w::WRITERS] for w in range(WRITERS)]


def run_points(args: argparse.Namespace) -> list[dict[str, Any]]:
    with bench.new_database(args.database_url) as url:
        return _run_points(args, url)


def _run_points(args: argparse.Namespace, database_url: str | None) -> list[dict[str, Any]]:
    server = bench.Server(server_args(args, database_url))
    server.start()
    out: list[dict[str, Any]] = []
    written = 0
    piece = 2_000_000  # points generated at once (bodies of 100M points would not fit)
    try:
        bench.checked("POST", server, "/v1/buckets", {"key": "dense"})
        base = f"/v1/query?bucket=dense&source=big&field={FIELD}"
        for size in args.sizes:
            wall = 0.0
            while written < size:
                n = min(piece, size - written)
                wall += bench.run_writers(server, dense_bodies(written, n), "dense")["wall_s"]
                written += n
            folded_s = bench.wait_folded(server, FOLD_WAIT_S, STILL_S)
            row: dict[str, Any] = {
                "points": size,
                "ingest_points_per_s": size / wall if wall else None,
            }
            row["disk"] = settled_disk(server, size)
            server.start()
            day_start = common.T0 + (size // 2) * common.BIG_STEP_S
            paths = {
                "stats_ms": f"{base}&aggregate=min,max,avg,count",
                "latest_10k_ms": f"{base}&order=desc&limit=10000",
                "day_range_ms": f"{base}&start={day_start}&end={day_start + 86_400}&limit=86400",
            }
            for name, path in paths.items():
                xs, _ = bench.timed_queries(server, path, args.queries)
                row[name] = statistics.median(xs)
            row["rss_bytes"] = server.rss_by_role()
            row["fold_wait_s"] = folded_s
            out.append(row)
            print(
                f"points {size:,}: ingest {row['ingest_points_per_s']:,.0f}/s, stats "
                f"{row['stats_ms']:.1f} ms, latest 10k {row['latest_10k_ms']:.1f} ms, one day "
                f"{row['day_range_ms']:.1f} ms, RSS {row['rss_bytes']['server'] / 2**20:.0f} MiB, "
                f"{row['disk']['bytes_per_point']:.2f} B/point",
                flush=True,
            )
    finally:
        server.stop()
        server.cleanup()
    return out


# ---------------------------------------------------------------------------------------------
# 2. The number of series


def _reads(conn: Any, base: str, headers: dict[str, str]) -> None:
    """The sampler's reads, in a process of their own: timed in the curve's process, each
    read's response waited for the GIL behind the writers' threads (up to a switch interval,
    5 ms, at each of http.client's reads), which the server did not cause. Answers each path
    sent with (ms, status), until None."""
    netloc = base.split("//", 1)[1]
    http_conn = http.client.HTTPConnection(netloc, timeout=600)
    while (path := conn.recv()) is not None:
        try:
            started = time.perf_counter()
            status, _ = bench.request("GET", base, path, None, headers, http_conn)
            conn.send(((time.perf_counter() - started) * 1000, status))
        except (OSError, http.client.HTTPException):  # the server closed it: counted
            http_conn.close()
            http_conn = http.client.HTTPConnection(netloc, timeout=600)
            conn.send((float("nan"), 0))
    http_conn.close()


class Sampler(threading.Thread):
    """Every SAMPLE_S: the server's RSS, the write log's points and one one-series read (each
    of a series not read before, as a dashboard opening one device's page), made and timed by
    a process of its own (`_reads`)."""

    def __init__(self, server: bench.Server, n_series: int) -> None:
        super().__init__(daemon=True)
        self.server, self.n_series = server, n_series
        self.samples: list[dict[str, Any]] = []
        self.phase = "ingest"
        self._halt = threading.Event()
        self._next = 0
        self.dropped = 0  # reads whose connection the server closed
        self._lock = threading.Lock()  # one read at a time (the first after ingest too)
        spawn = multiprocessing.get_context("spawn")
        self._pipe, child = spawn.Pipe()
        self._reader = spawn.Process(
            target=_reads, args=(child, server.base, server.headers), daemon=True
        )
        self._reader.start()

    def one_read(self) -> tuple[float, int]:
        k = (self._next * 7919 + 1) % self.n_series  # spread over the series
        self._next += 1
        path = f"/v1/query?bucket=fleet&source=s{k:04d}&field={FIELD}&aggregate=count,avg"
        with self._lock:
            self._pipe.send(path)
            ms, status = self._pipe.recv()
        if status == 0:
            self.dropped += 1
        return ms, status

    def run(self) -> None:
        t0 = time.perf_counter()
        while not self._halt.is_set():
            ms, status = self.one_read()
            self.samples.append({
                "t_s": time.perf_counter() - t0,
                "phase": self.phase,
                "read_ms": ms if status == 200 else None,  # (404: not written yet)
                "rss_bytes": self.server.rss_by_role(),
                "log_points": bench.log_points(self.server),
            })  # fmt: skip
            self._halt.wait(SAMPLE_S)

    def stop(self) -> None:
        self._halt.set()
        self.join()
        self._pipe.send(None)
        self._reader.join()


def run_series(args: argparse.Namespace) -> list[dict[str, Any]]:
    out = []
    for n_series in args.series:
        with bench.new_database(args.database_url) as url:
            out.append(_run_series(args, n_series, url))
    return out


def _run_series(
    args: argparse.Namespace, n_series: int, database_url: str | None
) -> dict[str, Any]:
    print(f"building {args.series_points:,} points over {n_series:,} series", flush=True)
    bodies = fleet_per_writer(n_series, args.series_points, seed=1)
    points = sum(bench.count_points(b) for w in bodies for b in w)
    server = bench.Server(server_args(args, database_url))
    server.start()
    try:
        bench.checked("POST", server, "/v1/buckets", {"key": "fleet"})
        sampler = Sampler(server, n_series)
        sampler.start()
        # First the bodies that name every series once (each new series is created in
        # the catalog), then the rest: a fleet's devices exist but for its first minutes.
        first = -(-n_series // (WRITERS * bench.BATCH))
        creating = bench.run_writers(server, [w[:first] for w in bodies], "fleet")
        cpu_before = server.cpu_by_role()
        ingest = bench.run_writers(server, [w[first:] for w in bodies], "fleet")
        cpu_after = server.cpu_by_role()
        sampler.phase = "after"
        first_ms, _ = sampler.one_read()
        folded_s = bench.wait_folded(server, FOLD_WAIT_S, STILL_S)
        time.sleep(2)  # reads of the folded store
        sampler.stop()
    except BaseException:
        server.stop()
        server.cleanup()
        raise
    try:
        disk = settled_disk(server, points)
    finally:
        server.cleanup()
    reads = {
        phase: [s["read_ms"] for s in sampler.samples if s["phase"] == phase and s["read_ms"]]
        for phase in ("ingest", "after")
    }
    row = {
        "series": n_series,
        "points": points,
        "ingest_points_per_s": ingest["points_per_s"],
        "ingest": ingest,
        "creating_points_per_s": creating["points_per_s"],
        "creating": creating,
        "server_cpu_us_per_point": _cpu_per(cpu_before, cpu_after, "server", ingest["points"]),
        "helpers_cpu_us_per_point": _cpu_per(cpu_before, cpu_after, "helpers", ingest["points"]),
        "rss_peak_bytes": {
            role: max(s["rss_bytes"][role] for s in sampler.samples)
            for role in ("server", "helpers")
        },
        "first_read_after_ingest_ms": first_ms,
        "read_ms": {
            phase: {"median": statistics.median(xs), "max": max(xs), "n": len(xs)}
            for phase, xs in reads.items()
            if xs
        },
        "fold_wait_s": folded_s,
        "reads_dropped": sampler.dropped,
        "disk": disk,
        "samples": sampler.samples,
    }
    during, nan = row["read_ms"].get("ingest", {}), float("nan")
    print(
        f"series {n_series:,}: creating them {creating['points_per_s']:,.0f} points/s, then"
        f" ingest {ingest['points_per_s']:,.0f} points/s "
        f"(server CPU {row['server_cpu_us_per_point']:.2f} us/point, helpers "
        f"{row['helpers_cpu_us_per_point']:.2f}), RSS peak "
        f"{row['rss_peak_bytes']['server'] / 2**20:.0f} MiB (+ helpers "
        f"{row['rss_peak_bytes']['helpers'] / 2**20:.0f}), one-series read during ingest "
        f"median {during.get('median', nan):.1f} max {during.get('max', nan):.1f}"
        f" ms, first after {first_ms:.1f} ms, after: {row['read_ms'].get('after')}, folded "
        f"{folded_s:.1f} s after, {disk['bytes_per_point']:.2f} B/point (points "
        f"{disk.get('points_bytes_per_point', nan):.2f}, catalog "
        f"{disk.get('catalog_bytes_per_point', nan):.2f})",
        flush=True,
    )
    return row


def _cpu_per(
    before: dict[str, dict[int, float]] | None,
    after: dict[str, dict[int, float]] | None,
    role: str,
    points: int,
) -> float:
    if before is None or after is None:
        return float("nan")
    was = before[role]
    return sum(s - was.get(pid, 0.0) for pid, s in after[role].items()) / points * 1e6


# ---------------------------------------------------------------------------------------------
# Plots


def plot(result: dict[str, Any], out: Path) -> list[Path]:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed (pip install -e '.[bench]'): no plots")
        return []
    made = []
    store = result["store"]
    if rows := result.get("points"):
        fig, ax = plt.subplots(1, 2, figsize=(10, 4))
        x = [r["points"] for r in rows]
        for key, label in (("stats_ms", "stats over all"), ("latest_10k_ms", "latest 10,000"),
                           ("day_range_ms", "one-day raw range")):  # fmt: skip
            ax[0].plot(x, [r[key] for r in rows], "o-", label=label)
        ax[0].set(
            xscale="log", xlabel="stored points", ylabel="ms (median)", title=f"reads ({store})"
        )
        ax[0].legend()
        ax[1].plot(x, [r["disk"]["bytes_per_point"] for r in rows], "o-")
        ax[1].set(xscale="log", xlabel="stored points", ylabel="bytes/point", title="disk")
        made.append(_save(fig, out, "points"))
    if rows := result.get("series"):
        fig, ax = plt.subplots(2, 2, figsize=(11, 8))
        x = [r["series"] for r in rows]
        ax[0][0].plot(x, [r["ingest_points_per_s"] for r in rows], "o-", label="series known")
        ax[0][0].plot(x, [r["creating_points_per_s"] for r in rows], "o-", label="creating them")
        ax[0][0].legend()
        ax[0][0].set(xscale="log", xlabel="series", ylabel="points/s", title=f"ingest ({store})")
        ax[0][1].plot(
            x, [r["rss_peak_bytes"]["server"] / 2**20 for r in rows], "o-", label="server"
        )
        ax[0][1].plot(
            x, [r["rss_peak_bytes"]["helpers"] / 2**20 for r in rows], "o-", label="helpers"
        )
        ax[0][1].set(xscale="log", xlabel="series", ylabel="MiB", title="peak RSS")
        ax[0][1].legend()
        ax[1][0].plot(x, [r["disk"]["bytes_per_point"] for r in rows], "o-")
        ax[1][0].set(xscale="log", xlabel="series", ylabel="bytes/point", title="disk, settled")
        for r in rows:
            s = [p for p in r["samples"] if p["read_ms"]]
            ax[1][1].plot(
                [p["t_s"] for p in s], [p["read_ms"] for p in s], ".", label=f"{r['series']:,}"
            )
        ax[1][1].axhline(20, color="grey", lw=0.5)
        ax[1][1].set(yscale="log", xlabel="s since ingest began", ylabel="ms",
                     title="one-series read, during and after ingest")  # fmt: skip
        ax[1][1].legend(title="series")
        made.append(_save(fig, out, "series"))
    return made


def _save(fig: Any, out: Path, name: str) -> Path:
    path = out.with_name(f"{out.stem}-{name}.png")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--scenario", nargs="+", choices=["points", "series"],
                    default=["points", "series"])  # fmt: skip
    ap.add_argument("--sizes", type=_ints, default=[1_000_000], help="dense series sizes")
    ap.add_argument("--series", type=_ints, default=[1_000, 100_000], help="fleet sizes")
    ap.add_argument("--series-points", type=int, default=1_000_000)
    ap.add_argument("--queries", type=int, default=10, help="timed queries per read, median")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--database-url", default=None, help="PostgreSQL instead of SQLite")
    ap.add_argument("--out", type=Path, default=bench.HERE / "curve.json")
    args = ap.parse_args()
    result: dict[str, Any] = bench.run_header(args.database_url)
    if "points" in args.scenario:
        result["points"] = run_points(args)
    if "series" in args.scenario:
        result["series"] = run_series(args)
    args.out.write_text(json.dumps(result, indent=1))
    print(f"wrote {args.out}", *plot(result, args.out), sep="\n")


if __name__ == "__main__":
    sys.exit(main())
