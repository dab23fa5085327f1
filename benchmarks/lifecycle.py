#!/usr/bin/env python3
"""Lifecycle figures (docs/lifecycle.md): a retention pass over N expired points, with writes
going on meanwhile, and a range delete of M points; printed, never asserted.

  .venv/bin/python benchmarks/lifecycle.py                       # SQLite: 10M expired, 1M deleted
  .venv/bin/python benchmarks/lifecycle.py --expired 1000000 --deleted 200000
  .venv/bin/python benchmarks/lifecycle.py --database-url postgresql://postgres@127.0.0.1/bench

In one process, on a fresh store: the points are loaded straight through the store's writer
(columnar batches; SQLite then folds them into chunks), into SERIES series of a bucket whose
retention (1d) they are all past, with summaries kept (the pass writes a summary per chunk).
Then, at once, the pass (`Retention.run_once`, the server's own job) and a writer posting
one-point writes to /v1/write through the ASGI app (the event loop the SQLite writer shares)
one after another; the writes' latency is compared to the same writer alone before the pass.
Then DELETE /v1/points over a range holding --deleted points of a second bucket. CPU seconds
(this process and its children, the fold helper included) are printed beside wall time: on
the shared 2-core machine wall time moves with other load, CPU much less.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import shutil
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
from sensorbase.storage.base import WriteTx
from sensorbase.times import format_us, now_us

SERIES = 1000
DAY = 86_400_000_000
BATCH = 500_000


def cpu_s() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def load(
    services: Services, bucket_key: str, points: int, start_us: int, keep: bool
) -> tuple[list[int], int]:
    """`points` points over SERIES series, 1 s apart from `start_us`; (series ids, step)."""

    def catalog(tx: WriteTx) -> list[int]:
        org = tx.get_org("default")
        assert org is not None
        bucket = tx.create_bucket(org.id, bucket_key, bucket_key, "", {})
        tx.set_bucket_retention(bucket.id, DAY if keep else None, keep)
        ids = []
        for n in range(SERIES):
            source = tx.create_source(org.id, bucket.id, f"dev{n}", f"dev{n}", {}, None)
            ids.append(tx.get_or_create_series(source.id, ["v"])["v"])
        return ids

    ids = services.committer.run_sync(catalog)
    per_series = points // SERIES
    series = np.array(ids, np.int64)
    writer = services.store.writer()
    rng = np.random.default_rng(1)
    for at in range(0, per_series, BATCH // SERIES):
        steps = np.arange(at, min(per_series, at + BATCH // SERIES), dtype=np.int64)
        sid = np.repeat(series, len(steps))
        t = start_us + np.tile(steps, SERIES) * 1_000_000
        v = np.round(20 + rng.standard_normal(len(t)), 2)
        tx = writer.begin()
        tx.append(ResolvedBatch(sid, t, v, None))
        writer.commit()
    fold = getattr(services.store, "fold_points", None)
    if fold is not None:
        fold()
    return ids, per_series


async def writes(
    client: httpx.AsyncClient, headers: dict[str, str], stop: asyncio.Event, latencies: list[float]
) -> None:
    n = 0
    while not stop.is_set():
        body = {
            "bucket": "live",
            "points": [{"source": "w", "fields": {"v": float(n)}, "time": format_us(now_us())}],
        }
        began = time.perf_counter()
        reply = await client.post("/v1/write", json=body, headers=headers)
        latencies.append(time.perf_counter() - began)
        assert reply.status_code == 200, reply.text
        n += 1


def summary(name: str, latencies: list[float]) -> str:
    ms = sorted(x * 1000 for x in latencies)
    p99 = ms[min(len(ms) - 1, int(len(ms) * 0.99))]
    return (
        f"{name}: {len(ms)} writes, p50 {statistics.median(ms):.2f} ms, p99 {p99:.2f} ms, "
        f"max {ms[-1]:.1f} ms"
    )


async def settle(services: Services) -> None:
    """Until the loaded points' write log is folded and its free pages given back, so that
    each phase times itself and not what loading left to do."""
    while True:
        gauges = await services.storage_gauges()
        if gauges.get("sqlite_log_points", ("", 0))[1] == 0:
            break
        await asyncio.sleep(0.5)
    while await services.committer.run(lambda tx: tx.reclaim_space()):
        pass
    await asyncio.sleep(2)  # a checkpoint of the WAL


def file_bytes(services: Services) -> str:
    """The store's size (SQLite: the file apart from its WAL, whose size is its own cycle)."""
    path = getattr(services.store, "path", None)
    if path is None:
        return f"{services.store.reader().disk_bytes() / 1e6:.0f} MB"
    wal = Path(f"{path}-wal")
    return (
        f"{Path(path).stat().st_size / 1e6:.0f} MB + WAL "
        f"{(wal.stat().st_size if wal.exists() else 0) / 1e6:.0f} MB"
    )


async def run(services: Services, expired: int, deleted: int) -> None:
    key = services.bootstrap_key  # type: ignore[attr-defined]
    headers = {"Authorization": f"Bearer {key.token}"}
    app = build_app(services, manage_lifecycle=False)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://sb"
    ) as client:
        assert (
            await client.post("/v1/buckets", json={"key": "live"}, headers=headers)
        ).status_code == 201
        began, cpu = time.perf_counter(), cpu_s()
        load(services, "old", expired, now_us() - 30 * DAY, keep=True)
        print(
            f"loaded {expired:,} expired points in {time.perf_counter() - began:.1f} s "
            f"({cpu_s() - cpu:.1f} CPU s); store {file_bytes(services)}"
        )

        await settle(services)
        stop, alone = asyncio.Event(), list[float]()
        task = asyncio.create_task(writes(client, headers, stop, alone))
        await asyncio.sleep(5)
        stop.set()
        await task
        print(summary("writes alone (5 s)", alone))

        print(f"store before the pass: {file_bytes(services)}")
        stop, during = asyncio.Event(), list[float]()
        task = asyncio.create_task(writes(client, headers, stop, during))
        began, cpu = time.perf_counter(), cpu_s()
        done = await services.retention.run_once()
        seconds, cpu_used = time.perf_counter() - began, cpu_s() - cpu
        stop.set()
        await task
        print(
            f"retention pass: {done.points:,} points in {done.chunks:,} chunks, "
            f"{done.transactions:,} transactions, {seconds:.1f} s "
            f"({done.points / seconds:,.0f} points/s), {cpu_used:.1f} CPU s (with the writes); "
            f"store after: {file_bytes(services)}"
        )
        print(summary("writes during the pass", during))

        load(services, "del", deleted, now_us() - 2 * DAY, keep=False)
        await settle(services)
        size = file_bytes(services)
        began, cpu = time.perf_counter(), cpu_s()
        reply = await client.delete(
            "/v1/points",
            params={
                "bucket": "del",
                "start": format_us(now_us() - 3 * DAY),
                "end": format_us(now_us()),
            },
            headers=headers,
            timeout=3600,
        )
        assert reply.status_code == 200, reply.text
        seconds, cpu_used = time.perf_counter() - began, cpu_s() - cpu
        print(
            f"delete of {deleted:,} points ({len(reply.json()['series'])} series): {seconds:.1f} s "
            f"({deleted / seconds:,.0f} points/s), {cpu_used:.1f} CPU s; store {size} -> "
            f"{file_bytes(services)}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--expired", type=int, default=10_000_000)
    parser.add_argument("--deleted", type=int, default=1_000_000)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="sb-lifecycle-"))
    try:
        settings = Settings(
            data_dir=root, database_url=args.database_url, rate_limit="", retention_every_s=3600
        )
        services = Services(settings, open_store(settings))
        services.bootstrap_key = services.start()  # type: ignore[attr-defined]
        kind = "PostgreSQL" if args.database_url else "SQLite"
        print(f"store: {kind}; load average {os.getloadavg()[0]:.1f}")
        try:
            asyncio.run(run(services, args.expired, args.deleted))
        finally:
            services.stop()
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
