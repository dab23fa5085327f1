#!/usr/bin/env python3
"""The request path of a fleet's batch ingest, in process: the CPU a point of decoding
5,000-point time-major JSON bodies (one point a series a round, curve.py's shape) and
`Ingest.write` (series look-up, checks, the group commit), against a real store, without
HTTP. On a shared machine the process's own CPU time is steadier than an HTTP run's.

Usage:  .venv/bin/python benchmarks/ingest_path.py [--series 100000] [--requests 60]
        [--digits 4] [--database-url postgresql://...] [--profile]
For main's code: PYTHONPATH=<main checkout>/src .venv/bin/python benchmarks/ingest_path.py
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import tempfile
import time
from pathlib import Path

from sensorbase.app import open_store
from sensorbase.dialects.native.decode import decode
from sensorbase.ingest.pipeline import WriteOptions
from sensorbase.services import Services
from sensorbase.settings import Settings

PER_REQUEST = 5_000


def bodies(series: int, first: int, count: int, digits: int) -> list[bytes]:
    """`count` points time-major from point number `first`, in 5,000-point bodies; sources
    named "s" and their number, of at least `digits` digits."""
    out = []
    for start in range(first, first + count, PER_REQUEST):
        points = ",".join(
            f'{{"source":"s{j % series:0{digits}d}","field":"value",'
            f'"time":{1_600_000_000 + (j // series) * 60},"value":{j % 97}.5}}'
            for j in range(start, min(first + count, start + PER_REQUEST))
        )
        out.append(f"[{points}]".encode())
    return out


async def run(args: argparse.Namespace) -> None:
    base = Settings(data_dir=Path(tempfile.mkdtemp()) / "data", rate_limit="", durability="normal")
    settings = base.model_copy(update={"database_url": args.database_url})
    svc = Services(settings, open_store(settings))
    key = svc.start()
    assert key is not None
    who = svc.keys.verify(key.key_id, key.secret)
    await svc.catalog.buckets.create(who, "fleet", "fleet")

    async def write(body: bytes) -> int:
        decoded = decode(
            body, ndjson=False, bucket="fleet", source=None, precision="s", max_points=10**6
        )
        await svc.ingest.write(who, decoded.batch, WriteOptions())
        return len(decoded.batch)

    for body in bodies(args.series, 0, args.series, args.digits):  # creates the series
        await write(body)
    timed = bodies(args.series, args.series, args.requests * PER_REQUEST, args.digits)
    profile = cProfile.Profile() if args.profile else None
    started, cpu = time.perf_counter(), time.process_time()
    if profile:
        profile.enable()
    points = 0
    for body in timed:
        points += await write(body)
    if profile:
        profile.disable()
    cpu, wall = time.process_time() - cpu, time.perf_counter() - started
    print(
        f"{args.series:,} series, {points:,} points: process CPU {cpu / points * 1e6:.3f} us "
        f"a point (wall {wall / points * 1e6:.3f})"
    )
    if profile:
        pstats.Stats(profile).sort_stats("tottime").print_stats(20)
    svc.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--series", type=int, default=100_000)
    ap.add_argument("--requests", type=int, default=60, help="timed 5,000-point requests")
    ap.add_argument("--digits", type=int, default=4, help="of source names (bench.py: s0042)")
    ap.add_argument("--database-url", default=None, help="PostgreSQL instead of SQLite")
    ap.add_argument("--profile", action="store_true", help="cProfile the timed requests")
    asyncio.run(run(ap.parse_args()))


if __name__ == "__main__":
    main()
