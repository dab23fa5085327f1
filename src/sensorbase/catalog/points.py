"""Points leaving before their time: deletes of a time range of an organisation's series
(docs/lifecycle.md). A delete goes through the write queue like every write, so it removes
what was acknowledged before it and nothing written after it; on every backend it is durable
and seen by every node once it answers."""

from __future__ import annotations

from sensorbase.auth import access as tenancy
from sensorbase.auth.keys import Principal
from sensorbase.catalog.work import Work
from sensorbase.errors import NotFound
from sensorbase.model import SeriesRef, TimeRange
from sensorbase.storage.base import Reader


class Points:
    def __init__(self, work: Work) -> None:
        self._work = work

    async def delete(
        self,
        who: Principal,
        bucket: str,
        sources: list[str] | None,
        fields: list[str] | None,
        time_range: TimeRange,
    ) -> list[SeriesRef]:
        """Delete the points in the range of the bucket's series (narrowed by source keys and
        fields); the series it reached. NotFound names a source of `sources` that the bucket
        lacks, and then nothing is deleted."""
        tenancy.require(who, "data:write")

        def select(reader: Reader) -> list[SeriesRef]:
            found = tenancy.bucket(reader, who, bucket, "data:write")
            refs = reader.list_series(who.org_id, found.id, sources, fields)
            for key in sources or ():
                if reader.get_source(found.id, key) is None:
                    raise NotFound(f"source '{key}' not found", what="source", name=key)
            return refs

        refs = await self._work.read(select)
        if refs:
            ids = [r.id for r in refs]
            await self._work.write(lambda tx: tx.delete_points(ids, time_range), heavy=True)
        return refs
