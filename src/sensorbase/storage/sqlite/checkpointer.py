"""The WAL's checkpoints, on a thread and connection of their own (never inside a commit)."""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable
from contextlib import suppress

log = logging.getLogger(__name__)


class Checkpointer:
    """Folds the WAL into the database on its own thread and connection (PASSIVE checkpoints,
    which never block the writer), so that a commit rarely waits for a checkpoint: the
    writer's automatic checkpoint is off. Woken after commits; runs at most every `every_s`.

    A WAL under constant writes is never wholly copied back by another connection, so it would
    only grow; once it holds `restart_frames`, the writer itself checkpoints (the little the
    background left) and its next transaction starts the WAL over."""

    def __init__(
        self, connect: Callable[[], sqlite3.Connection], every_s: float, restart_frames: int
    ) -> None:
        self._connect = connect
        self.every_s = every_s
        self.restart_frames = restart_frames
        self.log_frames = 0  # frames in the WAL at the last checkpoint
        self._wake = threading.Event()
        # Set by stop(): ends the pause between checkpoints at once, where a sleep made every
        # close of a store wait out the rest of it (~0.2 s a store, ~0.1 s a test of the suite).
        self._stopping = threading.Event()
        self._thread = threading.Thread(
            target=self._loop, name="sensorbase-checkpointer", daemon=True
        )
        self._thread.start()

    def after_commit(self, writer: sqlite3.Connection) -> None:
        if self.log_frames >= self.restart_frames:
            self.log_frames = 0
            # OperationalError: the background checkpoint holds the lock; next time then.
            with suppress(sqlite3.OperationalError):
                writer.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        if not self._wake.is_set():  # (set() takes a lock and notifies: a group commit's
            self._wake.set()  # ~3,000 instructions, while the checkpointer sleeps for nothing)

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        self._thread.join()

    def _loop(self) -> None:
        conn = self._connect()
        try:
            while True:
                self._wake.wait()
                if self._stopping.is_set():
                    break
                self._wake.clear()
                try:
                    row = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                    self.log_frames = int(row[1]) if row else 0
                except sqlite3.Error as exc:  # retried after the next commit
                    log.warning("checkpoint failed: %s", exc)
                if self._stopping.wait(self.every_s):
                    break
        finally:
            conn.close()
