"""M4 for a chart: one year of a 1 Hz series (31,536,000 points) drawn at 1,500 pixels.

Writes the series straight through the store (the engine's writer, batches of 2,000,000 points,
each folded into chunks as the server's folder would), with one spike and one dip at random
instants, then asks `GET /v1/query?mode=m4&width=1500` for the whole year through the ASGI app
(the real routes, authentication and query service; no socket) and prints the latency of that
data request (2 warm-ups, then the median and the worst of `--runs`), the points drawn, and the
drawn min/max beside the range's true min/max, which it asserts equal.

    .venv/bin/python benchmarks/m4.py                  # SQLite, one year
    .venv/bin/python benchmarks/m4.py --days 30        # a quick look
    .venv/bin/python benchmarks/m4.py --database-url postgresql://postgres@127.0.0.1/m4bench
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

from sensorbase.api.app import build_app
from sensorbase.model import ResolvedBatch
from sensorbase.services import Services
from sensorbase.settings import Settings
from sensorbase.storage import open_store
from sensorbase.times import format_us, parse_iso_us

SECOND = 1_000_000
START = parse_iso_us("2025-01-01T00:00:00Z")
BATCH = 2_000_000


def generate(services: Services, points: int, seed: int) -> tuple[float, float]:
    """Write the series; its true (min, max)."""
    store = services.store
    writer = store.writer()
    tx = writer.begin()
    org = store.reader().get_org("default")  # the bootstrap key's organisation
    assert org is not None
    bucket = tx.create_bucket(org.id, "plant", "plant", "", {})
    source = tx.create_source(org.id, bucket.id, "pump", "pump", {}, None)
    sid = tx.get_or_create_series(source.id, ["pressure"])["pressure"]
    writer.commit()
    rng = np.random.default_rng(seed)
    spike, dip = rng.choice(points, 2, replace=False)
    lowest, highest = np.inf, -np.inf
    fold = getattr(store, "fold_points", None)
    for at in range(0, points, BATCH):
        index = np.arange(at, min(at + BATCH, points), dtype=np.int64)
        # A daily cycle with noise, rounded as sensors report.
        values = np.round(
            20 + 5 * np.sin(index * (2 * np.pi / 86_400)) + rng.normal(0, 0.3, len(index)), 2
        )
        values[index == spike] = 180.0
        values[index == dip] = -40.0
        lowest, highest = min(lowest, values.min()), max(highest, values.max())
        tx = writer.begin()
        tx.append(
            ResolvedBatch(np.full(len(index), sid, np.int64), START + index * SECOND, values, None)
        )
        writer.commit()
        if fold is not None:
            fold()
        print(f"  written {index[-1] + 1:,} points", end="\r", flush=True)
    print()
    return float(lowest), float(highest)


async def measure(
    services: Services, key: str, points: int, width: int, runs: int
) -> tuple[list[float], list[float], int]:
    params = {
        "bucket": "plant",
        "source": "pump",
        "field": "pressure",
        "mode": "m4",
        "width": str(width),
        "start": format_us(START),
        "end": format_us(START + points * SECOND),
    }
    headers = {"Authorization": f"Bearer {key}"}
    app = build_app(services, manage_lifecycle=False)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
        timings = []
        for run in range(runs + 2):
            began = time.perf_counter()
            reply = await client.get("/v1/query", params=params, headers=headers, timeout=600)
            took = time.perf_counter() - began
            assert reply.status_code == 200, reply.text
            if run >= 2:
                timings.append(took)
    [series] = reply.json()["series"]
    drawn = series["m4"]["value"]
    return timings, drawn, len(reply.content)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--width", type=int, default=1_500)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--seed", type=int, default=2014)
    parser.add_argument("--database-url", default="")
    args = parser.parse_args()
    points = args.days * 86_400
    with tempfile.TemporaryDirectory() as data_dir:
        settings = Settings(data_dir=Path(data_dir), database_url=args.database_url, rate_limit="")
        services = Services(settings, open_store(settings))
        new_key = services.start()
        assert new_key is not None, "the benchmark needs an empty store (a fresh database)"
        try:
            began = time.perf_counter()
            lowest, highest = generate(services, points, args.seed)
            written_s = time.perf_counter() - began
            timings, drawn, size = asyncio.run(
                measure(services, new_key.token, points, args.width, args.runs)
            )
        finally:
            services.stop()
    backend = "postgresql" if args.database_url else "sqlite"
    figures = {
        "backend": backend,
        "points": points,
        "width": args.width,
        "generate_s": round(written_s, 1),
        "m4_median_ms": round(statistics.median(timings) * 1000, 1),
        "m4_worst_ms": round(max(timings) * 1000, 1),
        "points_drawn": len(drawn),
        "reply_bytes": size,
        "drawn_min": min(drawn),
        "true_min": lowest,
        "drawn_max": max(drawn),
        "true_max": highest,
    }
    print(json.dumps(figures, indent=2))
    assert min(drawn) == lowest and max(drawn) == highest, "the chart lost the range's extremes"


if __name__ == "__main__":
    main()
