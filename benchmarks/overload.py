#!/usr/bin/env python3
"""Overload: one worker offered three times the one-point writes it can serve, open loop.

1. Capacity: one-point writes (bench.py's single-point request) over 32 keep-alive
   connections, closed loop, for --capacity-seconds; the 2xx replies per second are the
   worker's capacity C (the first second is left out).
2. Overload: --factor x C requests per second on a constant arrival schedule, over
   --connections keep-alive connections. Request i is due at t0 + i / rate whatever the replies
   do: it goes out at its due time on an idle connection, or, when every connection waits for a
   reply, waits in the driver for the first one free (a client's own queue). Latency is
   measured from the due time, so time spent waiting behind a slow server counts (no
   coordinated omission). The first --warmup seconds are left out of the figures.

Printed: offered and answered rates, p50/p90/p99/max latency of accepted (2xx) requests, the
share shed (503), other statuses and connection errors, the latency of the shed replies, the
server's CPU per answered request and its resident memory (all its processes; peak over the
run, sampled every 0.25 s). The driver is Python asyncio on uvloop over raw sockets, on the
same machine as the server: it reports how late it sent (a driver that cannot keep the
schedule shows up there rather than as a faster server).

Usage:  .venv/bin/python benchmarks/overload.py [--workers 1] [--factor 3] [--connections 512]
        [--seconds 20] [--capacity RPS] [--env SENSORBASE_MAX_IN_FLIGHT=64 ...] [--out FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import time
from collections import Counter, deque
from pathlib import Path
from typing import Any

import uvloop

import bench

HOST = "127.0.0.1"
PATH = "/v1/write?bucket=overload&precision=s"
CAPACITY_CONNECTIONS = 32
TICK_S = 0.001  # how often the schedule is looked at (uvloop timers have 1 ms steps)


class Connection(asyncio.Protocol):
    """One keep-alive connection: at most one request outstanding (no pipelining)."""

    def __init__(self, driver: Driver) -> None:
        self.driver = driver
        self.transport: asyncio.Transport | None = None
        self.buffer = b""
        self.due = self.sent = 0.0
        self.busy = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer + data if self.buffer else data
        while (end := buffer.find(b"\r\n\r\n")) >= 0:
            head = buffer[:end].lower()
            at = head.find(b"\r\ncontent-length:")
            length = int(head[at + 17 : head.find(b"\r", at + 2)]) if at >= 0 else 0
            if len(buffer) < end + 4 + length:
                break
            status = int(buffer[9:12])
            buffer = buffer[end + 4 + length :]
            self.driver.answered(self, status, b"\r\nconnection: close" in head)
        self.buffer = buffer

    def connection_lost(self, exc: Exception | None) -> None:
        self.driver.lost(self)


class Driver:
    def __init__(self, port: int, key: str, closed_loop: bool) -> None:
        self.port = port
        self.key = key
        self.closed_loop = closed_loop
        self.running = True
        self.idle: list[Connection] = []
        self.backlog: deque[float] = deque()  # due times of requests waiting for a connection
        self.backlog_max = 0
        self.record_from = 0.0  # due times before this are warm-up
        self.n = 0
        self.latency: dict[str, list[float]] = {"accepted": [], "shed": [], "other": []}
        self.service: dict[str, list[float]] = {"accepted": [], "shed": [], "other": []}
        self.last_answer = 0.0
        self.statuses: Counter[int] = Counter()
        self.errors = 0  # connections lost with a request outstanding
        self.closes = 0  # replies that closed their connection
        self.late: list[float] = []  # how long after its due time each request went out
        self.outstanding = 0

    async def open(self, count: int) -> None:
        loop = asyncio.get_running_loop()
        for _ in range(count):
            _, conn = await loop.create_connection(lambda: Connection(self), HOST, self.port)
            self.idle.append(conn)

    def send(self, conn: Connection, due: float) -> None:
        self.n += 1
        n = self.n
        body = (
            f'[{{"source":"s{n % 1000:04d}","field":"value",'
            f'"time":{1577836800 + n},"value":{n % 97}.5}}]'
        )
        head = (
            f"POST {PATH} HTTP/1.1\r\nHost: {HOST}\r\nAuthorization: Bearer {self.key}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        now = time.perf_counter()
        conn.due, conn.sent, conn.busy = due, now, True
        if due >= self.record_from:
            self.late.append(now - due)
        self.outstanding += 1
        assert conn.transport is not None
        conn.transport.write((head + body).encode())

    def answered(self, conn: Connection, status: int, close: bool) -> None:
        now = time.perf_counter()
        conn.busy = False
        self.outstanding -= 1
        if conn.due >= self.record_from:
            self.statuses[status] += 1
            kind = "accepted" if 200 <= status < 300 else "shed" if status == 503 else "other"
            self.latency[kind].append(now - conn.due)
            self.service[kind].append(now - conn.sent)  # from when it went out
            self.last_answer = now
        if close:
            self.closes += 1
            if conn.transport is not None:
                conn.transport.close()  # connection_lost opens another
            return
        self.ready(conn)

    def ready(self, conn: Connection) -> None:
        if self.closed_loop:
            if self.running:
                self.send(conn, time.perf_counter())
            return
        if self.backlog:
            self.send(conn, self.backlog.popleft())
        else:
            self.idle.append(conn)

    def lost(self, conn: Connection) -> None:
        if conn in self.idle:
            self.idle.remove(conn)
        if conn.busy:
            conn.busy = False
            self.outstanding -= 1
            if conn.due >= self.record_from:
                self.errors += 1
        asyncio.get_running_loop().create_task(self.reopen())

    async def reopen(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            _, conn = await loop.create_connection(lambda: Connection(self), HOST, self.port)
        except OSError:
            self.errors += 1
            return
        self.ready(conn)

    async def schedule(self, rate: float, seconds: float, warmup: float) -> None:
        """Requests due at a constant rate for `seconds` (after `warmup`), then the drain."""
        start = time.perf_counter() + 0.01
        self.record_from = start + warmup
        total = int(rate * (warmup + seconds))
        i = 0
        while i < total:
            due_now = min(total, int((time.perf_counter() - start) * rate) + 1)
            while i < due_now:
                due = start + i / rate
                if self.idle:
                    self.send(self.idle.pop(), due)
                else:
                    self.backlog.append(due)
                i += 1
            self.backlog_max = max(self.backlog_max, len(self.backlog))
            await asyncio.sleep(TICK_S)

    async def drain(self, timeout: float) -> int:
        """Wait for every request sent or waiting to be answered; how many were not."""
        deadline = time.perf_counter() + timeout
        while (self.backlog or self.outstanding) and time.perf_counter() < deadline:
            await asyncio.sleep(0.05)
        return len(self.backlog) + self.outstanding


def percentile(xs: list[float], q: float) -> float | None:
    if not xs:
        return None
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * q))]


def ms(x: float | None) -> float | None:
    return None if x is None else round(x * 1000, 1)


def rss_bytes(pid: int) -> int:
    """Resident memory of a process and its descendants (0 once it is gone)."""
    total = 0
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1]) * 1024
        for task in Path(f"/proc/{pid}/task").iterdir():
            children = (task / "children").read_text().split()
            total += sum(rss_bytes(int(child)) for child in children)
    except (OSError, ValueError):
        pass
    return total


async def sample_rss(pid: int, into: list[int], stop: asyncio.Event) -> None:
    while not stop.is_set():
        into.append(rss_bytes(pid))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.25)


async def capacity(port: int, key: str, seconds: float) -> dict[str, Any]:
    driver = Driver(port, key, closed_loop=True)
    await driver.open(CAPACITY_CONNECTIONS)
    started = time.perf_counter()
    driver.record_from = started + 1.0
    for conn in list(driver.idle):
        driver.idle.remove(conn)
        driver.send(conn, time.perf_counter())
    await asyncio.sleep(seconds)
    driver.running = False
    measured = time.perf_counter() - driver.record_from
    await driver.drain(30)
    accepted = driver.latency["accepted"]
    return {
        "connections": CAPACITY_CONNECTIONS,
        "seconds": seconds - 1.0,
        "accepted_per_s": len(accepted) / measured,
        "statuses": dict(driver.statuses),
        "p50_ms": ms(percentile(accepted, 0.5)),
        "p99_ms": ms(percentile(accepted, 0.99)),
    }


async def overload(server: bench.Server, rate: float, args: argparse.Namespace) -> dict[str, Any]:
    assert server.admin_key is not None and server.proc is not None
    driver = Driver(server.port, server.admin_key, closed_loop=False)
    await driver.open(args.connections)
    rss: list[int] = []
    stop = asyncio.Event()
    sampler = asyncio.get_running_loop().create_task(sample_rss(server.proc.pid, rss, stop))
    rss_before = rss_bytes(server.proc.pid)
    cpu_before, own_before, wall_before = server.cpu_s(), time.process_time(), time.time()
    await driver.schedule(rate, args.seconds, args.warmup)
    unanswered = await driver.drain(args.drain)
    cpu_after, own, wall = server.cpu_s(), time.process_time(), time.time()
    server_cpu = None if cpu_before is None or cpu_after is None else cpu_after - cpu_before
    stop.set()
    await sampler
    lat = driver.latency
    answered = sum(driver.statuses.values())
    offered = int(rate * args.seconds)
    # Over the time from the first measured request's due time to the last reply (the drain
    # included): a server that falls behind answers its backlog after the schedule ends.
    answering_s = max(driver.last_answer - driver.record_from, args.seconds)
    result: dict[str, Any] = {
        "offered_per_s": rate,
        "connections": args.connections,
        "seconds": args.seconds,
        "offered": offered,
        "answered": answered,
        "answering_s": round(answering_s, 1),
        "accepted_per_s": len(lat["accepted"]) / answering_s,
        "shed_share": len(lat["shed"]) / offered,
        "accepted_share": len(lat["accepted"]) / offered,
        "statuses": {str(k): v for k, v in sorted(driver.statuses.items())},
        "connection_errors": driver.errors,
        "unanswered_after_drain": unanswered,
        "connections_closed_by_server": driver.closes,
        "accepted_ms": {
            "p50": ms(percentile(lat["accepted"], 0.5)),
            "p90": ms(percentile(lat["accepted"], 0.9)),
            "p99": ms(percentile(lat["accepted"], 0.99)),
            "max": ms(max(lat["accepted"], default=None)),
        },
        "accepted_from_send_ms": {
            "p50": ms(percentile(driver.service["accepted"], 0.5)),
            "p99": ms(percentile(driver.service["accepted"], 0.99)),
        },
        "shed_from_send_ms": {
            "p50": ms(percentile(driver.service["shed"], 0.5)),
            "p99": ms(percentile(driver.service["shed"], 0.99)),
        },
        "shed_ms": {
            "p50": ms(percentile(lat["shed"], 0.5)),
            "p99": ms(percentile(lat["shed"], 0.99)),
        },
        "driver_late_ms": {
            "p50": ms(percentile(driver.late, 0.5)),
            "p99": ms(percentile(driver.late, 0.99)),
        },
        "driver_backlog_max": driver.backlog_max,
        "driver_cpu_share": round((own - own_before) / (wall - wall_before), 2),
        "server_cpu_share": None
        if server_cpu is None
        else round(server_cpu / (wall - wall_before), 2),
        "server_rss_mib": {
            "before": round(rss_before / 2**20, 1),
            "peak": round(max(rss, default=0) / 2**20, 1),
        },
    }
    if server_cpu is not None and answered:
        result["server_cpu_us_per_answer"] = round(server_cpu / answered * 1e6)
    return result


def report(result: dict[str, Any]) -> None:
    cap, over = result["capacity"], result["overload"]
    print(
        f"capacity: {cap['accepted_per_s']:,.0f} requests/s (closed loop, "
        f"{cap['connections']} connections; p50 {cap['p50_ms']} ms, p99 {cap['p99_ms']} ms)"
    )
    acc, shed = over["accepted_ms"], over["shed_ms"]
    print(
        f"overload: {over['offered_per_s']:,.0f} requests/s offered over "
        f"{over['connections']} connections for {over['seconds']} s\n"
        f"  accepted {over['accepted_per_s']:,.0f}/s ({over['accepted_share']:.1%}): "
        f"p50 {acc['p50']} ms, p90 {acc['p90']} ms, p99 {acc['p99']} ms, max {acc['max']} ms "
        f"(from the send: p50 {over['accepted_from_send_ms']['p50']} ms, p99 "
        f"{over['accepted_from_send_ms']['p99']} ms); the last answer "
        f"{over['answering_s']} s after the first measured request was due\n"
        f"  shed (503) {over['shed_share']:.1%}: p50 {shed['p50']} ms, p99 {shed['p99']} ms "
        f"(from the send: p50 {over['shed_from_send_ms']['p50']} ms, p99 "
        f"{over['shed_from_send_ms']['p99']} ms)\n"
        f"  statuses {over['statuses']}, connection errors {over['connection_errors']}, "
        f"unanswered {over['unanswered_after_drain']}, closed by server "
        f"{over['connections_closed_by_server']}\n"
        f"  server: {over.get('server_cpu_us_per_answer', '?')} us CPU per answer (busy "
        f"{over['server_cpu_share']} of a core), RSS "
        f"{over['server_rss_mib']['before']} MiB before, {over['server_rss_mib']['peak']} MiB "
        f"peak\n"
        f"  driver: busy {over['driver_cpu_share']} of a core; sent late by p50 "
        f"{over['driver_late_ms']['p50']} ms, p99 "
        f"{over['driver_late_ms']['p99']} ms; at most {over['driver_backlog_max']:,} requests "
        f"waited for a connection"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--workers", type=int, default=1, help="server processes")
    ap.add_argument("--factor", type=float, default=3.0, help="offered rate / capacity")
    ap.add_argument("--connections", type=int, default=512, help="connections of the overload")
    ap.add_argument("--seconds", type=float, default=20.0, help="measured part of the overload")
    ap.add_argument("--warmup", type=float, default=2.0, help="overload seconds left out")
    ap.add_argument("--drain", type=float, default=60.0, help="longest wait for the last replies")
    ap.add_argument("--capacity-seconds", type=float, default=11.0)
    ap.add_argument("--capacity", type=float, help="requests/s: skip measuring it")
    ap.add_argument(
        "--env", action="append", default=[], metavar="NAME=VALUE", help="server setting"
    )
    ap.add_argument("--database-url", help="postgresql://... (default: embedded SQLite)")
    ap.add_argument("--out", default="overload-results.json", help="where the JSON goes")
    args = ap.parse_args()

    for pair in args.env:
        name, _, value = pair.partition("=")
        os.environ[name] = value
    server = bench.Server(
        argparse.Namespace(
            workers=args.workers, database_url=args.database_url, port=None, admin_key=None
        )
    )
    server.start()
    result: dict[str, Any] = {"env": bench.common.env_info(), "args": vars(args)}
    try:
        bench.checked("POST", server, "/v1/buckets", {"key": "overload"})
        assert server.admin_key is not None
        if args.capacity:
            result["capacity"] = {"accepted_per_s": args.capacity, "connections": "given",
                                  "p50_ms": None, "p99_ms": None}  # fmt: skip
        else:
            result["capacity"] = uvloop.run(
                capacity(server.port, server.admin_key, args.capacity_seconds)
            )
        rate = result["capacity"]["accepted_per_s"] * args.factor
        result["overload"] = uvloop.run(overload(server, rate, args))
    finally:
        server.stop()
        server.cleanup()
    report(result)
    Path(args.out).write_text(json.dumps(result, indent=2))
    print(f"results: {args.out}")


if __name__ == "__main__":
    main()
