#!/usr/bin/env python3
"""The single-point write as `sensorbase serve` answers it, in process: the HTTP protocol
(server/protocol.py) fed one-point `POST /v1/write` requests on --connections connections
at once, its replies taken by an in-memory transport, against a real SQLite store at
durability=full (the WAL synced by its helper process, as served). No sockets, no wrk: what
is left is the server's own work for a request, from the parser's first callback to the
reply's bytes, with the group commit of --connections writes at a time, so that instruction
counts (callgrind) and the process's CPU time per request are steady on a shared machine.

Usage:  .venv/bin/python benchmarks/single_path.py [--requests 4000] [--connections 16]
        valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file=/tmp/cg.out \\
          .venv/bin/python benchmarks/single_path.py --requests 800 --callgrind
          (its total instructions / 800: a request's; callgrind_annotate /tmp/cg.out for where)
For main's code: PYTHONPATH=<main checkout>/src .venv/bin/python benchmarks/single_path.py
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import uvicorn
from uvicorn.server import ServerState

from sensorbase.app import wire
from sensorbase.server.protocol import protocol_for
from sensorbase.settings import Settings


class Transport(asyncio.Transport):
    """What a connection's socket would be: writes kept (and counted), nothing sent."""

    def __init__(self, round_done: list[Any]) -> None:
        super().__init__()
        self.replies = 0
        self.last = b""
        self.closing = False
        self._round = round_done  # [replies still due this round, the future told at 0]

    def write(self, data: Any) -> None:
        self.replies += 1
        self.last = bytes(data)
        self._round[0] -= 1
        if not self._round[0]:
            self._round[1].set_result(None)

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"sockname": ("127.0.0.1", 8080), "peername": ("127.0.0.1", 40000)}.get(
            name, default
        )

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def get_write_buffer_size(self) -> int:
        return 0


def request(key: str, n: int) -> bytes:
    """bench.py's single-point request (its wrk Lua script's), the n-th."""
    body = (
        f'[{{"source":"s{n % 1000:04d}","field":"value","time":{1577836800 + n},'
        f'"value":{n % 97}.5}}]'
    ).encode()
    return (
        b"POST /v1/write?bucket=single&precision=s HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n"
        b"Authorization: Bearer " + key.encode() + b"\r\nContent-Type: application/json\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
    )


async def run(args: argparse.Namespace) -> None:
    data_dir = Path(tempfile.mkdtemp(prefix="sensorbase-single-")) / "data"
    settings = Settings(
        data_dir=data_dir, rate_limit="", log_level="warning", durability=args.durability
    )
    wiring = wire(settings)
    svc = wiring.services
    key = svc.start()
    assert key is not None
    who = svc.keys.verify(key.key_id, key.secret)
    await svc.catalog.buckets.create(who, "single", "single")
    config = uvicorn.Config(
        wiring.app, http=protocol_for(wiring), access_log=False, log_level="warning"
    )
    config.load()
    state = ServerState()
    loop = asyncio.get_running_loop()
    cls = protocol_for(wiring)
    conns = []
    round_done: list[Any] = [0, None]
    for _ in range(args.connections):
        protocol = cls(config=config, server_state=state, app_state={}, _loop=loop)
        transport = Transport(round_done)
        protocol.connection_made(transport)
        conns.append((protocol, transport))
    secret = key.token

    async def rounds(count: int) -> None:
        n = 0
        for _ in range(count):
            round_done[:] = [len(conns), loop.create_future()]
            for protocol, _t in conns:
                n += 1
                protocol.data_received(request(secret, n))
            await round_done[1]  # every connection answered (its reply "sent")

    await rounds(args.warmup // args.connections)  # series created, caches warm
    last = conns[0][1].last
    assert last.startswith(b"HTTP/1.1 200"), last
    profile = cProfile.Profile() if args.profile else None
    started, cpu, times = time.perf_counter(), time.process_time(), os.times()
    if profile:
        profile.enable()
    if args.callgrind:
        _instrument("on")
    await rounds(args.requests // args.connections)
    if args.callgrind:
        _instrument("off")
    if profile:
        profile.disable()
    cpu = time.process_time() - cpu
    times_after = os.times()
    wall = time.perf_counter() - started
    done = args.requests // args.connections * args.connections
    committer = svc.ingest.committer
    print(
        f"{done} requests: {cpu / done * 1e6:.1f} us of CPU a request (this process; user "
        f"{(times_after.user - times.user) / done * 1e6:.1f}, system "
        f"{(times_after.system - times.system) / done * 1e6:.1f}), "
        f"{done / wall:,.0f} requests/s, {committer.jobs_done / max(committer.commits, 1):.1f} "
        "writes a group commit"
    )
    svc.stop()
    if profile:
        pstats.Stats(profile).sort_stats(args.sort).print_stats(45)


def _instrument(state: str) -> None:
    """Turn callgrind's instrumentation on or off in this process (run under valgrind with
    --instr-atstart=no): only the measured requests are counted, not start-up."""
    subprocess.run(["callgrind_control", "-i", state, str(os.getpid())], check=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--requests", type=int, default=4000)
    ap.add_argument("--warmup", type=int, default=2000)
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--durability", default="full", choices=["full", "normal"])
    ap.add_argument("--profile", action="store_true", help="cProfile the measured requests")
    ap.add_argument(
        "--callgrind", action="store_true", help="count only the measured requests (see above)"
    )
    ap.add_argument("--sort", default="tottime", help="of the profile: tottime, cumulative...")
    args = ap.parse_args()
    import uvloop

    uvloop.run(run(args))


if __name__ == "__main__":
    main()
