"""`PATCH /api/v1/secure/datasource/insert` `{datasource_id, data: [{...}]}`: at most
`max_records` rows, every value a string, each with the data source's `timefield` (in its
`timeformat`) and `metafield`. The valid rows are kept; when some are skipped the answer is
still 200, `{"error": true, "message": "inserted 10 rows, skipped 2 rows: time field is empty
at index 1; ..."}`, every skipped row named (also listed in `skipped`). When no row is valid
nothing is stored and the same body comes with 422. The rows stored are then pushed to the
data source's stream (stream.py)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import Depends, Request, Response

from sensorbase.catalog import Catalog
from sensorbase.dialects.base import authenticate, bearer, catalog_of, ingest_of
from sensorbase.dialects.body import read_body, require_media_type
from sensorbase.dialects.madevo.records import encode, envelope
from sensorbase.dialects.madevo.settings import MadevoSettings
from sensorbase.dialects.madevo.v1.rows import insert_rows
from sensorbase.dialects.madevo.v1.stream import Hub
from sensorbase.ingest.pipeline import Ingest


def insert_route(settings: MadevoSettings, hub: Hub) -> Callable[..., Awaitable[Response]]:
    async def insert(
        request: Request,
        catalog: Catalog = Depends(catalog_of),
        ingest: Ingest = Depends(ingest_of),
    ) -> Response:
        who = authenticate(request, bearer(request))
        require_media_type(request.headers.get("content-type"))
        raw = await read_body(request, ingest.settings.max_body_bytes)
        key, rows = envelope(raw, settings.max_records)
        bucket = await catalog.buckets.get(who, key, "data:write")
        done = await insert_rows(who, ingest, bucket, rows)
        if done.kept:
            hub.publish(who.org_id, key, [rows[i] for i in done.kept])
        body: dict[str, Any] = {
            "error": bool(done.skipped),
            "message": done.message(),
            "inserted_rows": done.rows,
        }
        status = 200
        if done.skipped:
            body["skipped_rows"] = len(rows) - done.rows
            body["skipped"] = [p.as_dict("index", "column") for p in done.skipped]
            status = 200 if done.rows else 422
        return Response(encode.encode(body), status, media_type="application/json")

    return insert
