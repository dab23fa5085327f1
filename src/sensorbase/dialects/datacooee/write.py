"""The upload, `POST /inputs/{input_pk}/inputdata/`: one JSON:API reading of an input, decoded
(upload.py) and written once. The write path refuses a value or time out of bounds; the
renderer (errors.py) points at the attribute the client sent."""

from __future__ import annotations

import msgspec
from fastapi import Depends, Request, Response

from sensorbase.auth import access
from sensorbase.dialects.body import require_media_type
from sensorbase.dialects.datacooee import inputs as dc_inputs
from sensorbase.dialects.datacooee import upload as dc_upload
from sensorbase.dialects.datacooee.errors import (
    MEDIA_TYPE,
    call_principal,
    key_scheme,
    org_scheme,
    render_error,
)
from sensorbase.dialects.lane import Call, Lane, as_route
from sensorbase.ingest.pipeline import WriteOptions
from sensorbase.model import SeriesKey


async def upload(
    request: Request,
    input_pk: str,  # (declared for OpenAPI; the endpoint reads it from the call)
    _org: object = Depends(org_scheme),
    _key: object = Depends(key_scheme),
) -> Response:
    return await as_route(request, upload_reading)


async def upload_reading(call: Call) -> Response:
    """The upload, as the route and the fast lane both answer it."""
    who = await call_principal(call)
    access.require(who, "data:write")
    require_media_type(call.header(b"content-type"), send=MEDIA_TYPE)
    catalog, ingest = call.services.catalog, call.services.ingest
    body = await call.body()
    found = await dc_inputs.get_input(
        catalog, who, call.path_params["input_pk"], "data:write", recent=True
    )
    reading = dc_upload.decode(body, found.source.key)
    batch = reading.batch(SeriesKey(found.bucket_key, found.source.key, found.field))
    await ingest.write(who, batch, WriteOptions(create_sources=False))
    echo = dc_upload.echo(reading, found.source.key)
    return Response(msgspec.json.encode(echo), 201, media_type=MEDIA_TYPE)


def fast_lanes(prefix: str) -> dict[tuple[str, str], Lane]:
    """The upload, answered before FastAPI's routing (dialects/lane.py): what devices send."""
    lane = Lane("datacooee", render_error, upload_reading)
    return {("POST", f"{prefix}/inputs/{{input_pk}}/inputdata{slash}"): lane for slash in ("/", "")}
