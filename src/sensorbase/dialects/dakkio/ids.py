"""dakkio's ids: 24 hex digits, as MongoDB's ObjectIds.

A dakkio `_id` is the Sensorbase key of the object. What dakkio creates gets a fresh ObjectId as
its key; what was created natively keeps its own key, which dakkio clients then send as the id.
A data point, which Sensorbase does not store as one row, has an id derived from what it is.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time

_counter = int.from_bytes(os.urandom(3), "big")
_process = os.urandom(5)
_lock = threading.Lock()


def object_id() -> str:
    """A new MongoDB-style ObjectId: 4 bytes of epoch seconds, 5 random, a 3-byte counter."""
    global _counter
    with _lock:
        _counter = (_counter + 1) % 0xFFFFFF
        count = _counter
    return (int(time.time()).to_bytes(4, "big") + _process + count.to_bytes(3, "big")).hex()


def point_id(bucket: str, source: str, time_us: int) -> str:
    """The stable 24-hex `_id` of a data point: a point is (data source, timestamp), so the
    same point always shows the same id, in the ingest reply and in every query."""
    seconds = (time_us // 1_000_000) & 0xFFFFFFFF
    digest = hashlib.blake2b(f"{bucket}\0{source}\0{time_us}".encode(), digest_size=8)
    return f"{seconds:08x}{digest.hexdigest()}"
