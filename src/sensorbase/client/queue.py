"""Where written points wait for the server: in memory, or in an SQLite file that outlives the
process (`DiskBuffer`).

Both hand out the oldest points first and forget a point only when `ack` is called for it, that
is after the server acknowledged the batch that carried it (a durable commit on its side). A
client killed between the server's reply and `ack` sends that batch again on its next start:
the server keeps one point per (series, time), so the replay replaces, never duplicates.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections import deque
from pathlib import Path
from typing import Any, Protocol

from sensorbase.client.errors import ClientError


class BufferFull(ClientError):
    """The in-memory queue holds `max_points` already: the server has not taken them in time."""


class PointQueue(Protocol):
    def append(self, items: list[dict[str, Any]]) -> None: ...
    def peek(self, n: int) -> list[tuple[int, dict[str, Any]]]: ...
    def ack(self, last_id: int) -> None: ...
    def __len__(self) -> int: ...
    def close(self) -> None: ...


class MemoryQueue:
    """Points in this process's memory, at most `max_points` of them."""

    def __init__(self, max_points: int) -> None:
        self.max_points = max_points
        self._items: deque[tuple[int, dict[str, Any]]] = deque()
        self._next_id = 1
        self._lock = threading.Lock()

    def append(self, items: list[dict[str, Any]]) -> None:
        with self._lock:
            if len(self._items) + len(items) > self.max_points:
                raise BufferFull(
                    f"{len(self._items)} points wait for the server already (max_points "
                    f"{self.max_points}); use a disk buffer to hold more"
                )
            for item in items:
                self._items.append((self._next_id, item))
                self._next_id += 1

    def peek(self, n: int) -> list[tuple[int, dict[str, Any]]]:
        with self._lock:
            return [self._items[i] for i in range(min(n, len(self._items)))]

    def ack(self, last_id: int) -> None:
        with self._lock:
            while self._items and self._items[0][0] <= last_id:
                self._items.popleft()

    def __len__(self) -> int:
        return len(self._items)

    def close(self) -> None:
        pass


class DiskBuffer:
    """Points in an SQLite file, committed (fsynced: `synchronous=FULL`) before `append`
    returns, so neither a killed process nor a power cut loses a point `write()` took.
    One file per client: two processes sharing a file would send each other's points twice."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS pending"
            " (id INTEGER PRIMARY KEY AUTOINCREMENT, point TEXT NOT NULL)"
        )
        self._count = int(self._db.execute("SELECT count(*) FROM pending").fetchone()[0])

    def append(self, items: list[dict[str, Any]]) -> None:
        rows = [(json.dumps(item, separators=(",", ":"), allow_nan=False),) for item in items]
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany("INSERT INTO pending (point) VALUES (?)", rows)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._count += len(rows)

    def peek(self, n: int) -> list[tuple[int, dict[str, Any]]]:
        with self._lock:
            rows = self._db.execute(
                "SELECT id, point FROM pending ORDER BY id LIMIT ?", (n,)
            ).fetchall()
        return [(int(i), json.loads(text)) for i, text in rows]

    def ack(self, last_id: int) -> None:
        with self._lock:
            self._db.execute("DELETE FROM pending WHERE id <= ?", (last_id,))
            self._count = int(self._db.execute("SELECT count(*) FROM pending").fetchone()[0])

    def __len__(self) -> int:
        return self._count

    def close(self) -> None:
        with self._lock:
            self._db.close()
