"""Group commit: every write runs inside a group commit on the one write connection.

Requests hand it jobs (`run`); it runs every job waiting in one transaction (a job that fails
is isolated by running the group again, each job in its own savepoint: see `_run_group`),
commits once, and answers them all once that commit is durable. A reply therefore waits for
the commit that holds its work, and many requests share one fsync. Past `queue_size` waiting
jobs a write is refused at once with `Unavailable` (503 + Retry-After): memory stays bounded.

Who commits depends on the store's writer (`Writer.inline`):

- inline (SQLite, whose commit is a short local operation): the event loop that submits the
  writes commits them itself, in a callback after the current loop turn, then has the commit
  synced (`Writer.when_durable`: a helper process) and goes on serving. One group at a time
  is committed and awaiting its sync; the writes that come meanwhile form the next group, so
  a group holds what arrived during one sync. No thread is involved: with a committer thread
  the GIL hand-offs of each group cost more than a one-point write's own work (measured in
  one process, 16 one-point writers: 150 us of CPU per write with the thread, 112 us inline).
  Except for a group with a job that says it is `heavy` (a write creating a fleet's series:
  ~140 ms a 5,000-series request): that group runs on a thread of its own, so that the loop
  goes on answering meanwhile (one-series reads waited 280-360 ms behind such groups).
- threaded (PostgreSQL, whose commit is several network round trips): one thread owns the
  connection, takes all jobs waiting (and, briefly, the clients its last commit answered:
  see `_loop`), commits them and answers.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from typing import Any, TypeVar, cast

from sensorbase.errors import Contended, SensorbaseError, Unavailable
from sensorbase.storage.base import InlineWriter, Store, Writer, WriteTx

T = TypeVar("T")
SWITCH_INTERVAL_S = 0.0005  # see Committer.start
# Times a group that lost to another node's transaction (`Contended`) is run again before its
# writes are answered 503. The winner holds the locks the group waited on until it commits, so
# the rerun waits for that commit rather than deadlocking again; more than one rerun is needed
# only when a third transaction comes between.
CONTENDED_RERUNS = 5
log = logging.getLogger(__name__)
_loops: dict[int, asyncio.AbstractEventLoop] = {}  # by thread: see running_loop


def running_loop() -> asyncio.AbstractEventLoop:
    """`asyncio.get_running_loop()`, without its system call: on CPython 3.11 each call makes a
    getpid() to notice a fork (strace of the server under wrk: 1.4 a one-point write). The loop
    last found running on this thread, if it still runs, is the running one: a thread runs
    one loop at a time. (Server workers are spawned, not forked.)"""
    thread = threading.get_ident()
    loop = _loops.get(thread)
    if loop is None or not loop.is_running():
        loop = _loops[thread] = asyncio.get_running_loop()
    return loop


@dataclass(slots=True)
class _Job:
    fn: Callable[[WriteTx], Any]
    points: int
    # An asyncio future (answered on its loop) for `run`, a concurrent one for `submit`.
    future: asyncio.Future[Any] | Future[Any] = field(default_factory=Future)
    loop: asyncio.AbstractEventLoop | None = None
    heavy: bool = False  # inline: its group runs off the event loop (see `run`)


Outcome = tuple[_Job, Any, BaseException | None]  # the job, its result, or its error


class Committer:
    def __init__(
        self, store: Store, *, queue_size: int, max_points: int, max_delay_s: float = 0.025
    ) -> None:
        self.store = store
        self.max_points = max_points
        self.max_delay_s = max_delay_s
        self.queue_size = queue_size
        self.inline = False  # known at start(), from the store's writer
        # Inline: the jobs waiting for the next group, and the group awaiting its sync. The
        # lock keeps `submit` from other threads off the writer while the loop uses it.
        self._writer: InlineWriter | None = None
        self._pending: list[_Job] = []
        self._pending_since = 0.0
        self._scheduled = False
        self._syncing: list[Outcome] | None = None
        self._locking = False  # a thread waits for the writer lock (`_wait_for_lock`)
        self._off_loop: ThreadPoolExecutor | None = None  # runs heavy groups (`_run_off_loop`)
        self._in_flight: Future[tuple[list[Outcome], bool]] | None = None  # such a group
        self._lock = threading.Lock()
        # Threaded: SimpleQueue is C-level and lock-light; the bound is enforced on its size at
        # submit (approximate by the few jobs racing past the check: memory stays bounded).
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._wanted = 0  # jobs the committer thread waits for (see _loop)
        self._enough = threading.Event()
        self._stop_seen = False
        self.commits = 0
        self.jobs_done = 0
        # Seconds, summed over groups: from a group's first job to its commit's start, and the
        # commit itself (with the wait for other processes' commits and for the sync). Divided
        # by `commits`: what a write waits for, on average, besides its own request.
        self.gather_s = 0.0
        self.commit_s = 0.0
        self.reruns = 0  # groups run again job by job because one of their jobs failed
        self.contended = 0  # groups run again because they lost to another transaction

    def start(self) -> None:
        writer = self.store.writer()
        if writer.inline:
            self.inline, self._writer = True, cast(InlineWriter, writer)
            return
        # The committer thread shares the GIL with the event loop. When its wait for more
        # jobs ends, it needs the GIL back, and by default a busy loop keeps it for up to 5 ms:
        # every group then waits until the loop has nothing left to parse, and the loop idles
        # while the group commits. Switching sooner lets parsing and committing overlap
        # (measured with 32 one-point writers: ~30 -> ~18 jobs per commit, ~1.7x requests/s).
        sys.setswitchinterval(min(sys.getswitchinterval(), SWITCH_INTERVAL_S))
        self._thread = threading.Thread(
            target=self._loop, args=(writer,), name="sensorbase-committer", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        if self.inline:
            self._finish_inline()
            if self._off_loop is not None:
                self._off_loop.shutdown()
                self._off_loop = None
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._thread = None

    @property
    def queued(self) -> int:
        return len(self._pending) if self.inline else self._queue.qsize()

    def run(
        self, fn: Callable[[WriteTx], T], points: int = 0, heavy: bool = False
    ) -> asyncio.Future[T]:
        """Run `fn` inside the next group commit: the future is settled once that commit is
        durable. (A future, not a coroutine: one frame less to resume on the hot path.)
        `heavy`: `fn` takes long (tens of ms and more), so that its group runs off the event
        loop (inline; the threaded committer runs every group off it)."""
        loop = running_loop()
        future: asyncio.Future[T] = loop.create_future()
        job = _Job(fn, points, future, loop, heavy)
        if not self.inline:
            self._submit(job)
            return future
        if len(self._pending) >= self.queue_size:
            raise _full()
        if not self._pending:
            self._pending_since = time.monotonic()
        self._pending.append(job)
        if not self._scheduled and self._syncing is None:
            self._scheduled = True
            loop.call_soon(self._commit_pending)
        return future

    def submit(self, fn: Callable[[WriteTx], T], points: int = 0) -> Future[T]:
        """Run `fn` in a group commit from any thread (inline: at once, on this thread)."""
        job = _Job(fn, points)
        if not self.inline:
            self._submit(job)
        else:
            assert self._writer is not None, "start() the committer first"
            with self._lock:
                started = time.monotonic()
                outcomes, _ = self._run_group(self._writer, [job], durable=True)
                self.commit_s += time.monotonic() - started
            self._done(outcomes)
        return job.future  # type: ignore[return-value]

    def run_sync(self, fn: Callable[[WriteTx], T]) -> T:
        return self.submit(fn).result()

    # -- inline ----------------------------------------------------------------------------

    def _commit_pending(self) -> None:
        """Commit what is waiting (up to max_points), then have it synced; the next group
        waits for that sync."""
        self._scheduled = False
        writer = self._writer
        if self._syncing is not None or self._locking or not self._pending or writer is None:
            return
        if not writer.try_lock():
            self._wait_for_lock(writer)
            return
        jobs: list[_Job] = []
        points = 0
        for job in self._pending:
            if jobs and points + job.points > self.max_points:
                break
            jobs.append(job)
            points += job.points
        del self._pending[: len(jobs)]
        started = time.monotonic()
        self.gather_s += started - self._pending_since
        self._pending_since = started
        if any(job.heavy for job in jobs):
            self._run_off_loop(writer, jobs, started)
            return
        with self._lock:
            outcomes, committed = self._run_group(writer, jobs, durable=False)
        self._ran(writer, started, outcomes, committed)

    def _ran(
        self, writer: InlineWriter, started: float, outcomes: list[Outcome], committed: bool
    ) -> None:
        """A group has run (on the loop): have it synced, or answer it if it failed."""
        if not committed:
            self._syncing = None
            self._done(outcomes)
            self._schedule()
            return
        self._syncing = outcomes
        writer.when_durable(partial(self._synced, outcomes, started))

    def _run_off_loop(self, writer: InlineWriter, jobs: list[_Job], started: float) -> None:
        """Run a heavy group on a thread of its own; the loop goes on answering. The next
        group waits for it as for a sync (`_syncing`), and stop() waits for it too."""
        self._syncing = []

        def run() -> tuple[list[Outcome], bool]:
            with self._lock:
                ran = self._run_group(writer, jobs, durable=False)
                if ran[1]:  # for stop(), should it come first: it syncs and answers them
                    self._syncing = ran[0]
                return ran

        def ran(done: asyncio.Future[tuple[list[Outcome], bool]]) -> None:
            self._in_flight = None
            outcomes: list[Outcome]
            error = done.exception()
            if error is not None:  # (the executor shut down under it)
                failure = Unavailable("the write could not be committed; retry", retry_after_s=1)
                outcomes, committed = [(job, None, failure) for job in jobs], False
            else:
                outcomes, committed = done.result()
                if committed and self._syncing is not outcomes:  # stop() answered them
                    return
            self._ran(writer, started, outcomes, committed)

        if self._off_loop is None:
            self._off_loop = ThreadPoolExecutor(1, thread_name_prefix="sensorbase-heavy-writes")
        self._in_flight = self._off_loop.submit(run)
        asyncio.wrap_future(self._in_flight, loop=running_loop()).add_done_callback(ran)

    def _wait_for_lock(self, writer: InlineWriter) -> None:
        """Another process holds the writer lock (a fold's commit, another worker's group):
        wait for it on a thread, so that the loop goes on answering reads meanwhile. Waiting
        on the loop stopped every request of the process, reads too, for as long as the
        holder kept it (150 ms seen during a fold of a 1,000-series ingest)."""
        self._locking = True

        def wait() -> None:
            with self._lock:  # (`submit` from another thread uses the writer under it)
                writer.wait_lock()

        def locked(waited: asyncio.Future[None]) -> None:
            self._locking = False
            error = waited.exception()
            if error is not None:  # the store closed under it, or the lock file failed
                log.warning("the writer lock could not be taken: %s", error)
                failure = Unavailable("the write could not be committed; retry", retry_after_s=1)
                jobs, self._pending = self._pending, []
                self._done([(job, None, failure) for job in jobs])
            elif self._pending and self._syncing is None:
                self._commit_pending()
            else:  # stopped meanwhile: let it go
                writer.unlock()

        running_loop().run_in_executor(None, wait).add_done_callback(locked)

    def _synced(self, outcomes: list[Outcome], started: float, error: OSError | None) -> None:
        if self._syncing is not outcomes:  # stop() has answered them
            return
        self._syncing = None
        self.commit_s += time.monotonic() - started
        if error is not None:
            log.warning("group commit could not be synced: %s", error)
            failure = Unavailable("the write could not be made durable; retry", retry_after_s=1)
            outcomes = [(job, None, failure if e is None else e) for job, _, e in outcomes]
        self._done(outcomes)
        self._schedule()

    def _schedule(self) -> None:
        if self._pending and not self._scheduled:
            self._scheduled = True
            running_loop().call_soon(self._commit_pending)

    def _finish_inline(self) -> None:
        """At stop: commit what waits, durably (which also syncs the group awaiting its sync),
        and answer everything."""
        if self._in_flight is not None:  # a heavy group, running: it is answered here
            self._in_flight.result()
        writer = self._writer
        if writer is None or (self._syncing is None and not self._pending):
            return
        with self._lock:
            syncing, self._syncing = self._syncing or [], None
            pending, self._pending = self._pending, []
            outcomes, committed = self._run_group(writer, pending, durable=True)
        if not committed:
            failure = Unavailable("the write could not be made durable; retry", retry_after_s=1)
            syncing = [(job, None, failure if e is None else e) for job, _, e in syncing]
        self._done(syncing + outcomes)

    # -- threaded --------------------------------------------------------------------------

    def _submit(self, job: _Job) -> None:
        if self._queue.qsize() >= self.queue_size:
            raise _full()
        self._queue.put(job)
        if self._wanted and self._queue.qsize() >= self._wanted and not self._enough.is_set():
            self._enough.set()

    def _loop(self, writer: Writer) -> None:
        answered = 0  # jobs of the last commit: their clients are likely to write again
        last_commit_s = 0.0
        while not self._stop_seen:
            first = self._queue.get()
            if first is None:
                break
            arrived = time.monotonic()
            jobs, target = [first], max(answered, 1) + self._queue.qsize()
            self._take(jobs)
            # Gather: what is queued, and -- for up to half the last commit's duration, at most
            # max_delay_s -- the clients the last commit just answered. One commit (one fsync)
            # then serves them all instead of every other commit serving half of them.
            wanted = target - len(jobs)
            wait = min(self.max_delay_s, last_commit_s / 2)
            if not self._stop_seen and wanted > 0 and wait > 0:
                # One wake-up when enough have come (see _submit), not one per job: each
                # wake-up would take the GIL from the busy event loop.
                self._wanted = wanted
                self._enough.clear()
                if self._queue.qsize() < wanted:
                    self._enough.wait(wait)
                self._wanted = 0
                self._take(jobs)
            started = time.monotonic()
            outcomes, _ = self._run_group(writer, jobs, durable=True)
            last_commit_s = time.monotonic() - started
            answered = len(jobs)
            self.gather_s += started - arrived
            self.commit_s += last_commit_s
            self._done(outcomes)

    def _take(self, jobs: list[_Job]) -> None:
        """Move what is queued into `jobs`, up to max_points (noting a request to stop)."""
        points = sum(job.points for job in jobs)
        while points < self.max_points:
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                return
            if job is None:
                self._stop_seen = True
                return
            jobs.append(job)
            points += job.points

    # -- shared ----------------------------------------------------------------------------

    def _run_group(
        self, writer: Writer, jobs: list[_Job], *, durable: bool
    ) -> tuple[list[Outcome], bool]:
        """Run `jobs` in one transaction and commit it; the outcomes, and whether it committed
        (if not, every outcome is the storage's failure). A group that lost to a concurrent
        transaction runs again: its jobs' effects live in the transaction (see `_attempt`)."""
        for rerun in range(CONTENDED_RERUNS + 1):
            try:
                return self._attempt(writer, jobs, durable), True
            except Contended as exc:
                if rerun == CONTENDED_RERUNS:
                    return self._failed(writer, jobs, exc), False
                log.info("group commit lost to a concurrent transaction; running it again")
                writer.rollback()
                self.contended += 1
            except Exception as exc:
                return self._failed(writer, jobs, exc), False
        raise AssertionError("unreachable")

    def _attempt(self, writer: Writer, jobs: list[_Job], durable: bool) -> list[Outcome]:
        # Optimistic first: every job in one transaction, without a savepoint each (two
        # statements per job on SQLite, two round trips on PostgreSQL: more than a one-point
        # write's own work). Only if a job fails is the group run again with each job in its
        # own savepoint, so that the failure stays that job's. A job may therefore run twice
        # or more: its effects must live in the transaction and its return value, never
        # elsewhere.
        tx = writer.begin()
        try:
            outcomes: list[Outcome] = [(job, job.fn(tx), None) for job in jobs]
        except Unavailable:  # the storage's trouble, not a job's: a rerun would meet it
            raise
        except Exception:
            writer.rollback()
            self.reruns += 1
            return self._isolated(writer, jobs, durable)
        writer.commit(durable)
        return outcomes

    def _isolated(self, writer: Writer, jobs: list[_Job], durable: bool) -> list[Outcome]:
        outcomes: list[Outcome] = []
        tx = writer.begin()
        for job in jobs:
            try:
                with tx.savepoint():
                    outcomes.append((job, job.fn(tx), None))
            except Contended:  # the whole group's to run again, not this job's to fail
                raise
            except SensorbaseError as exc:
                outcomes.append((job, None, exc))
            except Exception as exc:  # a bug in one job must not take the others down
                log.exception("write job failed")
                outcomes.append((job, None, exc))
        writer.commit(durable)
        return outcomes

    def _failed(self, writer: Writer, jobs: list[_Job], exc: Exception) -> list[Outcome]:
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
        return [(job, None, failure) for job in jobs]

    def _done(self, outcomes: list[Outcome]) -> None:
        if outcomes:
            self.commits += 1
            self.jobs_done += len(outcomes)
        _answer(outcomes)


def _full() -> Unavailable:
    return Unavailable("too many writes are waiting; retry shortly", retry_after_s=1)


def _answer(outcomes: list[Outcome]) -> None:
    """Settle the jobs' futures: concurrent ones and those of the running loop here, those of
    another loop with one wake-up per loop (a group of many small writes wakes it once)."""
    try:
        running: asyncio.AbstractEventLoop | None = running_loop()
    except RuntimeError:
        running = None
    by_loop: dict[asyncio.AbstractEventLoop, list[Outcome]] = {}
    for outcome in outcomes:
        job = outcome[0]
        if job.loop is None:
            _settle([outcome])
        else:
            by_loop.setdefault(job.loop, []).append(outcome)
    for loop, items in by_loop.items():
        if loop is running:
            _settle(items)
            continue
        try:
            loop.call_soon_threadsafe(_settle, items)
        except RuntimeError:  # the loop closed while its jobs were committing
            log.warning("write answers dropped: their event loop is closed")


def _settle(outcomes: list[Outcome]) -> None:
    for job, result, error in outcomes:
        if job.future.done():  # an asyncio future whose request went away
            continue
        if error is None:
            job.future.set_result(result)
        else:
            job.future.set_exception(error)
