"""The embedded store's write side: one transaction at a time under a lock shared by every
process on the database, committed by the event loop itself (storage/write_queue.py)."""

from __future__ import annotations

import asyncio
import fcntl
import os
import sqlite3
from collections.abc import Callable

from sensorbase.errors import Unavailable
from sensorbase.storage.log_view import LogCache
from sensorbase.storage.sqlite.errors import driver_errors
from sensorbase.storage.sqlite.folder import Folder
from sensorbase.storage.sqlite.tx import SQLiteWriteTx
from sensorbase.storage.sqlite.wal_sync import SyncDone, WalSyncer


class SQLiteWriter:
    """The write side of one process. With several processes on one database (uvicorn
    --workers N), their group commits take turns through an exclusive lock on a file beside
    the database: a waiting process is woken the moment the lock is free, where SQLite's own
    busy handler would sleep 1, 2, 5, 10... ms between attempts.

    A commit is a short local operation (the WAL's sync aside), so the event loop runs it
    itself (`inline`, see storage/write_queue.py) and has the WAL synced by a helper process
    (`when_durable`, wal_sync.py) while it goes on serving."""

    inline = True

    def __init__(
        self,
        conn: sqlite3.Connection,
        after_commit: Callable[[], None],
        lock_fd: int,
        wal: WalSync | None,
        syncer: WalSyncer | None = None,
        folder: Folder | None = None,
        log: LogCache | None = None,
    ) -> None:
        self.conn = conn
        self._after_commit = after_commit
        self._lock_fd = lock_fd
        self._wal = wal
        self._syncer = syncer
        self._folder = folder
        self._log = log
        self._locked = False
        self._tx: SQLiteWriteTx | None = None

    def try_lock(self) -> bool:
        if not self._locked:
            try:
                fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False
            self._locked = True
        return True

    def wait_lock(self) -> None:
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
        self._locked = True

    def unlock(self) -> None:
        self._unlock()

    def begin(self) -> SQLiteWriteTx:
        if not self._locked:  # (taken already by try_lock or wait_lock)
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
            self._locked = True
        try:
            with driver_errors():
                self.conn.execute("BEGIN IMMEDIATE")
        except BaseException:
            self._unlock()
            raise
        self._tx = SQLiteWriteTx(self.conn)
        return self._tx

    def commit(self, durable: bool = True) -> None:
        """Commit; with `durable`, return once the commit survives power loss (at
        durability=full), else leave that to `when_durable`."""
        logged = None
        with driver_errors():
            if self._tx is not None:
                logged = self._tx.flush()
                self._tx = None
            self.conn.execute("COMMIT")
        if logged is not None:
            if self._folder is not None:
                self._folder.logged(logged[1][0])
            if self._log is not None:
                self._log.committed(*logged)
        try:
            # Still holding the writer lock: a checkpoint the writer runs here (see
            # _Checkpointer) must not race another worker's commits, or it never completes
            # and the WAL never starts over.
            self._after_commit()
        finally:
            self._unlock()
        if durable and self._wal is not None:
            self._wal.sync()

    def when_durable(self, done: SyncDone) -> None:
        """Call `done` on the running event loop once every commit so far survives power loss:
        `done(None)`, or `done(OSError)` if the WAL could not be synced."""
        if self._syncer is None:  # durability=normal: a commit is as durable as it gets
            asyncio.get_running_loop().call_soon(done, None)
        else:
            self._syncer.request(done)

    def rollback(self) -> None:
        self._tx = None
        try:
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
        finally:
            self._unlock()

    def _unlock(self) -> None:
        if self._locked:
            self._locked = False
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)


class WalSync:
    """Durable commits with the writer lock held only while the WAL is written, not while
    it is synced: the writer commits at synchronous=NORMAL (its frames written, not synced),
    lets go of the lock, then fdatasyncs the WAL before the commit is reported done. Another
    worker inserts its group meanwhile, where with synchronous=FULL it waited for this fsync.
    Checkpoints sync the WAL before copying it at either setting, so no frame reaches the
    database file unsynced."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._fd: int | None = None

    def sync(self) -> None:
        # Opened at the first commit (the WAL exists by then) and kept: SQLite removes the WAL
        # only when the last connection closes, and the writer's stays open until close().
        fd = self._fd
        if fd is None:
            fd = self._fd = os.open(self.path, os.O_RDONLY)
        try:
            os.fdatasync(fd)
        except OSError as exc:
            message = "the write could not be made durable; retry"
            raise Unavailable(message, retry_after_s=1) from exc

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
