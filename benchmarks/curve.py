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
             every --sample-s (0.25 s; reads further apart find the server's caches cold)
             during the ingest and after it until the write log is folded, the first such read
             after the ingest, and disk bytes/point once the server is stopped

Sustained ingest at 80% of capacity, the curve's third item, is benchmarks/sustained.py.

Each figure is printed; all of them go to --out (JSON) and, with matplotlib installed
(`pip install -e '.[bench]'`), a PNG per scenario beside it (curve-points.png,
curve-series.png).

Usage:  .venv/bin/python benchmarks/curve.py [--scenario series] [--series 1000,100000]
        [--sizes 1000000,10000000,100000000] [--database-url postgresql://...]
        [--peer victoria [--peer-only]]  (series on VictoriaMetrics too: curve_victoria.py)
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import sqlite3
import statistics
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

import bench
from curve_plot import plot

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


def fleet_per_writer(
    n_series: int, n_points: int, seed: int, lineproto: bool = False
) -> list[list[bytes]]:
    """Time-major fleet bodies (one point per series per round, the shared generator's walk),
    5,000 points each; writer w owns series w::WRITERS. `lineproto`: the same points as
    InfluxDB line protocol, `sensor,source=s0001 value=21.3 1577836800` (precision s)."""
    sid, ts, val = common.fleet_block(n_series, max(1, n_points // n_series), seed=seed)
    out: list[list[bytes]] = []
    for w in range(WRITERS):
        mine = sid % WRITERS == w
        s, t, v = sid[mine].tolist(), ts[mine].tolist(), val[mine].tolist()
        b = bench.BATCH
        if lineproto:
            lines = [
                f"sensor,source=s{k:04d} {FIELD}={x} {y}" for k, y, x in zip(s, t, v, strict=True)
            ]
            out.append([
                ("\n".join(lines[i : i + b]) + "\n").encode() for i in range(0, len(s), b)
            ])  # fmt: skip
            continue
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
        for attempt in (1, 2):
            try:
                started = time.perf_counter()
                status, _ = bench.request("GET", base, path, None, headers, http_conn)
                conn.send(((time.perf_counter() - started) * 1000, status))
                break
            except (OSError, http.client.HTTPException):
                # The server closed it: idle past its keep-alive (5 s, reads --sample-s
                # apart), retried once on a new connection (a dashboard would connect
                # anew), timed from there; closed again, counted.
                http_conn.close()
                http_conn = http.client.HTTPConnection(netloc, timeout=600)
                if attempt == 2:
                    conn.send((float("nan"), 0))
    http_conn.close()


def count_avg_path(k: int) -> str:
    """Sensorbase's one-series read: count and avg of series k, all of it."""
    return f"/v1/query?bucket=fleet&source=s{k:04d}&field={FIELD}&aggregate=count,avg"


class Sampler(threading.Thread):
    """Every `every_s` (SAMPLE_S): the server's RSS, the write log's points and one one-series
    read (each of a series not read before, as a dashboard opening one device's page), made
    and timed by a process of its own (`_reads`). `read_path`: that read's path for series k
    (a peer's own query); `log`: whether the server has a write log to count (Sensorbase's
    /metrics)."""

    def __init__(
        self,
        server: Any,
        n_series: int,
        read_path: Callable[[int], str] = count_avg_path,
        log: bool = True,
        every_s: float = SAMPLE_S,
    ) -> None:
        super().__init__(daemon=True)
        self.server, self.n_series, self.every_s = server, n_series, every_s
        self.read_path, self.log = read_path, log
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
        with self._lock:
            self._pipe.send(self.read_path(k))
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
                "status": status,
                "rss_bytes": self.server.rss_by_role(),
                "log_points": bench.log_points(self.server) if self.log else None,
            })  # fmt: skip
            self._halt.wait(self.every_s)

    def stop(self) -> None:
        self._halt.set()
        self.join()
        self._pipe.send(None)
        self._reader.join()


def run_series(args: argparse.Namespace, result: dict[str, Any]) -> None:
    """Each fleet size on Sensorbase (unless --peer-only), then on the peer if one is asked
    for (curve_victoria.py), back to back so that both see the same machine."""
    if not args.peer_only:
        result["series"] = []
    if args.peer:
        import curve_victoria

        result["series_victoria"] = {**curve_victoria.header(), "rows": []}
    for n_series in args.series:
        if not args.peer_only:
            with bench.new_database(args.database_url) as url:
                result["series"].append(_run_series(args, n_series, url))
        if args.peer:
            row = curve_victoria.run_series(args, n_series)
            result["series_victoria"]["rows"].append(row)


def _run_series(
    args: argparse.Namespace, n_series: int, database_url: str | None
) -> dict[str, Any]:
    print(f"building {args.series_points:,} points over {n_series:,} series", flush=True)
    bodies = fleet_per_writer(n_series, args.series_points, seed=1)
    server = bench.Server(server_args(args, database_url))
    server.start()
    try:
        bench.checked("POST", server, "/v1/buckets", {"key": "fleet"})
        sampler = Sampler(server, n_series, every_s=args.sample_s)
        row = series_ingest(server, sampler, bodies)
        row["fold_wait_s"] = bench.wait_folded(server, FOLD_WAIT_S, STILL_S)
        series_reads(row, sampler)
    except BaseException:
        server.stop()
        server.cleanup()
        raise
    try:
        disk = row["disk"] = settled_disk(server, row["points"])
    finally:
        server.cleanup()
    during, nan = row["read_ms"].get("ingest", {}), float("nan")
    print(
        f"series {n_series:,}: creating them {row['creating_points_per_s']:,.0f} points/s, then"
        f" ingest {row['ingest_points_per_s']:,.0f} points/s "
        f"(server CPU {row['server_cpu_us_per_point']:.2f} us/point, helpers "
        f"{row['helpers_cpu_us_per_point']:.2f}), RSS peak "
        f"{row['rss_peak_bytes']['server'] / 2**20:.0f} MiB (+ helpers "
        f"{row['rss_peak_bytes']['helpers'] / 2**20:.0f}), one-series read during ingest "
        f"median {during.get('median', nan):.1f} max {during.get('max', nan):.1f}"
        f" ms, first after {row['first_read_after_ingest_ms']:.1f} ms, after: "
        f"{row['read_ms'].get('after')}, folded {row['fold_wait_s']:.1f} s after, "
        f"{disk['bytes_per_point']:.2f} B/point (points "
        f"{disk.get('points_bytes_per_point', nan):.2f}, catalog "
        f"{disk.get('catalog_bytes_per_point', nan):.2f})",
        flush=True,
    )
    return row


def series_ingest(
    server: Any, sampler: Sampler, bodies: list[list[bytes]], lineproto: bool = False
) -> dict[str, Any]:
    """The series scenario's writes on a started server (Sensorbase's, or a peer's shaped as
    bench.Server: `base`, `headers`, `cpu_by_role`, `rss_by_role`), the sampler started
    before them, and the first read after them; the sampler left running (`series_reads`
    stops it once the store has settled as the caller sees it)."""
    sampler.start()
    # First the bodies that name every series once (each new series is created in the
    # catalog), then the rest: a fleet's devices exist but for its first minutes.
    first = -(-sampler.n_series // (WRITERS * bench.BATCH))
    creating = bench.run_writers(server, [w[:first] for w in bodies], "fleet", lineproto)
    cpu_before = server.cpu_by_role()
    ingest = bench.run_writers(server, [w[first:] for w in bodies], "fleet", lineproto)
    cpu_after = server.cpu_by_role()
    sampler.phase = "after"
    first_ms, _ = sampler.one_read()
    return {
        "series": sampler.n_series,
        "points": creating["points"] + ingest["points"],
        "ingest_points_per_s": ingest["points_per_s"],
        "ingest": ingest,
        "creating_points_per_s": creating["points_per_s"],
        "creating": creating,
        "server_cpu_us_per_point": _cpu_per(cpu_before, cpu_after, "server", ingest["points"]),
        "helpers_cpu_us_per_point": _cpu_per(cpu_before, cpu_after, "helpers", ingest["points"]),
        "first_read_after_ingest_ms": first_ms,
    }


def series_reads(row: dict[str, Any], sampler: Sampler) -> None:
    """Two more seconds of reads of the settled store, the sampler stopped, and its figures
    into `row`."""
    time.sleep(2)
    sampler.stop()
    reads = {
        phase: [s["read_ms"] for s in sampler.samples if s["phase"] == phase and s["read_ms"]]
        for phase in ("ingest", "after")
    }
    row["rss_peak_bytes"] = {
        role: max(s["rss_bytes"][role] for s in sampler.samples) for role in ("server", "helpers")
    }
    row["read_ms"] = {
        phase: {"median": statistics.median(xs), "max": max(xs), "n": len(xs)}
        for phase, xs in reads.items()
        if xs
    }
    row["reads_dropped"] = sampler.dropped
    row["samples"] = sampler.samples


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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--scenario", nargs="+", choices=["points", "series"],
                    default=["points", "series"])  # fmt: skip
    ap.add_argument("--sizes", type=_ints, default=[1_000_000], help="dense series sizes")
    ap.add_argument("--series", type=_ints, default=[1_000, 100_000], help="fleet sizes")
    ap.add_argument("--series-points", type=int, default=1_000_000)
    ap.add_argument("--queries", type=int, default=10, help="timed queries per read, median")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--sample-s", type=float, default=SAMPLE_S,
                    help="seconds between one-series reads (series)")  # fmt: skip
    ap.add_argument("--database-url", default=None, help="PostgreSQL instead of SQLite")
    ap.add_argument(
        "--peer", choices=["victoria"], help="the series scenario on VictoriaMetrics too"
    )
    ap.add_argument("--peer-only", action="store_true", help="the series scenario on the peer only")
    ap.add_argument("--out", type=Path, default=bench.HERE / "curve.json")
    args = ap.parse_args()
    if args.peer_only and not args.peer:
        ap.error("--peer-only needs --peer")
    result: dict[str, Any] = bench.run_header(args.database_url)
    if "points" in args.scenario:
        result["points"] = run_points(args)
    if "series" in args.scenario:
        run_series(args, result)
    args.out.write_text(json.dumps(result, indent=1))
    print(f"wrote {args.out}", *plot(result, args.out), sep="\n")


if __name__ == "__main__":
    main()
