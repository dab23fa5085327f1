"""Sources: the devices of a bucket, with their declared schema and their series."""

from __future__ import annotations

import secrets
from typing import Any

from sensorbase.auth import access as tenancy
from sensorbase.auth.keys import KeyRing, Principal
from sensorbase.catalog.buckets import EVERY
from sensorbase.catalog.recent import Recent
from sensorbase.catalog.work import Work
from sensorbase.errors import Conflict, Forbidden, NotFound
from sensorbase.model import Bucket, FieldSpec, Scope, Series, Source
from sensorbase.storage.base import Reader, WriteTx


def new_source_key() -> str:
    """A generated source key shaped like a Datacooee input id: `sen` and 10 hex digits."""
    return "sen" + secrets.token_hex(5)


def _missing(key: str, bucket: str | None = None) -> NotFound:
    where = f" in bucket '{bucket}'" if bucket is not None else ""
    return NotFound(f"source '{key}' not found{where}", what="source", name=key)


class Sources:
    def __init__(self, work: Work, ring: KeyRing) -> None:
        self._work = work
        # What Databoom's push and Datacooee's upload look up on every request: a device by
        # its token (anywhere the principal reaches), and an input's series (recent.py).
        self._found: Recent[tuple[Source, Bucket]] = Recent(ring)
        self._series: Recent[list[Series]] = Recent(ring)
        for cache in (self._found, self._series):
            work.on_change(cache.clear)

    async def page(
        self, who: Principal, bucket: str, limit: int, offset: int
    ) -> tuple[list[Source], int]:
        def find(reader: Reader) -> tuple[list[Source], int]:
            found = tenancy.bucket(reader, who, bucket, "data:read")
            return reader.list_sources(found.id, limit, offset)

        return await self._work.read(find)

    async def page_by_bucket_id(
        self, who: Principal, bucket_id: int, limit: int, offset: int
    ) -> tuple[list[Source], int]:
        def find(reader: Reader) -> tuple[list[Source], int]:
            found = tenancy.bucket_by_id(reader, who, bucket_id, "data:read")
            return reader.list_sources(found.id, limit, offset)

        return await self._work.read(find)

    async def get(
        self, who: Principal, bucket: str, key: str, scope: Scope = "data:read"
    ) -> Source:
        def find(reader: Reader) -> Source:
            found = tenancy.bucket(reader, who, bucket, scope)
            source = reader.get_source(found.id, key)
            if source is None:
                raise _missing(key, bucket)
            return source

        return await self._work.read(find)

    async def get_in(
        self, who: Principal, bucket_id: int, key: str, scope: Scope = "data:read"
    ) -> tuple[Bucket, Source | None]:
        """The bucket (checked) and its source `key`, if there is one."""

        def find(reader: Reader) -> tuple[Bucket, Source | None]:
            found = tenancy.bucket_by_id(reader, who, bucket_id, scope)
            return found, reader.get_source(found.id, key)

        return await self._work.read(find)

    async def find(
        self,
        who: Principal,
        key: str,
        scope: Scope = "data:read",
        *,
        forbid_elsewhere: bool = False,
        recent: bool = False,
    ) -> tuple[Source, Bucket] | None:
        """A source by key anywhere the principal may reach (its one bucket, if limited; else
        the first by id in the organisation), with its bucket. With `forbid_elsewhere`, a key
        limited to one bucket that names a source of another bucket of its organisation gets
        Forbidden rather than None (Datacooee names its inputs organisation-wide). `recent`:
        a source found within `key_cache_s` will do (recent.py), for a write that resolves its
        series again in its own transaction."""
        tenancy.require(who, scope)
        name = (who.org_id, who.bucket_id, key, forbid_elsewhere)
        hit = self._found.get(name) if recent else None
        if hit is not None:
            return hit[0]

        def find(reader: Reader) -> tuple[Source, Bucket] | None:
            source = None
            if who.bucket_id is not None:
                source = reader.get_source(who.bucket_id, key)
            if source is None and (who.bucket_id is None or forbid_elsewhere):
                source = reader.find_source(who.org_id, key)
                if source is not None and who.bucket_id is not None:
                    where = f"a bucket that does not hold source '{key}'"
                    raise Forbidden(f"this key is limited to {where}")
            if source is None:
                return None
            bucket = reader.get_bucket_by_id(who.org_id, source.bucket_id)
            return (source, bucket) if bucket is not None else None

        found = await self._work.read(find)
        return found if found is None else self._found.put(name, found)

    async def by_id(self, who: Principal, source_id: int) -> tuple[Source, Bucket] | None:
        def find(reader: Reader) -> tuple[Source, Bucket] | None:
            tenancy.require(who, "data:read")
            source = reader.get_source_by_id(who.org_id, source_id)
            bucket = reader.get_bucket_by_id(who.org_id, source.bucket_id) if source else None
            if source is None or bucket is None or not tenancy.may_see(who, bucket):
                return None
            return source, bucket

        return await self._work.read(find)

    async def with_series(
        self, who: Principal, bucket: str, key: str
    ) -> tuple[Source, list[Series]]:
        def find(reader: Reader) -> tuple[Source, list[Series]]:
            found = tenancy.bucket(reader, who, bucket, "data:read")
            source = reader.get_source(found.id, key)
            if source is None:
                raise _missing(key, bucket)
            return source, reader.list_source_series(source.id)

        return await self._work.read(find)

    async def series_of(
        self, who: Principal, source: Source, *, recent: bool = False
    ) -> list[Series]:
        """The series of a source the principal was given by this catalog. `recent`: a list
        of series seen within `key_cache_s` will do (recent.py), for a write that checks its
        series again in its own transaction; a source without series is read every time."""
        tenancy.require(who, "data:read")
        if source.org_id != who.org_id or who.bucket_id not in (None, source.bucket_id):
            raise _missing(source.key)
        hit = self._series.get(source.id) if recent else None
        if hit is not None:
            return hit[0]
        found = await self._work.read(lambda r: r.list_source_series(source.id))
        return self._series.put(source.id, found) if found else found

    async def create(
        self,
        who: Principal,
        bucket: Bucket,
        key: str | None,
        name: str | None = None,
        meta: dict[str, Any] | None = None,
        schema: dict[str, FieldSpec] | None = None,
        *,
        unique_name: bool = False,
    ) -> Source:
        """A new source in a bucket the principal was given (`key` None: generated);
        Conflict if the key (or, with `unique_name`, the name) is taken."""
        tenancy.require(who, "data:write")
        if not tenancy.may_see(who, bucket):
            raise NotFound("bucket not found", what="bucket", name=bucket.key)
        source_key = key or new_source_key()
        shown = name or source_key

        def create(tx: WriteTx) -> Source:
            if tx.get_source(bucket.id, source_key) is not None:
                raise Conflict(
                    f"source '{source_key}' already exists in bucket '{bucket.key}'",
                    what="source",
                    name=source_key,
                )
            if unique_name and any(
                s.name == shown for s in tx.list_sources(bucket.id, EVERY, 0)[0]
            ):
                raise Conflict(
                    f"a source named '{shown}' already exists", what="source", name=shown
                )
            return tx.create_source(who.org_id, bucket.id, source_key, shown, meta or {}, schema)

        return await self._work.write(create)

    async def update(
        self,
        who: Principal,
        bucket: str,
        key: str,
        *,
        name: str | None = None,
        meta: dict[str, Any] | None = None,
        schema: dict[str, FieldSpec] | None = None,
        unique_name: bool = False,
    ) -> Source:
        """The source changed (data:write, as creating it); None leaves a part as it is; `meta`
        is merged into the source's. Conflict if, with `unique_name`, another source of the
        bucket has the new name."""

        def update(tx: WriteTx) -> Source:
            found = tenancy.bucket(tx, who, bucket, "data:write")
            source = tx.get_source(found.id, key)
            if source is None:
                raise _missing(key, bucket)
            if (
                unique_name
                and name is not None
                and name != source.name
                and any(s.name == name for s in tx.list_sources(found.id, EVERY, 0)[0])
            ):
                raise Conflict(f"a source named '{name}' already exists", what="source", name=name)
            merged = {**source.meta, **meta} if meta else None
            tx.update_source(source.id, name=name, meta=merged, schema=schema)
            updated = tx.get_source(found.id, key)
            assert updated is not None  # (in this very transaction)
            return updated

        return await self._work.write(update)

    async def delete(self, who: Principal, bucket: str, key: str) -> None:
        def find(reader: Reader) -> Source:
            found = tenancy.bucket(reader, who, bucket, "admin")
            source = reader.get_source(found.id, key)
            if source is None:
                raise _missing(key, bucket)
            return source

        source = await self._work.read(find)
        await self._work.delete(lambda tx: tx.delete_source(source.id))
