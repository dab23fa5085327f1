"""Group commit: one thread owns the write connection and runs every write.

Requests hand it jobs through a bounded queue; it takes all that are waiting (and, briefly,
the clients its last commit answered: see `_loop`), runs them all in one transaction (a job
that fails is isolated by running the group again, each job in its own savepoint: see
`_commit`), commits once, then answers them all. A reply therefore waits for the commit that
holds its work, and many requests share one fsync. A full queue is refused at once with
`Unavailable` (503 + Retry-After): memory stays bounded under overload.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sensorbase.errors import SensorbaseError, Unavailable
from sensorbase.storage.base import Store, WriteTx

T = TypeVar("T")
SWITCH_INTERVAL_S = 0.0005  # see Committer.start
log = logging.getLogger(__name__)


@dataclass(slots=True)
class _Job:
    fn: Callable[[WriteTx], Any]
    points: int
    # An asyncio future (answered on its loop) for `run`, a concurrent one for `run_sync`.
    future: asyncio.Future[Any] | Future[Any] = field(default_factory=Future)
    loop: asyncio.AbstractEventLoop | None = None


class Committer:
    def __init__(
        self, store: Store, *, queue_size: int, max_points: int, max_delay_s: float = 0.025
    ) -> None:
        self.store = store
        self.max_points = max_points
        self.max_delay_s = max_delay_s
        # SimpleQueue is C-level and lock-light; the bound is enforced on its size at submit
        # (approximate by the few jobs racing past the check: memory stays bounded).
        self.queue_size = queue_size
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._wanted = 0  # jobs the committer waits for (see _loop)
        self._enough = threading.Event()
        self.commits = 0
        self.jobs_done = 0
        # Seconds, summed over groups: from a group's first job to its commit's start, and the
        # commit itself (with the wait for other processes' commits). Divided by `commits`:
        # what a write waits for, on average, besides its own request.
        self.gather_s = 0.0
        self.commit_s = 0.0
        self.reruns = 0  # groups run again job by job because one of their jobs failed

    def start(self) -> None:
        # The committer shares the GIL with the event loop. When its wait for more jobs ends,
        # it needs the GIL back, and by default a busy loop keeps it for up to 5 ms: every
        # group then waits until the loop has nothing left to parse, and the loop idles while
        # the group commits. Switching sooner lets parsing and committing overlap (measured
        # with 32 one-point writers: ~30 -> ~18 jobs per commit, ~1.7x requests/s).
        sys.setswitchinterval(min(sys.getswitchinterval(), SWITCH_INTERVAL_S))
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

    def _submit(self, job: _Job) -> None:
        if self._queue.qsize() >= self.queue_size:
            raise Unavailable("too many writes are waiting; retry shortly", retry_after_s=1)
        self._queue.put(job)
        if self._wanted and self._queue.qsize() >= self._wanted and not self._enough.is_set():
            self._enough.set()

    def submit(self, fn: Callable[[WriteTx], T], points: int = 0) -> Future[T]:
        job = _Job(fn, points)
        self._submit(job)
        return job.future  # type: ignore[return-value]

    def run(self, fn: Callable[[WriteTx], T], points: int = 0) -> asyncio.Future[T]:
        """Run `fn` inside the next group commit: the future is settled once that commit is
        durable. (A future, not a coroutine: one frame less to resume on the hot path.)"""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._submit(_Job(fn, points, future, loop))
        return future

    def run_sync(self, fn: Callable[[WriteTx], T]) -> T:
        return self.submit(fn).result()

    def _loop(self) -> None:
        writer = self.store.writer()
        stopping = False
        answered = 0  # jobs of the last commit: their clients are likely to write again
        last_commit_s = 0.0
        while not stopping:
            first = self._queue.get()
            if first is None:
                break
            arrived = time.monotonic()
            jobs, target = [first], max(answered, 1) + self._queue.qsize()
            stopping = self._take(jobs)
            # Gather: what is queued, and -- for up to half the last commit's duration, at most
            # max_delay_s -- the clients the last commit just answered. One commit (one fsync)
            # then serves them all instead of every other commit serving half of them.
            wanted = target - len(jobs)
            wait = min(self.max_delay_s, last_commit_s / 2)
            if not stopping and wanted > 0 and wait > 0:
                # One wake-up when enough have come (see _submit), not one per job: each
                # wake-up would take the GIL from the busy event loop.
                self._wanted = wanted
                self._enough.clear()
                if self._queue.qsize() < wanted:
                    self._enough.wait(wait)
                self._wanted = 0
                stopping = self._take(jobs)
            started = time.monotonic()
            stopping = self._commit(writer, jobs) or stopping
            last_commit_s = time.monotonic() - started
            answered = len(jobs)
            self.gather_s += started - arrived
            self.commit_s += last_commit_s

    def _take(self, jobs: list[_Job]) -> bool:
        """Move what is queued into `jobs`, up to max_points; True if told to stop."""
        points = sum(job.points for job in jobs)
        while points < self.max_points:
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                return False
            if job is None:
                return True
            jobs.append(job)
            points += job.points
        return False

    def _commit(self, writer: Any, jobs: list[_Job]) -> bool:
        """Commit `jobs` and what is queued once the writer is ready; True if told to stop."""
        # Optimistic first: every job in one transaction, without a savepoint each (two
        # statements per job on SQLite, two round trips on PostgreSQL: more than a one-point
        # write's own work). Only if a job fails is the group run again with each job in its
        # own savepoint, so that the failure stays that job's. A job may therefore run twice:
        # its effects must live in the transaction and its return value, never elsewhere.
        stopping = False
        try:
            tx = writer.begin()
            # Jobs that came while the writer lock was awaited (another worker committing)
            # join this group: one commit's pages and fsync serve more points.
            stopping = self._take(jobs)
            try:
                outcomes: list[tuple[_Job, Any, BaseException | None]] = [
                    (job, job.fn(tx), None) for job in jobs
                ]
            except Unavailable:  # the storage's trouble, not a job's: a rerun would meet it
                raise
            except Exception:
                writer.rollback()
                self.reruns += 1
                self._commit_isolated(writer, jobs)
                return stopping
            writer.commit()
        except Exception as exc:
            self._fail(writer, jobs, exc)
            return stopping
        self._done(outcomes)
        return stopping

    def _commit_isolated(self, writer: Any, jobs: list[_Job]) -> None:
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
            self._fail(writer, jobs, exc)
            return
        self._done(outcomes)

    def _done(self, outcomes: list[tuple[_Job, Any, BaseException | None]]) -> None:
        self.commits += 1
        self.jobs_done += len(outcomes)
        _answer(outcomes)

    def _fail(self, writer: Any, jobs: list[_Job], exc: Exception) -> None:
        """The transaction itself failed (storage down, disk full): every job is answered 503."""
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
        _answer([(job, None, failure) for job in jobs])


def _answer(outcomes: list[tuple[_Job, Any, BaseException | None]]) -> None:
    """Settle the jobs' futures: concurrent ones here, asyncio ones with one wake-up per loop
    (not one per job: a group commit of many small writes wakes the event loop once)."""
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[_Job, Any, BaseException | None]]] = {}
    for outcome in outcomes:
        job = outcome[0]
        if job.loop is None:
            _settle([outcome])
        else:
            by_loop.setdefault(job.loop, []).append(outcome)
    for loop, items in by_loop.items():
        try:
            loop.call_soon_threadsafe(_settle, items)
        except RuntimeError:  # the loop closed while its jobs were committing
            log.warning("write answers dropped: their event loop is closed")


def _settle(outcomes: list[tuple[_Job, Any, BaseException | None]]) -> None:
    for job, result, error in outcomes:
        if job.future.done():  # an asyncio future whose request went away
            continue
        if error is None:
            job.future.set_result(result)
        else:
            job.future.set_exception(error)
