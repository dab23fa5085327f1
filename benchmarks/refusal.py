"""What a refusal costs beside an acceptance: each write route, a body of N good items against
the same body with every item bad, sent through the app in this process (no network), on a
fresh embedded store. Prints milliseconds per request (median of --runs) and the reply size.

    .venv/bin/python benchmarks/refusal.py [--items 5000] [--runs 5]

A refusal lists at most 100 problems and counts the rest (errors.MAX_LISTED_PROBLEMS): before
that, a 2 MB body of a million bad items held its worker for 12-17 s and answered 57 MB.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import msgspec

from sensorbase.api.app import build_app
from sensorbase.services import Services
from sensorbase.settings import Settings
from sensorbase.storage import open_store

Body = Callable[[int, bool], Any]  # (items, good) -> JSON body


def _stamp(i: int) -> str:
    moment = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=i)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def native(n: int, good: bool) -> Any:
    value = 21.5 if good else "warm"
    return {
        "bucket": "b",
        "points": [{"source": "s", "field": "t", "value": value, "time": i} for i in range(n)],
    }


def diagrams(n: int, good: bool) -> Any:
    value = 19.9 if good else "19.9"
    return [{"sensorId": "s", "date": _stamp(i), "value": value} for i in range(n)]


def dakkio(n: int, good: bool) -> Any:
    value = 22.5 if good else "hot"
    points = [
        {"dataSourceId": "s", "timestamp": _stamp(i), "values": {"t": value}} for i in range(n)
    ]
    return {"bucketId": "b", "dataPoints": points}


def databoom(n: int, good: bool) -> Any:
    value = 1.5 if good else "x"
    history = [{"date": _stamp(i), "value": value} for i in range(n)]
    return {"device": "s", "signals": {"t": {"history": history}}}


def madevo(n: int, good: bool) -> Any:
    value = 22.5 if good else "hot"
    rows = [{"timestamp": _stamp(i), "metric": "t", "value": value} for i in range(n)]
    return {"datasource_id": "b", "data": rows}


ROUTES: list[tuple[str, str, Body, int]] = [
    ("native /v1/write", "/v1/write?precision=s", native, 100_000),
    ("DiagRAMS push", "/v0/organisations/default/data/b", diagrams, 100_000),
    ("dakkio batch", "/api/data/batch", dakkio, 1_000),
    ("Databoom push", "/v1/signals/push", databoom, 100_000),
    ("Madevo insert", "/restapi/datasource/insert", madevo, 1_000),
]


async def main(items: int, runs: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp), rate_limit="", durability="normal")
        services = Services(settings, open_store(settings))
        key = services.start()
        assert key is not None
        app = build_app(services, manage_lifecycle=False)
        transport = httpx.ASGITransport(app=app)
        headers = {
            "Authorization": f"Bearer {key.token}",
            "X-API-Key": key.token,
            "Content-Type": "application/json",
        }
        async with httpx.AsyncClient(transport=transport, base_url="http://sb") as client:
            await client.post("/v1/buckets", json={"key": "b"}, headers=headers)
            await client.post("/v1/buckets/b/sources", json={"key": "s"}, headers=headers)
            print("| route | items | accepted (ms) | refused (ms) | refused ÷ accepted | reply |")
            print("|---|---|---|---|---|---|")
            for name, path, make, cap in ROUTES:
                n = min(items, cap)
                figures = {}
                for good in (True, False):
                    raw = msgspec.json.encode(make(n, good))
                    times, size, status = [], 0, 0
                    for _ in range(runs):
                        start = time.perf_counter()
                        reply = await client.post(path, content=raw, headers=headers)
                        times.append((time.perf_counter() - start) * 1e3)
                        size, status = len(reply.content), reply.status_code
                    figures[good] = (statistics.median(times), size, status)
                ok_ms, _, ok_status = figures[True]
                bad_ms, bad_size, bad_status = figures[False]
                assert ok_status < 300 and 400 <= bad_status < 500, (ok_status, bad_status)
                print(
                    f"| {name} | {n:,} | {ok_ms:.1f} | {bad_ms:.1f} | {bad_ms / ok_ms:.2f} "
                    f"| {bad_size:,} bytes |"
                )
        services.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=5_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    asyncio.run(main(args.items, args.runs))
