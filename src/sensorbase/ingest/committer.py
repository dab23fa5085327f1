"""Group commit: one thread owns the write connection and runs every write.

Requests hand it jobs through a bounded queue; it takes all that are waiting, runs each in its
own savepoint of one transaction, commits once, then answers them all. A reply therefore waits
for the commit that holds its work, and many requests share one fsync. A full queue is refused
at once with `Unavailable` (503 + Retry-After): memory stays bounded under overload.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sensorbase.errors import SensorbaseError, Unavailable
from sensorbase.storage.base import Store, WriteTx

T = TypeVar("T")
log = logging.getLogger(__name__)


@dataclass(slots=True)
class _Job:
    fn: Callable[[WriteTx], Any]
    points: int
    future: Future[Any] = field(default_factory=Future)


class Committer:
    def __init__(self, store: Store, *, queue_size: int, max_points: int) -> None:
        self.store = store
        self.max_points = max_points
        self._queue: queue.Queue[_Job | None] = queue.Queue(maxsize=queue_size)
        self._thread: threading.Thread | None = None
        self.commits = 0
        self.jobs_done = 0

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="sensorbase-committer", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._thread = None

    @property
    def queued(self) -> int:
        return self._queue.qsize()

    def submit(self, fn: Callable[[WriteTx], T], points: int = 0) -> Future[T]:
        job = _Job(fn, points)
        try:
            self._queue.put_nowait(job)
        except queue.Full:
            raise Unavailable(
                "too many writes are waiting; retry shortly", retry_after_s=1
            ) from None
        return job.future

    async def run(self, fn: Callable[[WriteTx], T], points: int = 0) -> T:
        """Run `fn` inside the next group commit; return once that commit is durable."""
        return await asyncio.wrap_future(self.submit(fn, points))

    def run_sync(self, fn: Callable[[WriteTx], T]) -> T:
        return self.submit(fn).result()

    def _loop(self) -> None:
        writer = self.store.writer()
        stopping = False
        while not stopping:
            first = self._queue.get()
            if first is None:
                break
            jobs, points = [first], first.points
            while points < self.max_points:
                try:
                    job = self._queue.get_nowait()
                except queue.Empty:
                    break
                if job is None:
                    stopping = True
                    break
                jobs.append(job)
                points += job.points
            self._commit(writer, jobs)

    def _commit(self, writer: Any, jobs: list[_Job]) -> None:
        outcomes: list[tuple[_Job, Any, BaseException | None]] = []
        try:
            tx = writer.begin()
            for job in jobs:
                try:
                    with tx.savepoint():
                        outcomes.append((job, job.fn(tx), None))
                except SensorbaseError as exc:
                    outcomes.append((job, None, exc))
                except Exception as exc:  # a bug in one job must not take the others down
                    log.exception("write job failed")
                    outcomes.append((job, None, exc))
            writer.commit()
        except Exception as exc:
            log.warning("group commit failed: %s", exc)
            try:
                writer.rollback()
            except Exception:
                log.exception("rollback failed")
            failure = (
                exc
                if isinstance(exc, Unavailable)
                else Unavailable("the write could not be committed; retry", retry_after_s=1)
            )
            for job in jobs:
                job.future.set_exception(failure)
            return
        self.commits += 1
        self.jobs_done += len(jobs)
        for job, result, error in outcomes:
            if error is None:
                job.future.set_result(result)
            else:
                job.future.set_exception(error)
