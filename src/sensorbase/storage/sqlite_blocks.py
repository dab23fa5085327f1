"""Hourly summaries of old points, so that min/max/sum/count over a long range reads a few
hundred summary rows instead of every point.

`point_blocks` holds, per series and hour ("block", UTC, from the epoch), the min, max, sum
and count of the points in that hour. It is a cache, exact whenever present:

- A summary is made only inside a write transaction, from the points as that transaction
  sees them (`Summarizer`, a thread of each process with its own connection, taking the
  writer lock like a group commit), and only for hours that ended more than `SEAL_US` ago,
  which live data no longer touches.
- Every write to an hour that ended more than `INVALIDATE_US` ago deletes that hour's summary
  in its own transaction (`invalidate`), and deleting a series deletes its summaries; writes
  to recent hours skip the delete (no summary of them can exist: the margin between the two
  ages absorbs a clock step of up to an hour), and so do all writes while no summary has
  ever been made (`Flag`).
- A reader combines the summaries and the points of the hours without one in one read
  transaction, so it sees both at one moment (`summarized`). Hours it wanted and did not
  find are asked of the summarizer, for the next query.

Measured (benchmarks/bench.py): min/max/avg/count over 1M one-second points (278 hours)
~70-100 ms by scanning on 2 cores, 2.6 ms from summaries.
"""

from __future__ import annotations

import fcntl
import logging
import mmap
import os
import queue
import sqlite3
import threading
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

from sensorbase.times import now_us

BLOCK_US = 3_600_000_000  # one hour
SEAL_US = 2 * BLOCK_US  # an hour this long ago may be summarized...
INVALIDATE_US = BLOCK_US  # ...and a write to an hour this long ago deletes its summary
MIN_BLOCKS = 8  # a range of fewer whole hours is simply scanned
MIN_SPAN_US = MIN_BLOCKS * BLOCK_US
MAX_GAPS = 64  # more stretches without a summary than this: scanned instead
CHUNK_BLOCKS = 24  # hours summarized per transaction (the writer lock is held meanwhile)
_CHUNK = 400  # ids per IN list (two lists per statement, within SQLite's limit)

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS point_blocks (
  series_id INTEGER NOT NULL,
  block INTEGER NOT NULL,
  min REAL, max REAL, sum REAL, count INTEGER NOT NULL,
  PRIMARY KEY (series_id, block)
) WITHOUT ROWID
"""


class Flag:
    """One byte shared by every process on the database (the first of the writer-lock file,
    memory-mapped), set before the first summary is made and never cleared. A write reads it
    without a system call: while it is clear, no summary exists, and the write has nothing to
    delete. (A committer that lets go of the GIL for one more statement can wait milliseconds
    to get it back from an event loop decoding a large body: measured -7% on batch ingest.)

    The summarizer sets it before it takes the writer lock; a write reads it holding that lock.
    A write that read it clear therefore holds the lock before any summary is made, and a
    summary made after that write's commit sees its points."""

    def __init__(self, lock_fd: int) -> None:
        if os.fstat(lock_fd).st_size < 1:
            os.ftruncate(lock_fd, 1)
        self._map = mmap.mmap(lock_fd, 1)

    def __bool__(self) -> bool:
        return self._map[0] == 1

    def set(self) -> None:
        self._map[0] = 1

    def close(self) -> None:
        self._map.close()


def invalidate(
    conn: sqlite3.Connection, series_id: npt.NDArray[np.int64], time_us: npt.NDArray[np.int64]
) -> None:
    """Delete the summaries of the old hours these points fall in. Series and hours are
    crossed (`series IN (...) AND block IN (...)`, which SQLite answers by primary key): that
    may delete a few more summaries than needed, never fewer."""
    block = time_us // BLOCK_US
    old = (block + 1) * BLOCK_US <= now_us() - INVALIDATE_US
    if not old.any():
        return
    series = np.unique(series_id[old]).tolist()
    blocks = np.unique(block[old]).tolist()
    for b in range(0, len(blocks), _CHUNK):
        some_blocks = blocks[b : b + _CHUNK]
        for s in range(0, len(series), _CHUNK):
            some_series = series[s : s + _CHUNK]
            conn.execute(
                f"DELETE FROM point_blocks WHERE series_id IN ({','.join('?' * len(some_series))})"
                f" AND block IN ({','.join('?' * len(some_blocks))})",
                [*some_series, *some_blocks],
            )


Part = tuple[Any, ...]  # min, max, sum, count


def summarized(
    conn: sqlite3.Connection,
    series_id: int,
    lo: int,
    hi: int,
    scan: Callable[[int, int], Part],
    want: Callable[[int, int, int], None] | None,
) -> list[Part] | None:
    """The parts (min, max, sum, count) that together cover exactly the points of
    [lo, hi): summaries of whole hours, and `scan` of the stretches between them. None when
    the range has too few whole hours or no summary yet (then the caller scans; hours that
    could have a summary are asked of `want`)."""
    first = max(-(-lo // BLOCK_US), 0)  # the first whole hour (summaries start at the epoch)
    end = hi // BLOCK_US  # past the last whole hour
    if end - first < MIN_BLOCKS or conn.in_transaction:
        return None
    conn.execute("BEGIN")  # one snapshot for the summaries and the points between them
    try:
        rows = conn.execute(
            "SELECT block, min, max, sum, count FROM point_blocks "
            "WHERE series_id = ? AND block >= ? AND block < ? ORDER BY block",
            (series_id, first, end),
        ).fetchall()
        gaps: list[tuple[int, int]] = []
        at = lo
        for row in rows:
            start = row[0] * BLOCK_US
            if start > at:
                gaps.append((at, start))
            at = start + BLOCK_US
        if at < hi:
            gaps.append((at, hi))
        parts: list[Part] | None = None
        if rows and len(gaps) <= MAX_GAPS:
            parts = [tuple(row[1:]) for row in rows] + [scan(a, b) for a, b in gaps]
    finally:
        conn.execute("COMMIT")
    if want is not None:
        sealed = min(end, (now_us() - SEAL_US) // BLOCK_US)
        have = {row[0] for row in rows}
        missing = [b for b in range(first, sealed) if b not in have] if sealed > first else []
        if missing:
            want(series_id, missing[0], missing[-1] + 1)
    return parts


class Summarizer:
    """Makes the summaries readers asked for, on its own thread and connection, a day of
    hours per transaction, taking the writer lock (its own descriptor of the lock file, so
    that it also excludes this process's committer)."""

    def __init__(
        self, connect: Callable[[], sqlite3.Connection], lock_path: str, flag: Flag
    ) -> None:
        self._connect = connect
        self._flag = flag
        self._lock_fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        self._wanted: queue.SimpleQueue[tuple[int, int, int] | None] = queue.SimpleQueue()
        self._asked: set[tuple[int, int, int]] = set()
        self._guard = threading.Lock()
        self._thread = threading.Thread(target=self._loop, name="sensorbase-summaries", daemon=True)
        self._thread.start()

    def want(self, series_id: int, first: int, end: int) -> None:
        """Ask for the summaries of hours [first, end) of a series (once while pending)."""
        key = (series_id, first, end)
        with self._guard:
            if key in self._asked:
                return
            self._asked.add(key)
        self._wanted.put(key)

    def idle(self) -> bool:
        with self._guard:
            return not self._asked

    def stop(self) -> None:
        self._wanted.put(None)
        self._thread.join()
        os.close(self._lock_fd)

    def _loop(self) -> None:
        conn: sqlite3.Connection | None = None  # opened when first needed
        try:
            while (key := self._wanted.get()) is not None:
                try:
                    if conn is None:
                        conn = self._connect()
                        conn.execute("PRAGMA synchronous = NORMAL")  # a cache: lost, made again
                    self._summarize(conn, *key)
                except sqlite3.Error as exc:  # asked again by the next query that needs it
                    log.warning("summarizing series %s failed: %s", key[0], exc)
                finally:
                    with self._guard:
                        self._asked.discard(key)
        finally:
            if conn is not None:
                conn.close()

    def _summarize(self, conn: sqlite3.Connection, series_id: int, first: int, end: int) -> None:
        end = min(end, (now_us() - SEAL_US) // BLOCK_US)  # sealed hours only, even now
        self._flag.set()  # before the lock: see Flag
        for start in range(first, end, CHUNK_BLOCKS):
            stop = min(start + CHUNK_BLOCKS, end)
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    conn.execute(
                        "INSERT OR REPLACE INTO point_blocks "
                        "SELECT series_id, time_us / ?, min(value), max(value), sum(value), "
                        "count(*) FROM points WHERE series_id = ? AND time_us >= ? "
                        "AND time_us < ? GROUP BY time_us / ?",
                        (BLOCK_US, series_id, start * BLOCK_US, stop * BLOCK_US, BLOCK_US),
                    )
                    conn.execute("COMMIT")
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
            finally:
                fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
