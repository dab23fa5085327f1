"""The Python client's write path against a fresh server: points/s from `write()` to the
server's acknowledgement (`flush()` returned), with the in-memory queue and with the SQLite
offline buffer, and the cost of one `write()` call into the buffer (one fsync each).

    .venv/bin/python benchmarks/client.py [--points 200000] [--batch-size 5000]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import bench
from sensorbase.client import Client, Point


def points(n: int, offset: int) -> list[Point]:
    start = datetime.now(UTC) - timedelta(days=2)
    return [
        Point(f"s{i % 100}", "t", float(i), start + timedelta(milliseconds=10 * (i + offset)))
        for i in range(n)
    ]


def run(server: bench.Server, args: argparse.Namespace, buffer: Path | None, offset: int) -> float:
    batch = points(args.points, offset)
    with Client(server.base, key=server.admin_key, bucket="bench", batch_size=args.batch_size,
                buffer_path=buffer) as sb:  # fmt: skip
        started = time.perf_counter()
        for at in range(0, len(batch), 1000):
            sb.write(batch[at : at + 1000])
        sb.flush()
        return args.points / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=200_000)
    parser.add_argument("--batch-size", type=int, default=5000)
    args = parser.parse_args()
    server = bench.Server(
        argparse.Namespace(port=None, admin_key=None, database_url=None, workers=1)
    )
    server.start()
    try:
        bench.checked("POST", server, "/v1/buckets", {"key": "bench"})
        memory = run(server, args, None, 0)
        with tempfile.TemporaryDirectory() as tmp:
            disk = run(server, args, Path(tmp) / "buffer.sqlite", args.points)
            one_file = Path(tmp) / "one.sqlite"
            with Client(server.base, key=server.admin_key, bucket="bench",
                        buffer_path=one_file, flush_interval_s=3600) as sb:  # fmt: skip
                one = points(500, 2 * args.points)
                started = time.perf_counter()
                for p in one:
                    sb.write(p)
                per_call_ms = (time.perf_counter() - started) / len(one) * 1e3
                sb.flush()
    finally:
        server.stop()
        server.cleanup()
    print(f"points {args.points:,}, batch_size {args.batch_size}, write() of 1,000 points a call")
    print(f"in-memory queue: {memory:,.0f} points/s acknowledged")
    print(f"SQLite buffer:   {disk:,.0f} points/s acknowledged")
    print(f"one point a write() into the buffer: {per_call_ms:.2f} ms a call (a commit, fsynced)")


if __name__ == "__main__":
    main()
