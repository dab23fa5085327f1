"""The retention job (docs/lifecycle.md): in each server process, every
`retention_every_s`, the one process of the store holding its retention lease
(Store.retention_lease: a lock beside the SQLite file, an advisory lock on PostgreSQL)
expires the points of every bucket with a retention, a bounded number of chunks per
transaction, then removes alert events and finished webhook deliveries older than
`alert_history_days` (docs/alerts.md), a bounded number of rows per transaction. Each
transaction is a job of the write queue, sharing group commits with the writes, so a pass
over millions of points never holds the writer for long (benchmarks/lifecycle.py measures
the writes' latency meanwhile).

Reads do not wait for it: the read path hides points older than a bucket's cutoff itself
(query/service.py)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass

from starlette.concurrency import run_in_threadpool

from sensorbase.storage.base import Store
from sensorbase.storage.write_queue import Committer
from sensorbase.times import now_us

log = logging.getLogger(__name__)
_RECLAIM_STEPS = 1000  # (SQLite: 16 MiB a step, so up to ~16 GB a pass)
_HISTORY_ROWS = 1000  # alert events and deliveries removed per transaction, each


@dataclass(slots=True)
class RetentionPass:
    ran: bool  # False: another process or node holds the lease
    chunks: int = 0
    points: int = 0
    transactions: int = 0
    seconds: float = 0.0
    events: int = 0  # alert events removed (older than the alert history's retention)
    deliveries: int = 0  # finished webhook deliveries removed, likewise


class Retention:
    def __init__(
        self,
        store: Store,
        committer: Committer,
        every_s: float,
        batch: int,
        history_days: float = 0.0,
    ) -> None:
        self._store = store
        self._committer = committer
        self.every_s = every_s
        self.batch = batch
        self.history_us = int(history_days * 86_400 * 1_000_000)  # 0: kept forever
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Run passes on the running event loop until `stop`."""
        self._task = asyncio.get_running_loop().create_task(self._forever())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _forever(self) -> None:
        while True:
            await asyncio.sleep(self.every_s)
            try:
                done = await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception:  # the next pass tries again; the server goes on
                log.exception("retention pass failed")
                continue
            if done.events or done.deliveries:
                log.info(
                    "alert history: %d events and %d deliveries removed",
                    done.events,
                    done.deliveries,
                )
            if done.points:
                log.info(
                    "retention: %d points of %d chunks expired in %.1f s",
                    done.points,
                    done.chunks,
                    done.seconds,
                )

    async def run_once(self, at_us: int | None = None) -> RetentionPass:
        """One pass, as of `at_us` (now), if this process holds the lease."""
        lease = self._store.retention_lease()
        held = await run_in_threadpool(lease.__enter__)
        try:
            if not held:
                return RetentionPass(False)
            return await self._expire(now_us() if at_us is None else at_us)
        finally:
            await run_in_threadpool(lease.__exit__, None, None, None)

    async def _expire(self, at_us: int) -> RetentionPass:
        started = time.perf_counter()
        done = RetentionPass(True)
        reader = self._store.reader
        buckets = await run_in_threadpool(lambda: reader().retention_buckets())
        if buckets:
            # Expiry cuts chunks: a point still in the write log is hidden from reads once
            # past the cutoff, but expires (and, where the bucket keeps them, is summarised)
            # only once folded, and a process that has taken few writes folds only when
            # it stops (storage/sqlite/folder.py).
            await run_in_threadpool(self._store.fold_points)
        for bucket in buckets:
            assert bucket.retention_us is not None
            refs = await run_in_threadpool(
                lambda b=bucket: reader().list_series(b.org_id, b.id)  # type: ignore[misc]
            )
            ids = [r.id for r in refs]
            cutoff_us = at_us - bucket.retention_us
            keep = bucket.keep_summaries
            while ids:
                chunks, points = await self._expire_batch(ids, cutoff_us, keep)
                done.chunks += chunks
                done.points += points
                done.transactions += 1
                if chunks < self.batch:
                    break
        if self.history_us:
            await self._purge_history(at_us - self.history_us, done)
        if done.points:  # the space back, a bounded step per transaction
            for _ in range(_RECLAIM_STEPS):
                if not await self._committer.run(lambda tx: tx.reclaim_space(), heavy=True):
                    break
        done.seconds = time.perf_counter() - started
        return done

    async def _purge_history(self, before_us: int, done: RetentionPass) -> None:
        while True:
            events, deliveries = await self._committer.run(
                lambda tx: tx.purge_alert_history(before_us, _HISTORY_ROWS), heavy=True
            )
            done.events += events
            done.deliveries += deliveries
            if events < _HISTORY_ROWS and deliveries < _HISTORY_ROWS:
                return

    async def _expire_batch(self, ids: list[int], cutoff_us: int, keep: bool) -> tuple[int, int]:
        """One transaction's worth: beside the write queue where the store can, else in it."""
        apart = await run_in_threadpool(self._store.expire_apart, ids, cutoff_us, keep, self.batch)
        if apart is not None:
            return apart
        return await self._committer.run(
            lambda tx: tx.expire_points(ids, cutoff_us, keep, self.batch), heavy=True
        )
