"""`POST /restapi/datasource/insert` (and PATCH): records planned against the data source's
schema, built into columns, written once.

The data source's schema (its bucket's `meta.madevo`) decides what each column is, so the
bucket is read before the records are built; inside the write's own transaction the plan is
made again against the schema as stored then, and a grown schema is stored with the points or
not at all (`WriteOptions.bucket_meta`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

import msgspec
from fastapi import Request, Response

from sensorbase.dialects.base import bearer_token
from sensorbase.dialects.body import require_media_type
from sensorbase.dialects.lane import Call, LaneEndpoint, as_route
from sensorbase.dialects.madevo.errors import record_words
from sensorbase.dialects.madevo.records import build, envelope, refuse
from sensorbase.dialects.madevo.schema import META_KEY, Observed, Plan, observe, plan, schema_of
from sensorbase.dialects.madevo.settings import MadevoSettings
from sensorbase.errors import Conflict
from sensorbase.ingest.pipeline import WriteOptions
from sensorbase.model import Bucket, PointBatch

INSERTED = "Data successfully inserted"


def schema_keeper(
    planned: Plan, seen: Observed, records: list[Any], source_id: str
) -> Callable[[Bucket], dict[str, Any] | None]:
    """What the write does inside its transaction: the schema this request was planned against
    must still hold, and a grown schema is stored with the points or not at all."""

    def keep_schema(fresh: Bucket) -> dict[str, Any] | None:
        stored = schema_of(fresh)
        again = plan(stored, seen, records, source_id)
        if again.problems:
            raise refuse(again.problems)
        if again.roles != planned.roles:
            raise Conflict(f"the schema of data source '{source_id}' changed meanwhile; retry")
        if again.schema != stored:
            return {**fresh.meta, META_KEY: again.schema.meta()}
        return None

    return keep_schema


def insert_route(settings: MadevoSettings) -> Callable[[Request], Awaitable[Response]]:
    """The insert route, taking at most `settings.max_records` records."""
    endpoint = insert_endpoint(settings)

    async def insert(request: Request) -> Response:
        return await as_route(request, endpoint)

    return insert


def insert_endpoint(settings: MadevoSettings) -> LaneEndpoint:
    """The insert, as the route and the fast lane both answer it."""

    async def insert_records(call: Call) -> bytes:
        who = call.authenticate_with(bearer_token(call.header(b"authorization")))
        require_media_type(call.header(b"content-type"))
        raw = await call.body()
        source_id, records = envelope(raw, settings.max_records)
        catalog, ingest = call.services.catalog, call.services.ingest
        bucket = await catalog.buckets.get(who, source_id, "data:write")
        prepared = prepare(bucket, source_id, records)
        with prepared.words():
            await ingest.write(who, prepared.batch, prepared.options)
        return msgspec.json.encode({"message": INSERTED, "count": len(records)})

    return insert_records


@dataclass(frozen=True, slots=True)
class Prepared:
    """An insert's records built into one write, and the words of its refusals."""

    batch: PointBatch
    options: WriteOptions
    words: Callable[[], AbstractContextManager[None]]


def prepare(bucket: Bucket, source_id: str, records: list[Any]) -> Prepared:
    """The records of an insert into data source `source_id` (the bucket as read), planned
    against its schema and built (also the MQTT consumer's `~madevo`)."""
    seen = observe(records)
    planned = plan(schema_of(bucket), seen, records, source_id)
    skip = {p.index for p in seen.problems + planned.problems if p.index is not None}
    built = build(records, planned.roles, seen.narrow, source_id, skip)
    problems = seen.problems + planned.problems + built.problems
    if problems:
        raise refuse(problems)

    return Prepared(
        built.batch,
        WriteOptions(bucket_meta=(source_id, schema_keeper(planned, seen, records, source_id))),
        lambda: record_words(built, records, planned.roles),
    )
