"""Buckets: an organisation's containers of sources, each checked for the principal's scope
and bucket limit (auth/access.py)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from enum import Enum
from typing import Any, Final, Literal

from sensorbase.auth import access as tenancy
from sensorbase.auth.keys import KeyRing, Principal
from sensorbase.catalog.work import Work
from sensorbase.errors import Conflict, NotFound
from sensorbase.model import Bucket, BucketStatus, Scope
from sensorbase.storage.base import Reader, WriteTx

EVERY = 1_000_000  # "all of them", for a listing whose callers want every row


class _Unchanged(Enum):
    UNCHANGED = "unchanged"


UNCHANGED: Final = _Unchanged.UNCHANGED  # (a retention of None means forever, so not "unchanged")


@dataclass(frozen=True, slots=True)
class BucketChanges:
    """What an update changes (None, UNCHANGED: left as it is)."""

    name: str | None = None
    description: str | None = None
    status: BucketStatus | None = None
    # Its retention (docs/lifecycle.md): points expire this long after their time; None: kept
    # forever. Changing it is an admin's (it deletes data), as every update is.
    retention_us: int | Literal[_Unchanged.UNCHANGED] | None = UNCHANGED
    keep_summaries: bool | None = None


class Buckets:
    def __init__(self, work: Work, keys: KeyRing) -> None:
        self._work = work
        self._keys = keys

    async def page(self, who: Principal, limit: int, offset: int) -> tuple[list[Bucket], int]:
        """The buckets the principal may read, and how many there are."""
        tenancy.require(who, "data:read")

        def find(reader: Reader) -> tuple[list[Bucket], int]:
            if who.bucket_id is not None:
                only = reader.get_bucket_by_id(who.org_id, who.bucket_id)
                return ([only] if only and offset == 0 else []), int(only is not None)
            return reader.list_buckets(who.org_id, limit, offset)

        return await self._work.read(find)

    async def get(self, who: Principal, key: str, scope: Scope = "data:read") -> Bucket:
        return await self._work.read(lambda r: tenancy.bucket(r, who, key, scope))

    async def get_by_id(self, who: Principal, bucket_id: int, scope: Scope = "data:read") -> Bucket:
        return await self._work.read(lambda r: tenancy.bucket_by_id(r, who, bucket_id, scope))

    async def stats(self, who: Principal, key: str) -> tuple[Bucket, dict[str, int]]:
        def find(reader: Reader) -> tuple[Bucket, dict[str, int]]:
            found = tenancy.bucket(reader, who, key, "data:read")
            return found, reader.bucket_stats(found.id)

        return await self._work.read(find)

    async def stats_by_id(self, who: Principal, bucket_id: int) -> tuple[Bucket, dict[str, int]]:
        def find(reader: Reader) -> tuple[Bucket, dict[str, int]]:
            found = tenancy.bucket_by_id(reader, who, bucket_id, "data:read")
            return found, reader.bucket_stats(found.id)

        return await self._work.read(find)

    async def create(
        self,
        who: Principal,
        key: str,
        name: str,
        description: str = "",
        meta: dict[str, Any] | None = None,
        *,
        unique_name: bool = False,
        retention_us: int | None = None,
        keep_summaries: bool = False,
    ) -> Bucket:
        """A new bucket; Conflict if its key (or, with `unique_name`, its name) is taken.
        With `retention_us`, its points expire that long after their time
        (docs/lifecycle.md)."""
        tenancy.require(who, "admin")

        def create(tx: WriteTx) -> Bucket:
            if tx.get_bucket(who.org_id, key) is not None:
                raise Conflict(f"bucket '{key}' already exists", what="bucket", name=key)
            if unique_name and any(
                b.name == name for b in tx.list_buckets(who.org_id, EVERY, 0)[0]
            ):
                raise Conflict(f"a bucket named '{name}' already exists", what="bucket", name=name)
            made = tx.create_bucket(who.org_id, key, name, description, meta or {})
            if retention_us is None and not keep_summaries:
                return made
            tx.set_bucket_retention(made.id, retention_us, keep_summaries)
            return replace(made, retention_us=retention_us, keep_summaries=keep_summaries)

        return await self._work.write(create)

    async def set_meta(self, who: Principal, bucket: Bucket, meta: dict[str, Any]) -> None:
        """Replace a bucket's meta (a bucket the principal was given by `get`)."""
        tenancy.require(who, "data:write")
        if not tenancy.may_see(who, bucket):
            raise NotFound("bucket not found", what="bucket", name=bucket.key)

        def change(tx: WriteTx) -> None:
            tx.update_bucket(bucket.id, meta=meta)
            self._work.bucket_changed(tx, bucket, "updated")

        await self._work.write(change)

    async def change_meta(
        self,
        who: Principal,
        key: str,
        change: Callable[[Bucket], dict[str, Any]],
        scope: Scope = "data:write",
    ) -> Bucket:
        """Replace a bucket's meta with `change(the bucket as stored)`, in one transaction: a
        change made meanwhile by another write (a grown schema) is not lost."""

        def update(tx: WriteTx) -> Bucket:
            found = tenancy.bucket(tx, who, key, scope)
            meta = change(found)
            tx.update_bucket(found.id, meta=meta)
            return replace(found, meta=meta)

        return await self._work.write(update)

    async def update(
        self, who: Principal, key: str, changes: BucketChanges, *, unique_name: bool = False
    ) -> Bucket:
        """The bucket changed (admin scope); Conflict if, with `unique_name`, another bucket
        has the new name. Archiving (or reactivating) makes every node forget the series ids
        it cached, so the write path's check of the bucket (ingest/pipeline.py) meets every
        write from then on: at once on this node, within `key_cache_s` on the others."""
        tenancy.require(who, "admin")

        def update(tx: WriteTx) -> Bucket:
            found = tenancy.bucket(tx, who, key, "admin")
            name = changes.name
            if (
                unique_name
                and name is not None
                and name != found.name
                and any(b.name == name for b in tx.list_buckets(who.org_id, EVERY, 0)[0])
            ):
                raise Conflict(f"a bucket named '{name}' already exists", what="bucket", name=name)
            tx.update_bucket(
                found.id, name=name, description=changes.description, status=changes.status
            )
            retention_us = changes.retention_us
            if retention_us is not UNCHANGED or changes.keep_summaries is not None:
                tx.set_bucket_retention(
                    found.id,
                    found.retention_us if retention_us is UNCHANGED else retention_us,
                    found.keep_summaries
                    if changes.keep_summaries is None
                    else changes.keep_summaries,
                )
            updated = tx.get_bucket(who.org_id, key)
            assert updated is not None  # (in this very transaction)
            self._work.bucket_changed(tx, updated, "updated")
            return updated

        if changes.status is not None:
            return await self._work.unsettle(update)
        return await self._work.write(update)

    async def delete(self, who: Principal, key: str) -> None:
        found = await self.get(who, key, "admin")

        def delete(tx: WriteTx) -> None:
            self._work.bucket_changed(tx, found, "deleted")  # (before its webhooks go)
            tx.delete_bucket(found.id)

        await self._work.delete(delete)
        self._keys.clear()  # the bucket's keys went with it

    async def names(self, who: Principal) -> dict[int, str]:
        """Bucket keys by id, of the principal's organisation (to name a key's bucket)."""
        found = await self._work.read(lambda r: r.list_buckets(who.org_id, EVERY, 0)[0])
        return {b.id: b.key for b in found}
