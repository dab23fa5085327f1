"""`POST /v1/signals/push`: decode the body (signals.py), find the device, write once.

Nothing is stored unless the whole push is good: the write path refuses out-of-window dates,
non-finite values and signals the device's schema does not declare, and `push_words` names
each by where it sat in the body.
"""

from __future__ import annotations

from typing import Any

from fastapi import Depends, Request, Response

from sensorbase.auth import access
from sensorbase.dialects import openapi
from sensorbase.dialects.base import bearer_token
from sensorbase.dialects.body import require_media_type
from sensorbase.dialects.databoom.errors import databoom_router, push_words, render_error, scheme
from sensorbase.dialects.databoom.signals import BODY_SCHEMA, SAMPLE, Push, decode_push
from sensorbase.dialects.lane import Call, Lane, as_route
from sensorbase.errors import NotFound
from sensorbase.ingest.pipeline import WriteOptions
from sensorbase.model import SeriesKey
from sensorbase.times import now_us

router = databoom_router()
PROCESSED = b'{"message":"ALL_INFO_PROCESSED"}'
INIT = "INIT"  # a signal created on first sight awaits validation (docs/dialects/databoom.md)


def first_sight(decoded: Push, bucket: str, device: str) -> dict[SeriesKey, dict[str, Any]]:
    """The meta of each signal the push names, kept only if the push creates the signal:
    its own meta, and status INIT."""
    return {
        SeriesKey(bucket, device, token): {**decoded.metas.get(token, {}), "status": INIT}
        for token in decoded.index
    }


@router.post(
    "/signals/push",
    summary="Push signal values (Databoom)",
    responses={400: {}, 401: {}, 403: {}, 404: {"description": "Unknown device"}, 413: {}},
    openapi_extra=openapi.body(BODY_SCHEMA, SAMPLE),
)
@router.post("/signals/push/", include_in_schema=False)
async def push(request: Request, _: object = Depends(scheme)) -> Response:
    return await as_route(request, push_signals)


async def push_signals(call: Call) -> Response:
    """The push, as the route and the fast lane both answer it."""
    who = call.authenticate_with(bearer_token(call.header(b"authorization")))
    access.require(who, "data:write")
    require_media_type(call.header(b"content-type"))
    catalog, ingest = call.services.catalog, call.services.ingest
    body = await call.body()
    decoded = decode_push(body, now_us(), ingest.settings.max_points_per_request)
    # The device token names a source anywhere the principal may write (its bucket, if the key
    # is limited to one); another organisation's device is as absent as a missing one.
    found = await catalog.sources.find(who, decoded.device, "data:write", recent=True)
    if found is None:
        raise NotFound(
            f"device '{decoded.device}' not found: create it first as a Sensorbase source "
            "with this key"
        )
    source, bucket = found
    options = WriteOptions(
        create_sources=False, series_meta=first_sight(decoded, bucket.key, source.key)
    )
    with push_words(source, decoded.where):
        await ingest.write(who, decoded.batch(bucket.key, source.key), options)
    return Response(PROCESSED, media_type="application/json")


def fast_lanes() -> dict[tuple[str, str], Lane]:
    """The push, answered before FastAPI's routing (dialects/lane.py): what devices send."""
    lane = Lane("databoom", render_error, push_signals)
    return {("POST", "/v1/signals/push"): lane, ("POST", "/v1/signals/push/"): lane}
