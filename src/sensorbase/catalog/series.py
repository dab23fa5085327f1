"""Series: one field of one source, the unit a query reads."""

from __future__ import annotations

from typing import Any

from sensorbase.auth import access as tenancy
from sensorbase.auth.keys import Principal
from sensorbase.catalog.work import Work
from sensorbase.errors import Conflict, NotFound
from sensorbase.model import Bucket, Series, SeriesRef, Source
from sensorbase.storage.base import Reader, WriteTx


class SeriesCatalog:
    def __init__(self, work: Work) -> None:
        self._work = work

    def select_now(
        self,
        reader: Reader,
        who: Principal,
        bucket: str | None,
        sources: list[str] | None,
        fields: list[str] | None,
    ) -> list[SeriesRef]:
        """The principal's series matching the names (None: any), on the calling thread's
        reader: a query selects and reads in one snapshot."""
        tenancy.require(who, "data:read")
        bucket_id = who.bucket_id
        if bucket is not None:
            bucket_id = tenancy.bucket(reader, who, bucket, "data:read").id
        return reader.list_series(who.org_id, bucket_id, sources, fields)

    async def select(
        self,
        who: Principal,
        bucket: str | None = None,
        sources: list[str] | None = None,
        fields: list[str] | None = None,
    ) -> list[SeriesRef]:
        return await self._work.read(lambda r: self.select_now(r, who, bucket, sources, fields))

    async def get(self, who: Principal, series_id: int) -> tuple[Series, Source, Bucket]:
        """A series by id, with its source and bucket, if the principal may read it."""

        def find(reader: Reader) -> tuple[Series, Source, Bucket]:
            tenancy.require(who, "data:read")
            series = reader.get_series(series_id)
            source = reader.get_source_by_id(who.org_id, series.source_id) if series else None
            bucket = reader.get_bucket_by_id(who.org_id, source.bucket_id) if source else None
            if series is None or source is None or bucket is None:
                raise NotFound("series not found", what="series", name=str(series_id))
            if not tenancy.may_see(who, bucket):
                raise NotFound("series not found", what="series", name=str(series_id))
            return series, source, bucket

        return await self._work.read(find)

    async def create(
        self, who: Principal, source: Source, field: str, unit: str | None, meta: dict[str, Any]
    ) -> Series:
        """A new series of a source the principal was given by this catalog (catalog:write:
        a write creates series on first sight with data:write; this is creating one ahead of
        any point). Conflict if the source has it already."""
        tenancy.require(who, "catalog:write")
        if source.org_id != who.org_id or who.bucket_id not in (None, source.bucket_id):
            raise NotFound(f"source '{source.key}' not found", what="source", name=source.key)

        def create(tx: WriteTx) -> Series:
            if any(s.field == field for s in tx.list_source_series(source.id)):
                raise Conflict(
                    f"series '{field}' already exists in source '{source.key}'",
                    what="series",
                    name=field,
                )
            made = tx.get_or_create_series(source.id, [field], {field: unit}, {field: meta})
            found = tx.get_series(made[field])
            assert found is not None  # (in this very transaction)
            return found

        return await self._work.write(create)

    async def change_meta(
        self, who: Principal, series_id: int, changes: dict[str, Any]
    ) -> tuple[Series, Source, Bucket]:
        """A series' meta with `changes` merged in (catalog:write), if the principal may reach
        it (another organisation's series is as absent as a missing one)."""
        tenancy.require(who, "catalog:write")
        series, source, bucket = await self.get(who, series_id)

        def change(tx: WriteTx) -> Series:
            current = tx.get_series(series.id)
            if current is None:  # deleted meanwhile
                raise NotFound("series not found", what="series", name=str(series_id))
            tx.update_series(series.id, meta={**current.meta, **changes})
            updated = tx.get_series(series.id)
            assert updated is not None
            return updated

        return await self._work.write(change), source, bucket

    async def described(
        self, who: Principal, refs: list[SeriesRef]
    ) -> list[tuple[SeriesRef, Series | None, Source | None]]:
        """Each selected series with its stored row and its source (units, meta, names)."""

        def find(reader: Reader) -> list[tuple[SeriesRef, Series | None, Source | None]]:
            tenancy.require(who, "data:read")
            sources: dict[tuple[str, str], Source | None] = {}
            out = []
            for ref in refs:
                where = (ref.bucket, ref.source)
                if where not in sources:
                    bucket = reader.get_bucket(who.org_id, ref.bucket)
                    sources[where] = reader.get_source(bucket.id, ref.source) if bucket else None
                out.append((ref, reader.get_series(ref.id), sources[where]))
            return out

        return await self._work.read(find)
