"""The upload, `POST /inputs/{input_pk}/inputdata/`: one JSON:API reading of an input, decoded
(upload.py) and written once. The write path refuses a value or time out of bounds; the
renderer (errors.py) points at the attribute the client sent."""

from __future__ import annotations

import msgspec
from fastapi import Depends, Request, Response

from sensorbase.auth import access
from sensorbase.auth.keys import Principal
from sensorbase.catalog import Catalog
from sensorbase.dialects.base import catalog_of, ingest_of
from sensorbase.dialects.body import read_body, require_media_type
from sensorbase.dialects.datacooee import inputs as dc_inputs
from sensorbase.dialects.datacooee import upload as dc_upload
from sensorbase.dialects.datacooee.errors import MEDIA_TYPE, principal
from sensorbase.ingest.pipeline import Ingest, WriteOptions
from sensorbase.model import SeriesKey


async def upload(
    request: Request,
    input_pk: str,
    who: Principal = Depends(principal),
    catalog: Catalog = Depends(catalog_of),
    ingest: Ingest = Depends(ingest_of),
) -> Response:
    access.require(who, "data:write")
    require_media_type(request.headers.get("content-type"), send=MEDIA_TYPE)
    body = await read_body(request, ingest.settings.max_body_bytes)
    found = await dc_inputs.get_input(catalog, who, input_pk, "data:write")
    reading = dc_upload.decode(body, found.source.key)
    batch = reading.batch(SeriesKey(found.bucket_key, found.source.key, found.field))
    await ingest.write(who, batch, WriteOptions(create_sources=False))
    echo = dc_upload.echo(reading, found.source.key)
    return Response(msgspec.json.encode(echo), 201, media_type=MEDIA_TYPE)
