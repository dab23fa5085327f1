"""Folding the write log into chunks (fold.py) in a process of its own.

A fold is seconds of CPU now and then (decoding, merging and compressing each series' new
points): on a thread of a server process it would hold the GIL in long stretches and starve
that process's event loop, which runs every request and every group commit. So each server
process starts, once its writes could make a fold due, a helper process (`main`, this module
run with `-m`) that looks at the log every `EVERY_S` and folds it when due: the new chunks
are planned from read snapshots, and only writing them takes the writer lock, in parts of a
few thousand series (fold.FOLD_PART_SERIES). After a fold, and once writes pause, it merges
small chunks (merges.py), a few bounded steps a turn. Of several server processes' helpers
only one folds at a time (a lock of its own beside the database), and a helper ends when its
server process does (the end of its input).
"""

from __future__ import annotations

import fcntl
import logging
import os
import select
import sqlite3
import sys
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TypeVar

from sensorbase.storage.helper_process import HelperProcess
from sensorbase.storage.log_quiet import QuietLog
from sensorbase.storage.sqlite import fold, merges

EVERY_S = 0.5
QUIET_S = 2.0  # a log without new rows this long (at least: log_quiet.py) is folded, due or not
MERGE_STEPS = 4  # steps of merging small chunks a turn (each up to chunk_merges.MERGE_POINTS)
CACHE_KIB = 65536  # the helper's page cache (as the server's connections'), in KiB
T = TypeVar("T")
log = logging.getLogger(__name__)


class Folder:
    """A server process's side: told what its commits log (`logged`), it pokes the helper
    (starting it the first time) each time they may have brought a fold nearer by a
    sixteenth of what makes one due."""

    def __init__(self, path: Path) -> None:
        self.path = path
        due = (fold.FOLD_POINTS, fold.FOLD_ROWS)
        self._helper = HelperProcess(
            __name__, str(path), *map(str, due), alone=f"{path}-folder-helper"
        )
        self._rows = self._points = 0  # logged since the last poke

    def logged(self, points: int) -> None:
        self._rows += 1
        self._points += points
        if self._rows * 16 >= fold.FOLD_ROWS or self._points * 16 >= fold.FOLD_POINTS:
            self._rows = self._points = 0
            self.poke()

    def poke(self) -> None:
        self._helper.poke()

    def close(self) -> None:
        self._helper.close()


def fold_once(
    conn: sqlite3.Connection,
    locked: Callable[[Callable[[], bool]], bool],
    due: tuple[int, int] | None = None,
    settled: bool = False,
) -> int:
    """Fold the log if it is due (it holds `due` = (points, rows)), or at once without `due`:
    read it, then part by part plan from a read snapshot and apply holding the writer lock
    (`locked`). `settled`: writes have paused (fold.plan_part). The points folded (0 if
    another fold or a delete came first)."""
    if due is not None and not fold.needs_fold(conn, *due):
        return 0
    conn.execute("BEGIN")
    try:
        log = fold.read_log(conn)
    finally:
        conn.execute("COMMIT")
    if log is None:
        return 0

    generation = log.generation
    for first in range(0, log.series_count, fold.FOLD_PART_SERIES):
        conn.execute("BEGIN")
        try:
            part = fold.plan_part(conn, log, first, first + fold.FOLD_PART_SERIES, settled)
        finally:
            conn.execute("COMMIT")
        part.generation = generation  # what the previous part left (or the log was read under)
        if not locked(partial(fold.apply_alone, conn, part)):
            return 0
        generation = part.generation
    return log.points


def writer_locked(path: Path) -> Callable[[Callable[[], T]], T]:
    """Run a function holding the database's writer lock (see writer.SQLiteWriter), through a
    descriptor of its own (so that it also excludes this process's writer)."""

    def locked(fn: Callable[[], T]) -> T:
        fd = os.open(f"{path}-writer", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            return fn()
        finally:
            os.close(fd)  # which lets go of the lock

    return locked


def connect(path: Path) -> sqlite3.Connection:
    """The helper's connection to the database `path`."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA busy_timeout = 5000")
    conn.execute("PRAGMA synchronous = NORMAL")  # a fold lost in a crash leaves the log as is
    # SQLite as Python is built here (and Debian's) overwrites deleted content with zeros
    # (SECURE_DELETE): the log rows a fold deletes, ~24 bytes a point in overflow pages, were
    # written again as zeros, to the WAL and then by the server's checkpointer into the file
    # (a 3M-point fold in process wrote 38,487 WAL pages instead of 20,744, and took 0.135
    # instead of 0.089 us a point). FAST zeroes only within pages written anyway: the folded
    # rows' pages go to the free list as they are (their points live on in chunks), are reused
    # by the next log rows and given back to the file system at a clean stop (store.py).
    conn.execute("PRAGMA secure_delete = FAST")
    # The chunks a fold rewrites (a tail per series: ~100,000 pages at 100,000 series) are
    # looked up while planning and written while applying: with SQLite's default 2 MiB
    # cache each was read from the file twice more.
    conn.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
    return conn


def main() -> None:
    """The helper: fold the log of the database argv[1] whenever it holds argv[2] points or
    argv[3] rows."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s:     %(message)s")
    path = Path(sys.argv[1])
    due = (int(sys.argv[2]), int(sys.argv[3]))
    conn = connect(path)
    locked = writer_locked(path)
    turn = os.open(f"{path}-folder", os.O_RDWR | os.O_CREAT, 0o600)
    log_quiet = QuietLog(QUIET_S)
    merged_at: str | None = None  # the chunks' generation after the last settled merge
    while True:
        ready, _, _ = select.select([0], [], [], EVERY_S)
        if ready and not os.read(0, 4096):
            return  # the server process is gone
        try:
            fcntl.flock(turn, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:  # another server process's helper is folding
            continue
        try:
            # Due, or the writes paused: then whatever the log holds (reads of chunks alone
            # are the fastest, and the log's points the least compact).
            quiet = log_quiet.quiet(conn.execute("SELECT max(id) FROM point_log").fetchone()[0])
            folded = fold_once(
                conn,
                locked,
                (1, 1) if quiet else (fold.due_points(conn, due[0]), due[1]),
                settled=quiet,
            )
            if quiet and fold.generation(conn) != merged_at:  # (else nothing changed since)
                merges.merge(conn, locked, settled=True, most_steps=MERGE_STEPS)
                merged_at = fold.generation(conn)
            elif folded:
                merges.merge(conn, locked, settled=False, most_steps=MERGE_STEPS)
        except sqlite3.Error as exc:  # looked at again at the next turn
            log.warning("folding the write log failed: %s", exc)
        finally:
            fcntl.flock(turn, fcntl.LOCK_UN)


if __name__ == "__main__":
    main()
