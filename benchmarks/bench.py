#!/usr/bin/env python3
"""Sensorbase benchmark: the shared peer workload against a fresh Sensorbase server.

It starts its own server (`sensorbase serve` on 127.0.0.1, a temporary data directory, the
per-key rate limit disabled), reads the bootstrap admin key from the server's log, creates
buckets, and runs the workload of ../shared/bench/README.md through the native API:

  1. batch ingest: 5,000 points per POST /v1/write, 4 concurrent writers, >= 3M fleet points
     over 1,000 series (time-major); points/s acknowledged (a reply means committed durably)
  1b. the same fleet as line protocol through the InfluxDB dialect's POST /write, 5,000 lines
     per request, 4 writers: the very requests the peer sends InfluxDB
  2. single-point ingest: one point per request over 32 connections (wrk + Lua when installed,
     else an asyncio raw-socket driver); requests/s
  3. stats (min/max/mean/count) over the 1M-point dense series, median of 20, ms
  4. the latest 10,000 raw points of the dense series, median of 20, ms
  5. disk bytes per stored point once the store has settled (server stopped, WAL folded in)

Each figure is printed, the whole result is written as JSON, and with --peer both peers, InfluxDB
1.x and VictoriaMetrics (benchmarks/peers.py, driving ../shared/bench/influx_bench.py and
victoria_bench.py), run in the same invocation and the ratios are printed. Every server's CPU
(utime + stime from /proc) is reported per million points in both ingest scenarios, beside the
load generator's own; all bodies are encoded before the clock starts.

The workload comes from the shared `common.py` (found at run time, never copied here), so both
sides send the same series, times and values.

Usage:  .venv/bin/python benchmarks/bench.py [--points 3000000] [--runs 1] [--peer]
        [--workers 1] [--database-url postgresql://...] [--out results.json]
        .venv/bin/python benchmarks/bench.py --influxql   (InfluxQL mean GROUP BY time(1h) over
        the dense series, Sensorbase then InfluxDB in the same run; the ratio of latencies)
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
HOST = "127.0.0.1"
BATCH = 5_000
WRITERS = 4
SINGLE_CONNECTIONS = 32
BUCKET = "bench"
FIELD = "value"


def find_shared() -> Path:
    """The shared peer-benchmark directory (common.py, influx_bench.py)."""
    candidates = [
        os.environ.get("SENSORBASE_PEER_BENCH"),
        REPO.parent / "shared" / "bench",
        REPO.parent.parent / "shared" / "bench",
        Path("/work/shared/bench"),
    ]
    for candidate in candidates:
        if candidate and (Path(candidate) / "common.py").exists():
            return Path(candidate)
    sys.exit("cannot find ../shared/bench/common.py; set SENSORBASE_PEER_BENCH to its directory")


SHARED = find_shared()
sys.path.insert(0, str(SHARED))
import common  # noqa: E402

import peers  # noqa: E402  (benchmarks/peers.py: the peers, through the shared scripts)

# ---------------------------------------------------------------------------------------------
# The server under test


class Server:
    """A fresh Sensorbase (`sensorbase serve`) in a subprocess, stopped by its own pid."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.data_dir = Path(tempfile.mkdtemp(prefix="sensorbase-bench-"))
        self.port = args.port or _free_port()
        self.base = f"http://{HOST}:{self.port}"
        self.log_path = self.data_dir / "server.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.admin_key: str | None = args.admin_key

    def start(self) -> None:
        env = {
            **os.environ,
            "SENSORBASE_DATA_DIR": str(self.data_dir / "data"),
            "SENSORBASE_RATE_LIMIT": "",
            "SENSORBASE_LOG_LEVEL": "warning",
        }
        if self.args.database_url:
            env["SENSORBASE_DATABASE_URL"] = self.args.database_url
        cmd = [
            sys.executable, "-m", "sensorbase.cli", "serve",
            "--host", HOST, "--port", str(self.port), "--workers", str(self.args.workers),
            "--no-access-log",
        ]  # fmt: skip
        self.command = " ".join(cmd)
        log = open(self.log_path, "wb")  # noqa: SIM115 (lives as long as the server)
        self.proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.time() + 60
        while time.time() < deadline:
            if self.proc.poll() is not None:
                sys.exit(f"the server exited:\n{self.log_path.read_text()}")
            found = re.search(r"\b(sb_k[0-9a-f]+_[A-Za-z0-9_\-]+)", self.log_path.read_text())
            if found and self.admin_key is None:
                self.admin_key = found.group(1)
            try:
                status, _ = request("GET", self.base, "/healthz")
                if status == 200 and self.admin_key:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        self.stop()
        sys.exit(
            "the server did not come up with a bootstrap key (an existing database? "
            f"pass --admin-key):\n{self.log_path.read_text()}"
        )

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def cpu_s(self) -> float | None:
        """CPU seconds (user + system) the server's processes have used so far; None where
        /proc does not tell. On a machine shared with the load generator and whatever else
        runs, this moves less than requests/s: it says what a request costs, not how busy the
        machine was."""
        if self.proc is None or not Path(f"/proc/{self.proc.pid}/stat").exists():
            return None
        ticks = os.sysconf("SC_CLK_TCK")
        pids = [self.proc.pid]
        children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
        if children.exists():
            pids += [int(p) for p in children.read_text().split()]
        total = 0
        for pid in pids:
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
            except OSError:  # a worker that just ended
                continue
            total += int(fields[11]) + int(fields[12])  # utime, stime
        return total / ticks

    def processes(self) -> list[tuple[int, str]]:
        """Each process of the server's tree with its role: "server" (the process started and
        every descendant that is not a helper: with --workers N the supervisor and its
        workers, and multiprocessing's resource tracker) or "helpers" (the storage's helper
        processes, the WAL sync and the folder, told by their command line). Empty where
        /proc does not tell."""
        if self.proc is None or not Path(f"/proc/{self.proc.pid}/stat").exists():
            return []
        found: list[tuple[int, str]] = []
        todo = [self.proc.pid]
        while todo:
            pid = todo.pop()
            try:
                command = Path(f"/proc/{pid}/cmdline").read_bytes()
                for task in Path(f"/proc/{pid}/task").iterdir():
                    todo += [int(p) for p in (task / "children").read_text().split()]
            except OSError:  # a process that just ended
                continue
            helper = re.search(rb"wal_sync|folder", command) is not None
            found.append((pid, "helpers" if helper else "server"))
        return found

    def cpu_by_role(self) -> dict[str, dict[int, float]] | None:
        """CPU seconds (user + system) so far of each process of the server's tree, by role
        (`processes`). By pid, so that a difference counts a process started meanwhile from
        zero; None where /proc does not tell."""
        if self.proc is None or not Path(f"/proc/{self.proc.pid}/stat").exists():
            return None
        ticks = os.sysconf("SC_CLK_TCK")
        found: dict[str, dict[int, float]] = {"server": {}, "helpers": {}}
        for pid, role in self.processes():
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
            except OSError:  # a process that just ended
                continue
            found[role][pid] = (int(fields[11]) + int(fields[12])) / ticks  # utime, stime
        return found

    def rss_by_role(self) -> dict[str, int]:
        """Resident bytes of the server's processes now, summed by role (`processes`)."""
        found = {"server": 0, "helpers": 0}
        page = os.sysconf("SC_PAGE_SIZE")
        for pid, role in self.processes():
            try:
                found[role] += int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * page
            except OSError:  # a process that just ended
                continue
        return found

    def cleanup(self) -> None:
        shutil.rmtree(self.data_dir, ignore_errors=True)

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.admin_key}"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def request(
    method: str,
    base: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    conn: http.client.HTTPConnection | None = None,
) -> tuple[int, bytes]:
    own = conn is None
    if conn is None:
        netloc = urllib.parse.urlsplit(base).netloc
        conn = http.client.HTTPConnection(netloc, timeout=600)
    conn.request(method, path, body=body, headers=headers or {})
    response = conn.getresponse()
    data = response.read()
    if own:
        conn.close()
    return response.status, data


def checked(method: str, server: Server, path: str, body: Any = None) -> Any:
    raw = json.dumps(body).encode() if body is not None else None
    headers = {**server.headers, "Content-Type": "application/json"}
    status, data = request(method, server.base, path, raw, headers)
    if status >= 300:
        raise RuntimeError(f"{method} {path} -> {status}: {data[:500]!r}")
    return json.loads(data) if data else None


# ---------------------------------------------------------------------------------------------
# Workload bodies (the shared generator; native JSON with epoch seconds)


def _body(source_ids: list[int], times: list[int], values: list[float], big: bool) -> bytes:
    if big:
        items = [
            f'{{"source":"big","field":"{FIELD}","time":{t},"value":{v}}}'
            for t, v in zip(times, values, strict=True)
        ]
    else:
        items = [
            f'{{"source":"s{s:04d}","field":"{FIELD}","time":{t},"value":{v}}}'
            for s, t, v in zip(source_ids, times, values, strict=True)
        ]
    return ("[" + ",".join(items) + "]").encode()


def fleet_bodies(n_points: int, seed: int) -> list[list[bytes]]:
    """Per writer, its 5,000-point bodies; writer w owns series w::WRITERS (as the peer does)."""
    per_series = n_points // common.N_SERIES
    sid, ts, val = common.fleet_block(common.N_SERIES, per_series, seed=seed)
    out: list[list[bytes]] = []
    for w in range(WRITERS):
        mine = sid % WRITERS == w
        s, t, v = sid[mine].tolist(), ts[mine].tolist(), val[mine].tolist()
        out.append([
            _body(s[i : i + BATCH], t[i : i + BATCH], v[i : i + BATCH], big=False)
            for i in range(0, len(s), BATCH)
        ])  # fmt: skip
    return out


def big_bodies() -> list[list[bytes]]:
    ts, val = common.big_series()
    t, v = ts.tolist(), val.tolist()
    bodies = [
        _body([], t[i : i + BATCH], v[i : i + BATCH], big=True) for i in range(0, len(t), BATCH)
    ]
    return [bodies[w::WRITERS] for w in range(WRITERS)]


def lineproto_bodies(n_points: int, seed: int) -> list[list[bytes]]:
    """The same fleet as line protocol, line for line as the peer sends it to InfluxDB
    (influx_bench.py: `sensor,id=s0001 value=21.3 1577836800`, precision s, 5,000 lines per
    body, writer w owns series w::WRITERS)."""
    per_series = n_points // common.N_SERIES
    sid, ts, val = common.fleet_block(common.N_SERIES, per_series, seed=seed)
    out: list[list[bytes]] = []
    for w in range(WRITERS):
        mine = sid % WRITERS == w
        lines = [
            f"sensor,id=s{s:04d} value={v} {t}"
            for s, t, v in zip(
                sid[mine].tolist(), ts[mine].tolist(), val[mine].tolist(), strict=True
            )
        ]
        out.append([
            ("\n".join(lines[i : i + BATCH]) + "\n").encode() for i in range(0, len(lines), BATCH)
        ])  # fmt: skip
    return out


def count_points(body: bytes) -> int:
    return body.count(b'"time"')


def count_lines(body: bytes) -> int:
    return body.count(b"\n")


def run_header(database_url: str | None) -> dict[str, Any]:
    """What a result file records of its run: the store, when, the code, the machine."""
    return {
        "store": "postgresql" if database_url else "sqlite",
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "commit": os.popen(f"git -C {REPO} rev-parse --short HEAD").read().strip(),
        "load_1min": os.getloadavg()[0],
        "cpus": os.cpu_count(),
    }


@contextmanager
def new_database(server_url: str | None) -> Iterator[str | None]:
    """A new database on the PostgreSQL server of `server_url` (a server bootstraps only an
    empty database), its URL, dropped afterwards; None without a server URL (SQLite)."""
    if not server_url:
        yield None
        return
    import psycopg

    name = f"sensorbase_bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        # (a URL, not psycopg's key=value form: the server takes postgresql:// URLs)
        yield urllib.parse.urlunsplit(urllib.parse.urlsplit(server_url)._replace(path=name))
    finally:
        with psycopg.connect(server_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def postgres_cpu_s(database_url: str | None) -> dict[int, float] | None:
    """CPU seconds (user + system) so far of each PostgreSQL backend serving the benchmark's
    database, by pid (the store's own cost of a write, which the server's counters do not
    hold; PostgreSQL's shared WAL writer and checkpointer are not counted, nor are other
    databases' sessions on the same server). None without PostgreSQL or /proc."""
    if not database_url:
        return None
    import psycopg

    with psycopg.connect(database_url, autocommit=True) as conn:
        pids = [
            r[0]
            for r in conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid()"
            )
        ]
    ticks = os.sysconf("SC_CLK_TCK")
    found = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        except OSError:  # a backend that just ended, or another machine's
            continue
        found[pid] = (int(fields[11]) + int(fields[12])) / ticks  # utime, stime
    return found


def run_writers(
    server: Server, per_writer: list[list[bytes]], bucket: str, lineproto: bool = False
) -> dict[str, Any]:
    """Each writer's bodies, one request after another on its own connection; the writers at
    once. `lineproto`: InfluxDB 1.x's `POST /write` (as the peer is driven), else the native
    `POST /v1/write`."""
    if lineproto:
        path = f"/write?db={bucket}&precision=s"
        headers = {"Authorization": f"Token {server.admin_key}", "Content-Type": "text/plain"}
        count = count_lines
        ok = 204
    else:
        path = f"/v1/write?bucket={bucket}&precision=s"
        headers = {**server.headers, "Content-Type": "application/json"}
        count = count_points
        ok = 200
    latencies: list[float] = []
    done_at: list[tuple[float, int]] = []
    errors: list[str] = []
    barrier = threading.Barrier(len(per_writer) + 1)
    netloc = urllib.parse.urlsplit(server.base).netloc

    def work(bodies: list[bytes]) -> None:
        conn = http.client.HTTPConnection(netloc, timeout=600)
        barrier.wait()
        for body in bodies:
            started = time.perf_counter()
            status, data = request("POST", server.base, path, body, headers, conn)
            now = time.perf_counter()
            if status != ok:
                errors.append(f"{status} {data[:300]!r}")
            latencies.append(now - started)
            done_at.append((now, count(body)))
        conn.close()

    threads = [threading.Thread(target=work, args=(bodies,)) for bodies in per_writer]
    for thread in threads:
        thread.start()
    barrier.wait()
    t0 = time.perf_counter()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - t0
    if errors:
        raise RuntimeError(f"{len(errors)} write(s) failed, first: {errors[0]}")
    n = sum(count(b) for bodies in per_writer for b in bodies)
    latencies.sort()
    done_at.sort()
    half = [p for t, p in done_at if t - t0 > wall / 2]
    return {
        "points": n,
        "wall_s": wall,
        "points_per_s": n / wall,
        "second_half_points_per_s": sum(half) / (wall / 2) if half else None,
        "batch_latency_p50_ms": latencies[len(latencies) // 2] * 1000,
        "batch_latency_p99_ms": latencies[int(len(latencies) * 0.99)] * 1000,
    }


# ---------------------------------------------------------------------------------------------
# Single-point ingest

WRK_LUA = r"""
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer __KEY__"
local counter = 0
local nthreads = 0
function setup(thread)
  thread:set("tid", nthreads)
  nthreads = nthreads + 1
end
function request()
  counter = counter + 1
  local body = string.format('[{"source":"s%04d","field":"value","time":%d,"value":%d.5}]',
    counter % 1000, 1577836800 + (tid or 0) * 100000000 + counter, counter % 97)
  return wrk.format(nil, nil, nil, body)
end
"""


def parse_wrk(out: str) -> dict[str, Any]:
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    latency = re.search(r"Latency\s+([\d.]+)(us|ms|s)", out)
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors:.*", out)
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}
    if rps is None:
        raise RuntimeError(f"wrk said:\n{out}")
    done = re.search(r"(\d+) requests in", out)
    return {
        "rps": float(rps.group(1)),
        "requests": int(done.group(1)) if done else None,
        "latency_avg_ms": float(latency.group(1)) * scale[latency.group(2)] if latency else None,
        "non2xx": int(non2xx.group(1)) if non2xx else 0,
        "socket_errors": errors.group(0) if errors else None,
    }


def single_wrk(server: Server, bucket: str, seconds: int, run: int) -> dict[str, Any]:
    script = server.data_dir / "single.lua"
    assert server.admin_key is not None
    script.write_text(WRK_LUA.replace("__KEY__", server.admin_key))
    url = f"{server.base}/v1/write?bucket={bucket}&precision=s"
    out = subprocess.run(
        ["wrk", "-t2", f"-c{SINGLE_CONNECTIONS}", f"-d{seconds}s", "-s", str(script), url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return parse_wrk(out)


async def _single_async(server: Server, bucket: str, seconds: int, run: int) -> dict[str, Any]:
    """Fallback driver: 32 keep-alive connections, raw HTTP/1.1, one point per request."""
    path = f"/v1/write?bucket={bucket}&precision=s"
    stop_at = time.perf_counter() + seconds
    done = [0, 0]  # 2xx, other
    latencies: list[float] = []

    async def connection(c: int) -> None:
        reader, writer = await asyncio.open_connection(HOST, server.port)
        n = 0
        while time.perf_counter() < stop_at:
            n += 1
            # Each (run, connection) its own 100,000 s of 2020: every time stays in the past
            # (spaced by 10M s, connections 22-31 wrote times of 2026-12-21 to 2029: more than 7
            # days ahead of the clock, refused 400, a third of the requests).
            t = common.T0 + (run * 64 + c) * 100_000 + n
            body = f'[{{"source":"s{n % 1000:04d}","field":"value","time":{t},"value":{n % 97}.5}}]'
            head = (
                f"POST {path} HTTP/1.1\r\nHost: {HOST}\r\nAuthorization: Bearer "
                f"{server.admin_key}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n\r\n"
            )
            started = time.perf_counter()
            writer.write(head.encode() + body.encode())
            status_line = await reader.readline()
            length = 0
            while True:
                line = await reader.readline()
                if line in (b"\r\n", b""):
                    break
                name, _, value = line.decode().partition(":")
                if name.lower() == "content-length":
                    length = int(value)
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - started)
            done[0 if status_line.split()[1].startswith(b"2") else 1] += 1
        writer.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(connection(c) for c in range(SINGLE_CONNECTIONS)))
    wall = time.perf_counter() - t0
    return {
        "rps": done[0] / wall,
        "requests": done[0] + done[1],
        "latency_avg_ms": statistics.mean(latencies) * 1000 if latencies else None,
        "non2xx": done[1],
        "socket_errors": None,
    }


def single_python(server: Server, bucket: str, seconds: int, run: int) -> dict[str, Any]:
    return asyncio.run(_single_async(server, bucket, seconds, run))


# ---------------------------------------------------------------------------------------------
# Queries and disk


def cpu_ms(query: Callable[[], object], n: int = 30) -> float:
    """The median CPU time of `query` in this process, ms (after 2 warm-ups): what the other
    jobs of a shared machine move far less than wall time (chunks.py, disk.py)."""
    query()
    query()
    spent = []
    for _ in range(n):
        started = time.process_time()
        query()
        spent.append((time.process_time() - started) * 1000)
    return statistics.median(spent)


def timed_queries(
    server: Server, path: str, n: int, decoded: bool = False
) -> tuple[list[float], bytes]:
    """`n` timed GETs of `path` on one connection (after 2 warm-ups); with `decoded`, each
    time includes the client's json.loads of the reply, as victoria_bench.py times its
    latest points (it decodes its export's lines; influx_bench.py does not decode)."""
    conn = http.client.HTTPConnection(HOST, server.port, timeout=600)
    xs: list[float] = []
    body = b""
    for i in range(n + 2):  # 2 warm-ups, as the peer does
        started = time.perf_counter()
        status, body = request("GET", server.base, path, None, server.headers, conn)
        if status != 200:
            raise RuntimeError(f"GET {path} -> {status}: {body[:300]!r}")
        if decoded:
            json.loads(body)
        if i >= 2:
            xs.append((time.perf_counter() - started) * 1000)
    conn.close()
    return xs, body


def log_points(server: Server) -> float | None:
    """The points in the store's unfolded write log, from /metrics (sensorbase_sqlite_log_points
    or sensorbase_postgres_log_points; None: a store without one)."""
    _, text = request("GET", server.base, "/metrics", None, server.headers)
    found = re.search(rb"^\w*_(?:sqlite|postgres)_log_points(?:\{[^}]*\})? (\S+)$", text, re.M)
    return None if found is None else float(found.group(1))


def wait_folded(server: Server, max_wait_s: float = 600, still_s: float = 60) -> float:
    """Seconds until the write log is folded into chunks (as the peers' scripts wait for their
    flush and compaction before their queries); given up after `max_wait_s`, or once the log
    has not shrunk for `still_s` (a server that logged less than a sixteenth of a fold has no
    folder yet and keeps its log until it stops: sqlite/folder.py)."""
    started = still_since = time.monotonic()
    seen = None
    while time.monotonic() - started < max_wait_s:
        points = log_points(server)
        if not points:
            break
        if points != seen:
            seen, still_since = points, time.monotonic()
        elif time.monotonic() - still_since > still_s:
            break
        time.sleep(0.2)
    return time.monotonic() - started


def wait_settled(server: Server, still_s: float = 1.5, timeout_s: float = 120) -> float:
    """Seconds until the write log is folded (`wait_folded`) and the helpers' CPU has not
    moved for `still_s` (the merges after the last fold done): a query timed before then
    shares the cores with them."""
    started = time.monotonic()
    wait_folded(server, timeout_s)
    deadline = time.monotonic() + timeout_s
    last, since = None, time.monotonic()
    while time.monotonic() < deadline:
        found = server.cpu_by_role()
        now = None if found is None else sum(found["helpers"].values())
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= still_s:
            break
        time.sleep(0.25)
    return time.monotonic() - started


def stats_path(bucket: str) -> str:
    """Scenario 3's query: min/max/mean/count over the whole dense series."""
    return (
        f"/v1/query?bucket={bucket}&source=big&field={FIELD}"
        "&mode=aggregate&aggregate=min,max,avg,count"
    )


def exact_path(bucket: str, every: str | None = None) -> str:
    """The aggregates that read every point (query/reducers.py) over the whole dense series,
    beside count (the store's), whole or per `every`."""
    per = f"&every={every}" if every else ""
    return (
        f"/v1/query?bucket={bucket}&source=big&field={FIELD}"
        f"&aggregate=count,stddev,p99,spread,increase,integral{per}"
    )


def latest_path(bucket: str, columns: bool = False) -> str:
    """Scenario 4's query: the latest 10,000 raw points of the dense series; with `columns`,
    as an array a column with times in epoch milliseconds (the shape of VictoriaMetrics'
    export, `{"values": [...], "timestamps": [...]}`)."""
    path = f"/v1/query?bucket={bucket}&source=big&field={FIELD}&order=desc&limit=10000"
    return path + "&format=columns&epoch=ms" if columns else path


def stored_points(server: Server, buckets: list[str]) -> int:
    return sum(checked("GET", server, f"/v1/buckets/{b}")["stats"]["points"] for b in buckets)


def disk_bytes(server: Server) -> dict[str, Any]:
    """Bytes the store occupies once settled. SQLite: the server is stopped first, so the last
    connection folds the WAL into the database file. PostgreSQL: the database's size."""
    if server.args.database_url:
        import psycopg

        with psycopg.connect(server.args.database_url) as conn:
            row = conn.execute("SELECT pg_database_size(current_database())").fetchone()
        return {"store": "postgresql", "bytes": int(row[0]) if row else 0}
    data = server.data_dir / "data"
    files = {p.name: p.stat().st_size for p in data.iterdir() if p.is_file()}
    return {"store": "sqlite", "bytes": common.du_bytes(str(data)), "files": files}


def measured_writers(
    server: Server, per_writer: list[list[bytes]], bucket: str, lineproto: bool = False
) -> dict[str, Any]:
    """`run_writers` with the CPU it cost per million points: the server's processes (the
    request path; the storage's helpers, WAL sync and folder, apart and in the total), and the
    load generator's (this process); on PostgreSQL also its backends serving the database.
    The server's CPU is counted until its write log is folded (`fold_wait_s` after the last
    acknowledgement): the fold of what a run logged is that run's cost, not the next one's."""
    pg_before = postgres_cpu_s(server.args.database_url)
    before, client = server.cpu_by_role(), time.process_time()
    out = run_writers(server, per_writer, bucket, lineproto)
    client = time.process_time() - client
    out["fold_wait_s"] = wait_folded(server)
    after = server.cpu_by_role()
    pg_after = postgres_cpu_s(server.args.database_url)
    out["client_cpu_s_per_million_points"] = client / out["points"] * 1e6
    if pg_before is not None and pg_after is not None:
        used_pg = sum(s - pg_before.get(pid, 0.0) for pid, s in pg_after.items())
        out["postgres_cpu_s_per_million_points"] = used_pg / out["points"] * 1e6
    if before is not None and after is not None:
        used = {
            role: sum(s - before[role].get(pid, 0.0) for pid, s in after[role].items())
            for role in ("server", "helpers")
        }
        out["server_cpu_s_per_million_points"] = used["server"] / out["points"] * 1e6
        out["helpers_cpu_s_per_million_points"] = used["helpers"] / out["points"] * 1e6
        out["total_cpu_s_per_million_points"] = sum(used.values()) / out["points"] * 1e6
    print(
        f"  CPU s per 1M points: server {out.get('server_cpu_s_per_million_points', 0):.2f}, "
        f"helpers {out.get('helpers_cpu_s_per_million_points', 0):.2f}, "
        f"PostgreSQL {out.get('postgres_cpu_s_per_million_points', 0):.2f}, "
        f"load generator {out['client_cpu_s_per_million_points']:.2f}",
        flush=True,
    )
    return out


def cpu_medians(runs: list[dict[str, Any]]) -> dict[str, float]:
    names = (
        "server_cpu_s_per_million_points",
        "helpers_cpu_s_per_million_points",
        "total_cpu_s_per_million_points",
        "client_cpu_s_per_million_points",
        "postgres_cpu_s_per_million_points",
    )
    return {n: statistics.median(x[n] for x in runs) for n in names if all(n in x for x in runs)}


# ---------------------------------------------------------------------------------------------
# The run


def run_sensorbase(args: argparse.Namespace) -> dict[str, Any]:
    server = Server(args)
    result: dict[str, Any] = {"store": "postgresql" if args.database_url else "sqlite"}
    print(f"building the workload ({args.points:,} fleet points x {args.runs} run(s))", flush=True)
    fleets = [fleet_bodies(args.points, seed=r + 1) for r in range(args.runs)]
    lp_fleets = [lineproto_bodies(args.points, seed=r + 1) for r in range(args.runs)]
    dense = big_bodies()
    server.start()
    result["server_command"] = server.command
    print(f"server pid {server.proc.pid if server.proc else '?'} on {server.base}", flush=True)
    buckets = [f"{BUCKET}_r{r}" for r in range(args.runs)] + [BUCKET, "single"]
    buckets += [f"lp_r{r}" for r in range(args.runs)]
    try:
        for b in buckets:
            checked("POST", server, "/v1/buckets", {"key": b})

        ingest = []
        for r, bodies in enumerate(fleets):
            out = measured_writers(server, bodies, f"{BUCKET}_r{r}")
            ingest.append(out)
            print(f"batch ingest run {r}: {out['points_per_s']:,.0f} points/s {out}", flush=True)
        result["ingest_fleet"] = {
            "runs": ingest,
            "points_per_s": common.summarize([x["points_per_s"] for x in ingest]),
            **cpu_medians(ingest),
        }
        del fleets

        lp_ingest = []
        for r, bodies in enumerate(lp_fleets):
            out = measured_writers(server, bodies, f"lp_r{r}", lineproto=True)
            lp_ingest.append(out)
            print(f"line-protocol ingest run {r}: {out['points_per_s']:,.0f} points/s {out}")
        result["ingest_lineproto"] = {
            "runs": lp_ingest,
            "points_per_s": common.summarize([x["points_per_s"] for x in lp_ingest]),
            **cpu_medians(lp_ingest),
        }
        del lp_fleets

        big = run_writers(server, dense, BUCKET)
        print(f"dense series ingest: {big['points_per_s']:,.0f} points/s", flush=True)
        result["ingest_big_series"] = big
        del dense

        have_wrk = shutil.which("wrk") is not None and not args.no_wrk
        driver = single_wrk if have_wrk else single_python
        singles = []
        for r in range(args.runs):
            cpu_before = server.cpu_s()
            out = driver(server, "single", args.wrk_seconds, r)
            if cpu_before is not None and (cpu_after := server.cpu_s()) is not None:
                requests = out["rps"] * args.wrk_seconds
                # (one point a request: microseconds a request are seconds a million points)
                out["server_cpu_us_per_request"] = (cpu_after - cpu_before) / requests * 1e6
            singles.append(out)
            print(f"single-point run {r}: {out['rps']:,.0f} requests/s {out}", flush=True)
        result["single_point_writes"] = {
            "driver": "wrk -t2 -c32 (Lua)" if have_wrk else "python asyncio raw sockets, 32 conns",
            "runs": singles,
            "rps": common.summarize([x["rps"] for x in singles]),
        }
        cpu = [x["server_cpu_us_per_request"] for x in singles if "server_cpu_us_per_request" in x]
        if cpu:
            result["single_point_writes"]["server_cpu_us_per_request"] = common.summarize(cpu)
            print(f"single-point server CPU: {statistics.median(cpu):.0f} us per request")

        # Right after the writes, the fold helper still working through what they logged...
        unsettled: dict[str, Any] = {"log_points": log_points(server)}
        for name, path in (("stats", stats_path(BUCKET)), ("latest", latest_path(BUCKET))):
            unsettled[f"{name}_ms"] = common.summarize(timed_queries(server, path, args.queries)[0])
        result["queries_unsettled"] = unsettled
        print(f"right after the writes (log {unsettled['log_points']} points): stats "
              f"{unsettled['stats_ms']['median']:.1f} ms, latest 10,000 "
              f"{unsettled['latest_ms']['median']:.1f} ms", flush=True)  # fmt: skip
        # ...and the headline figures on the settled store (the log folded, the merges done),
        # as the peers' scripts time theirs (VictoriaMetrics after force_flush and 2 s,
        # InfluxDB 5 s after its writes).
        result["settled_s"] = wait_settled(server)

        xs, body = timed_queries(server, stats_path(BUCKET), args.queries)
        result["query_agg_1M"] = {"path": stats_path(BUCKET), "ms": common.summarize(xs),
                                  "response": body.decode()[:400]}  # fmt: skip
        print(f"stats over 1M points: {statistics.median(xs):.1f} ms {body[:200]!r}", flush=True)

        for key, columns in (("query_latest_10k", True), ("query_latest_10k_rows", False)):
            path = latest_path(BUCKET, columns)
            xs, body = timed_queries(server, path, args.queries)
            reply = json.loads(body)["series"][0]
            n_latest = len(reply["columns"]["value"] if columns else reply["points"])
            decoded = timed_queries(server, path, args.queries, decoded=True)[0]
            result[key] = {"path": path, "ms": common.summarize(xs),
                           "ms_decoded": common.summarize(decoded),
                           "response_bytes": len(body), "points": n_latest}  # fmt: skip
            shape = "columns, epoch=ms" if columns else "a JSON object a point"
            print(f"latest 10,000 points ({shape}): {statistics.median(xs):.1f} ms "
                  f"({n_latest} points, {len(body):,} bytes; "
                  f"{statistics.median(decoded):.1f} ms with the client's json.loads)",
                  flush=True)  # fmt: skip

        points = stored_points(server, buckets)
        expected = sum(x["points"] for x in ingest + lp_ingest) + big["points"]
        result["stored_points"] = points
        print(f"stored points: {points:,} (batch-acknowledged {expected:,} + single)", flush=True)
    finally:
        server.stop()
    try:
        disk = disk_bytes(server)
        disk["points"] = points
        disk["bytes_per_point"] = disk["bytes"] / points
        result["disk"] = disk
        print(f"disk: {disk['bytes']:,} bytes, {disk['bytes_per_point']:.2f} bytes/point")
    finally:
        if not args.keep:
            server.cleanup()
    return result


def headline(result: dict[str, Any]) -> dict[str, float]:
    """Sensorbase's figures, by scenario (peers.headline gives the peers' under the same
    names). The peers' batch ingest is line protocol already: Sensorbase's line-protocol
    figure is set beside that same figure."""
    bpp = result["disk"]["bytes_per_point"]
    lineproto = result.get("ingest_lineproto", result["ingest_fleet"])
    single = result["single_point_writes"]
    return {
        "batch ingest (points/s)": result["ingest_fleet"]["points_per_s"]["median"],
        # The server's whole process tree (helpers included), as the peers' one process.
        "batch ingest, server CPU (s per 1M points)": result["ingest_fleet"].get(
            "total_cpu_s_per_million_points", float("nan")
        ),
        "line-protocol batch ingest (points/s)": lineproto["points_per_s"]["median"],
        "line-protocol batch ingest, server CPU (s per 1M points)": lineproto.get(
            "total_cpu_s_per_million_points", float("nan")
        ),
        "single-point ingest (requests/s)": single["rps"]["median"],
        "single-point ingest, server CPU (s per 1M points)": single.get(
            "server_cpu_us_per_request", {}
        ).get("median", float("nan")),
        "stats over 1M points (ms)": result["query_agg_1M"]["ms"]["median"],
        "latest 10,000 points (ms)": result["query_latest_10k"]["ms"]["median"],
        "disk (bytes/point)": bpp,
    }


PEERS = {"influxdb": peers.run_influxdb, "victoriametrics": peers.run_victoria}
HIGHER_IS_BETTER = {
    "batch ingest (points/s)",
    "line-protocol batch ingest (points/s)",
    "single-point ingest (requests/s)",
}
FLOORS = {
    "batch ingest (points/s)": 250_000,
    "single-point ingest (requests/s)": 10_000,
    "stats over 1M points (ms)": 100,
}


# ---------------------------------------------------------------------------------------------
# InfluxQL: mean ... GROUP BY time(1h) over the dense series, Sensorbase and InfluxDB side by side

INFLUXQL_PANEL = (
    "SELECT mean(value) FROM sensor WHERE id = 'big' AND time >= {start}ms AND time <= {end}ms "
    "GROUP BY time(1h) fill(null)"
)


def _dense_influx_bodies() -> list[list[bytes]]:
    """The dense series as native JSON for the source `sensor,id=big` (the key the line-protocol
    write path gives `sensor,id=big value=...`), so both servers answer the same InfluxQL."""
    ts, val = common.big_series()
    t, v = ts.tolist(), val.tolist()
    bodies = []
    for i in range(0, len(t), BATCH):
        items = [
            f'{{"source":"sensor,id=big","field":"{FIELD}","time":{a},"value":{b}}}'
            for a, b in zip(t[i : i + BATCH], v[i : i + BATCH], strict=True)
        ]
        bodies.append(("[" + ",".join(items) + "]").encode())
    return [bodies[w::WRITERS] for w in range(WRITERS)]


def _timed_influxql(netloc: str, path: str, headers: dict[str, str], n: int) -> list[float]:
    conn = http.client.HTTPConnection(netloc, timeout=600)
    xs: list[float] = []
    for i in range(n + 2):  # 2 warm-ups, as the peer does
        started = time.perf_counter()
        conn.request("GET", path, headers=headers)
        reply = conn.getresponse()
        body = reply.read()
        if reply.status != 200 or b'"error"' in body:
            raise RuntimeError(f"GET {path[:80]} -> {reply.status}: {body[:300]!r}")
        if i >= 2:
            xs.append((time.perf_counter() - started) * 1000)
    conn.close()
    return xs


def run_influxql(args: argparse.Namespace) -> dict[str, Any]:
    """The same InfluxQL query (the 1M-point dense series, 278 hourly means, as Grafana sends
    it) against a fresh Sensorbase and a fresh InfluxDB (../shared/bench/influx_bench.py's
    influxd, on its own port and directory), each after the series is written and settled."""
    ts, _ = common.big_series()
    start_ms, end_ms = int(ts[0]) * 1000, int(ts[-1]) * 1000 + 999
    q = INFLUXQL_PANEL.format(start=start_ms, end=end_ms)
    path = "/query?" + urllib.parse.urlencode({"db": "big", "q": q, "epoch": "ms"})
    result: dict[str, Any] = {"influxql": q}

    server = Server(args)
    dense = _dense_influx_bodies()
    server.start()
    try:
        checked("POST", server, "/v1/buckets", {"key": "big"})
        meta = {"influx": {"measurement": "sensor", "tags": {"id": "big"}}}
        checked("POST", server, "/v1/buckets/big/sources", {"key": "sensor,id=big", "meta": meta})
        run_writers(server, dense, "big")
        del dense
        result["sensorbase_settled_s"] = wait_folded(server)
        headers = {"Authorization": f"Token {server.admin_key}"}
        xs = _timed_influxql(urllib.parse.urlsplit(server.base).netloc, path, headers, args.queries)
        result["sensorbase_ms"] = common.summarize(xs)
        print(f"InfluxQL mean GROUP BY time(1h), Sensorbase: {statistics.median(xs):.1f} ms")
    finally:
        server.stop()
        server.cleanup()

    peer = peers.influx_aside("influxql-peer-")  # the shared peer's own influxd settings
    base, port = peer.BASE, peer.PORT
    influxd = peer.start_influxd()
    try:
        result["influxd_version"] = subprocess.run(
            ["influxd", "version"], capture_output=True, text=True
        ).stdout.strip()
        peer.q("CREATE DATABASE big")
        peer.run_writers(peer.build_big_bodies(), "big")
        settled, waited = peer.wait_settled(["big"], max_wait=240)
        result["influxdb_settled"] = {"fully_compacted": settled, "waited_s": waited}
        xs = _timed_influxql(f"{HOST}:{port}", path, {}, args.queries)
        result["influxdb_ms"] = common.summarize(xs)
        print(f"InfluxQL mean GROUP BY time(1h), InfluxDB: {statistics.median(xs):.1f} ms")
    finally:
        influxd.terminate()
        influxd.wait(timeout=60)
        shutil.rmtree(base, ignore_errors=True)
    ours, theirs = result["sensorbase_ms"]["median"], result["influxdb_ms"]["median"]
    result["ratio_sensorbase_over_influxdb"] = ours / theirs
    print(f"ratio Sensorbase/InfluxDB latency: {ours / theirs:.3f} (goal <= 0.1)")
    return result


def ratio(name: str, ours: float, theirs: float) -> float:
    """Above 1: Sensorbase does better (throughput: ours / theirs; time, CPU, bytes: theirs /
    ours)."""
    return ours / theirs if name in HIGHER_IS_BETTER else theirs / ours


def print_table(ours: dict[str, float], theirs: dict[str, dict[str, float]]) -> None:
    names = {"influxdb": "InfluxDB", "victoriametrics": "VictoriaMetrics"}
    head = "| scenario | Sensorbase | floor |" + "".join(f" {names[p]} | ratio |" for p in theirs)
    print("\n" + head + "\n" + "|---" * (3 + 2 * len(theirs)) + "|")
    for name, value in ours.items():
        floor = FLOORS.get(name)
        ok = "" if floor is None else (
            "ok" if (value >= floor if name in HIGHER_IS_BETTER else value <= floor) else "MISSED"
        )  # fmt: skip
        line = f"| {name} | {value:,.2f} | {f'{floor:,} {ok}' if floor else ''} |"
        for figures in theirs.values():
            line += f" {figures[name]:,.2f} | {ratio(name, value, figures[name]):.2f}x |"
        print(line)
    if theirs:
        print(
            "ratio > 1: Sensorbase does better (throughput: ours/theirs; ms, CPU and bytes: "
            "theirs/ours). VictoriaMetrics acknowledges writes before they reach disk; InfluxDB "
            "and Sensorbase after an fsync."
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--points", type=int, default=3_000_000, help="fleet points per ingest run")
    ap.add_argument("--runs", type=int, default=1, help="ingest and single-point runs (median)")
    ap.add_argument("--wrk-seconds", type=int, default=15, help="length of a single-point run")
    ap.add_argument("--queries", type=int, default=20, help="timed queries (after 2 warm-ups)")
    ap.add_argument(
        "--workers",
        type=int,
        default=os.cpu_count() or 1,
        help="server processes (default: one per core, as docs/deploy.md advises)",
    )
    ap.add_argument(
        "--database-url",
        help="postgresql://... (default: embedded SQLite): the run makes a database of its own "
        "on that server and drops it after (with --admin-key: that very database, bootstrapped)",
    )
    ap.add_argument("--admin-key", help="admin key, when the database is already bootstrapped")
    ap.add_argument("--port", type=int, default=0, help="server port (default: a free one)")
    ap.add_argument("--no-wrk", action="store_true", help="use the Python single-point driver")
    ap.add_argument(
        "--peer",
        action="store_true",
        help="also run both peers (InfluxDB, VictoriaMetrics); print ratios",
    )
    ap.add_argument("--keep", action="store_true", help="keep the server's data directory")
    ap.add_argument("--out", default="benchmark-results.json", help="where the JSON goes")
    ap.add_argument(
        "--influxql",
        action="store_true",
        help="only the InfluxQL GROUP BY time(1h) scenario, with InfluxDB beside it",
    )
    args = ap.parse_args()

    results: dict[str, Any] = {"env": common.env_info(), "args": vars(args)}
    # --- InfluxQL (influx dialect, reads) -------------------------------------------------
    if args.influxql:
        results["influxql"] = run_influxql(args)
        Path(args.out).write_text(json.dumps(results, indent=2, default=float))
        print(f"results: {args.out}")
        return
    # --- end InfluxQL ---------------------------------------------------------------------
    if args.database_url and not args.admin_key:  # a fresh database on that server
        with new_database(args.database_url) as fresh:
            own = argparse.Namespace(**{**vars(args), "database_url": fresh})
            results["sensorbase"] = run_sensorbase(own)
    else:
        results["sensorbase"] = run_sensorbase(args)
    ours = headline(results["sensorbase"])
    results["summary"] = {"sensorbase": ours}
    theirs: dict[str, dict[str, float]] = {}
    if args.peer:
        for name, run in PEERS.items():
            results[name] = run(args)
            theirs[name] = peers.headline(results[name])
            results["summary"][name] = theirs[name]
    print_table(ours, theirs)
    if theirs:
        results["summary"]["ratios"] = {
            name: {k: ratio(k, v, figures[k]) for k, v in ours.items()}
            for name, figures in theirs.items()
        }
    Path(args.out).write_text(json.dumps(results, indent=2, default=float))
    print(f"results: {args.out}")


if __name__ == "__main__":
    main()
