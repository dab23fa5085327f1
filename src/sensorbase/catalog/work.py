"""How the catalog reaches the store: reads on a worker thread with that thread's connection,
writes through the write queue (one transaction, group-committed with the points), and deletes
that every node sharing the store must hear of."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import TypeVar

from starlette.concurrency import run_in_threadpool

from sensorbase.model import CATALOG_VERSION, Bucket
from sensorbase.storage.base import Reader, Store, WriteTx
from sensorbase.storage.write_queue import Committer

T = TypeVar("T")


class Work:
    def __init__(self, store: Store, committer: Committer) -> None:
        self._store = store
        self._committer = committer
        self._deleted: list[Callable[[str], None]] = []
        self._changed: list[Callable[[], None]] = []
        self._bucket_changed: list[Callable[[WriteTx, Bucket, str], None]] = []

    def on_delete(self, hook: Callable[[str], None]) -> None:
        """Call `hook(new catalog version)` after every delete this node makes."""
        self._deleted.append(hook)

    def on_change(self, hook: Callable[[], None]) -> None:
        """Call `hook()` after every catalog write this node makes (catalog/recent.py)."""
        self._changed.append(hook)

    def on_bucket_change(self, hook: Callable[[WriteTx, Bucket, str], None]) -> None:
        """Call `hook(tx, bucket, "updated" | "deleted")` inside the transaction that changes
        a bucket (what it writes commits with the change: webhooks' bucket.updated)."""
        self._bucket_changed.append(hook)

    def bucket_changed(self, tx: WriteTx, bucket: Bucket, change: str) -> None:
        for hook in self._bucket_changed:
            hook(tx, bucket, change)

    async def read(self, fn: Callable[[Reader], T]) -> T:
        return await run_in_threadpool(lambda: fn(self._store.reader()))

    def read_now(self, fn: Callable[[Reader], T]) -> T:
        """A read on the calling thread (already off the event loop)."""
        return fn(self._store.reader())

    async def write(self, fn: Callable[[WriteTx], T], heavy: bool = False) -> T:
        """`fn` in a group commit; `heavy` (deletes of points, which may be millions): its
        group runs off the event loop (storage/write_queue.py)."""
        try:
            return await self._committer.run(fn, heavy=heavy)
        finally:  # a failed write may have committed nothing, or may not know: forget anyway
            for hook in self._changed:
                hook()

    async def delete(self, fn: Callable[[WriteTx], T]) -> T:
        """A write that removes catalog rows (and their points): every node forgets the ids it
        cached, this one at once, the others within `key_cache_s`."""
        return await self.unsettle(fn)

    async def unsettle(self, fn: Callable[[WriteTx], T]) -> T:
        """A write after which ids cached by any node may no longer be used as they were (a
        delete; a bucket archived, whose cached series must meet the write path's check
        again): every node forgets them, this one at once, the others within `key_cache_s`."""
        version = secrets.token_hex(8)

        def job(tx: WriteTx) -> T:
            done = fn(tx)
            tx.set_setting(CATALOG_VERSION, version)
            return done

        done = await self.write(job, heavy=True)
        for hook in self._deleted:
            hook(version)
        return done
