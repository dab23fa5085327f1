"""Buckets: an organisation's containers of sources, each checked for the principal's scope
and bucket limit (auth/access.py)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from sensorbase.auth import access as tenancy
from sensorbase.auth.keys import KeyRing, Principal
from sensorbase.catalog.work import Work
from sensorbase.errors import Conflict, NotFound
from sensorbase.model import Bucket, Scope
from sensorbase.storage.base import Reader, WriteTx

EVERY = 1_000_000  # "all of them", for a listing whose callers want every row


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

    async def set_retention(
        self, who: Principal, key: str, retention_us: int | None, keep_summaries: bool
    ) -> Bucket:
        """Give a bucket a retention (None: keep its points forever); the bucket as it is now.
        An admin's: a retention deletes data."""
        found = await self.get(who, key, "admin")
        await self._work.write(
            lambda tx: tx.set_bucket_retention(found.id, retention_us, keep_summaries)
        )
        return replace(found, retention_us=retention_us, keep_summaries=keep_summaries)

    async def set_meta(self, who: Principal, bucket: Bucket, meta: dict[str, Any]) -> None:
        """Replace a bucket's meta (a bucket the principal was given by `get`)."""
        tenancy.require(who, "data:write")
        if not tenancy.may_see(who, bucket):
            raise NotFound("bucket not found", what="bucket", name=bucket.key)
        await self._work.write(lambda tx: tx.update_bucket(bucket.id, meta=meta))

    async def delete(self, who: Principal, key: str) -> None:
        found = await self.get(who, key, "admin")
        await self._work.delete(lambda tx: tx.delete_bucket(found.id))
        self._keys.clear()  # the bucket's keys went with it

    async def names(self, who: Principal) -> dict[int, str]:
        """Bucket keys by id, of the principal's organisation (to name a key's bucket)."""
        found = await self._work.read(lambda r: r.list_buckets(who.org_id, EVERY, 0)[0])
        return {b.id: b.key for b in found}
