#!/usr/bin/env python3
"""Slow clients: connections that send a request a byte every 2 s, against a fresh server.

--per-kind connections of each kind (100 by default: 300 in all) send, a byte every
--byte-every seconds,

- headers: a one-point write whose headers never end (a long padding header);
- body: a one-point write to the fast lane, headers at once, then its Content-Length body;
- chunked: the same with a chunked body (uvicorn's path);

while 20 ordinary one-point writes are sent at 5 s and again at 30 s. Printed: when the server
closed each kind of connection and with what reply, or how many were still open after
--give-up seconds, and the ordinary writes' statuses. With the default deadlines
(SENSORBASE_HEADER_TIMEOUT_S=10, SENSORBASE_BODY_TIMEOUT_S=60) the headers should be cut at
~10 s and the bodies at ~60 s with 408, and every ordinary write answered 200 meanwhile.

Usage:  .venv/bin/python benchmarks/slow_clients.py [--per-kind 100] [--byte-every 2]
        [--give-up 90] [--env SENSORBASE_BODY_TIMEOUT_S=30 ...]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
from typing import Any

import bench

HOST = "127.0.0.1"
KINDS = ("headers", "body", "chunked")
PROBE_AT_S = (5.0, 30.0)
PROBES = 20
BODY = b'[{"source":"slow","field":"t","time":1577836800,"value":1.5}]'


def head(key: str) -> bytes:
    return (
        f"POST /v1/write?bucket=slow&precision=s HTTP/1.1\r\nHost: {HOST}\r\n"
        f"Authorization: Bearer {key}\r\nContent-Type: application/json\r\n"
    ).encode()


async def slow(kind: str, port: int, key: str, args: argparse.Namespace) -> tuple[Any, ...]:
    """(kind, seconds until the server closed or answered, the reply's status line)."""
    started = time.monotonic()
    reader, writer = await asyncio.open_connection(HOST, port)
    if kind == "headers":
        first, rest = b"", head(key) + b"X-Padding: " + b"x" * 4000
    elif kind == "body":
        first, rest = head(key) + b"Content-Length: %d\r\n\r\n" % len(BODY), BODY
    else:
        first = head(key) + b"Transfer-Encoding: chunked\r\n\r\n"
        rest = b"%x\r\n" % len(BODY) + BODY + b"\r\n0\r\n\r\n"
    writer.write(first)
    reply = asyncio.ensure_future(reader.read(65536))
    try:
        for i in range(len(rest)):
            if time.monotonic() - started > args.give_up:
                return kind, None, b"still open"
            writer.write(rest[i : i + 1])
            await writer.drain()
            done, _ = await asyncio.wait([reply], timeout=args.byte_every)
            if done:
                break
        status = await asyncio.wait_for(reply, 5)
        return kind, time.monotonic() - started, status.split(b"\r\n", 1)[0] or b"closed"
    except (OSError, TimeoutError):
        return kind, time.monotonic() - started, b"reset"
    finally:
        reply.cancel()
        writer.close()


async def ordinary(port: int, key: str, at: float, n: int) -> tuple[float, list[str]]:
    await asyncio.sleep(at)
    request = head(key) + b"Content-Length: %d\r\n\r\n" % len(BODY) + BODY
    statuses = []
    for _ in range(n):
        reader, writer = await asyncio.open_connection(HOST, port)
        writer.write(request)
        statuses.append((await reader.readline())[9:12].decode())
        writer.close()
    return at, statuses


async def run(port: int, key: str, args: argparse.Namespace) -> None:
    slows = [slow(kind, port, key, args) for kind in KINDS for _ in range(args.per_kind)]
    probes = [ordinary(port, key, at, PROBES) for at in PROBE_AT_S]
    results = await asyncio.gather(*slows, *probes)
    for at, statuses in results[len(slows) :]:
        print(f"{PROBES} ordinary writes at {at:.0f} s: {statuses.count('200')} answered 200 "
              f"(all: {sorted(set(statuses))})")  # fmt: skip
    for kind in KINDS:
        mine = [r for r in results[: len(slows)] if r[0] == kind]
        still = sum(1 for r in mine if r[1] is None)
        if still:
            print(f"{kind}: {still} of {len(mine)} still open after {args.give_up:.0f} s")
            continue
        seconds = [r[1] for r in mine]
        replies = sorted({r[2].decode("latin-1") for r in mine})
        print(f"{kind}: {len(mine)} cut after {min(seconds):.1f}-{max(seconds):.1f} s "
              f"(median {statistics.median(seconds):.1f} s), replies {replies}")  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--per-kind", type=int, default=100, help="slow connections of each kind")
    ap.add_argument("--byte-every", type=float, default=2.0, help="seconds between bytes")
    ap.add_argument("--give-up", type=float, default=90.0, help="seconds before giving up")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument(
        "--env", action="append", default=[], metavar="NAME=VALUE", help="server setting"
    )
    args = ap.parse_args()
    for pair in args.env:
        name, _, value = pair.partition("=")
        os.environ[name] = value
    server = bench.Server(
        argparse.Namespace(workers=args.workers, database_url=None, port=None, admin_key=None)
    )
    server.start()
    try:
        bench.checked("POST", server, "/v1/buckets", {"key": "slow"})
        assert server.admin_key is not None
        asyncio.run(run(server.port, server.admin_key, args))
    finally:
        server.stop()
        server.cleanup()


if __name__ == "__main__":
    main()
