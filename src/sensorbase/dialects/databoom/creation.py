"""Signals created ahead of any value, and validated: `POST /v1/signals/` (Databoom's Create
permission: scope catalog:write) and `PATCH /v1/signals/<id>`.

The vendor's body (VENDOR-NOTES, "Databoom"):

    POST /v1/signals/
    Authorization: Bearer <token with the Create permission>
    {"device": "6541469", "type": "number", "signal_token": "humidity",
     "description": "Relative humidity", "status": "ACTIVE", "unit_readable": "%"}

A signal is a series of the device's source; its description, type and status are in the series'
meta, `unit_readable` is its unit. Without `status` a created signal is INIT, as one created on
first sight by a push: both await validation. `PATCH /v1/signals/<id>` with `{"status":
"ACTIVE"}` validates one (what Databoom's signal page does; not a route Databoom publishes).
"""

from __future__ import annotations

from typing import Any

import msgspec
from fastapi import Depends, Request, Response

from sensorbase.auth import access
from sensorbase.auth.keys import Principal
from sensorbase.catalog import Catalog
from sensorbase.dialects import openapi
from sensorbase.dialects.base import catalog_of, services
from sensorbase.dialects.body import parse_json, read_body, require_media_type
from sensorbase.dialects.databoom.errors import ERROR_SCHEMA, databoom_router, principal
from sensorbase.dialects.databoom.read import signal_out
from sensorbase.dialects.databoom.signals import TOKEN, valid_token
from sensorbase.errors import NotFound, Problem, invalid
from sensorbase.model import SeriesRef

router = databoom_router()
STATUSES = ("INIT", "ACTIVE")
_TEXT_MAX = 500
_SHORT_TEXT = {"type": "string", "maxLength": _TEXT_MAX}
CREATE_SCHEMA = {
    "type": "object",
    "required": ["device", "signal_token"],
    "properties": {
        "device": {**openapi.NONBLANK, "description": "The device token: a source's key"},
        "signal_token": TOKEN,
        "type": openapi.nullable(_SHORT_TEXT),
        "description": openapi.nullable(_SHORT_TEXT),
        "status": openapi.nullable({"type": "string", "enum": list(STATUSES), "default": "INIT"}),
        "unit_readable": openapi.nullable(_SHORT_TEXT),
    },
}
CREATE_SAMPLE = {
    "device": "6541469",
    "type": "number",
    "signal_token": "humidity",
    "description": "Relative humidity",
    "status": "ACTIVE",
    "unit_readable": "%",
}
CHANGE_SCHEMA = {
    "type": "object",
    "properties": {
        "status": openapi.nullable({"type": "string", "enum": list(STATUSES)}),
        "description": openapi.nullable(_SHORT_TEXT),
    },
}


async def _object(request: Request) -> dict[str, Any]:
    require_media_type(request.headers.get("content-type"))
    data = parse_json(await read_body(request, services(request).settings.max_body_bytes))
    if not isinstance(data, dict):
        raise invalid([Problem("the body must be a JSON object")])
    return data


def _texts(body: dict[str, Any], names: tuple[str, ...], problems: list[Problem]) -> None:
    for name in names:
        value = body.get(name)
        if value is not None and not (isinstance(value, str) and len(value) <= _TEXT_MAX):
            problems.append(Problem(f"must be a string of at most {_TEXT_MAX} characters", name))


def _status(body: dict[str, Any], problems: list[Problem], default: str | None) -> str | None:
    status = body.get("status", default)
    if status is not None and status not in STATUSES:
        problems.append(Problem("must be INIT or ACTIVE", "status"))
    return status


@router.post(
    "/signals",
    status_code=201,
    summary="Create a signal of a device (Databoom; Create permission)",
    openapi_extra=openapi.body(CREATE_SCHEMA, CREATE_SAMPLE),
)
@router.post("/signals/", status_code=201, include_in_schema=False)
async def create_signal(
    request: Request,
    who: Principal = Depends(principal),
    catalog: Catalog = Depends(catalog_of),
) -> Response:
    access.require(who, "catalog:write")
    body = await _object(request)
    problems: list[Problem] = []
    device = body.get("device")
    if not isinstance(device, str) or not device.strip():
        problems.append(Problem("is required: the device token", "device"))
    token = body.get("signal_token")
    if not (isinstance(token, str) and valid_token(token)):
        reason = "is required: a non-empty string of at most 200 characters, without '/'"
        problems.append(Problem(reason, "signal_token"))
    _texts(body, ("type", "description", "unit_readable"), problems)
    status = _status(body, problems, "INIT")
    if problems:
        raise invalid(problems)
    assert isinstance(device, str) and isinstance(token, str)  # (checked above)
    found = await catalog.sources.find(who, device, "catalog:write")
    if found is None:
        raise NotFound(f"device '{device}' not found")
    source, bucket = found
    meta = {
        k: v
        for k, v in (("type", body.get("type")), ("description", body.get("description")))
        if v is not None
    }
    unit = body.get("unit_readable")
    series = await catalog.series.create(who, source, token, unit, {**meta, "status": status})
    ref = SeriesRef(series.id, bucket.key, source.key, series.field, series.unit)
    reply = signal_out(ref, series.meta, source)
    return Response(msgspec.json.encode(reply), 201, media_type="application/json")


# An integer id (`:int`): `/v1/signals/push` is no signal. Another path is no route: the
# server's generic 404, a problem document.
@router.patch(
    "/signals/{signal_id:int}",
    responses={
        404: {
            "description": "No such signal (or another organisation's); not an integer id",
            "content": {
                "application/json": {"schema": ERROR_SCHEMA},
                "application/problem+json": {"schema": {"type": "object"}},
            },
        }
    },
    summary="Validate a signal, or change its description (Create permission)",
    openapi_extra=openapi.body(CHANGE_SCHEMA, {"status": "ACTIVE"}),
)
async def change_signal(
    request: Request,
    signal_id: int,
    who: Principal = Depends(principal),
    catalog: Catalog = Depends(catalog_of),
) -> Response:
    access.require(who, "catalog:write")
    body = await _object(request)
    problems: list[Problem] = []
    _texts(body, ("description",), problems)
    status = _status(body, problems, None)
    if problems:
        raise invalid(problems)
    changes = {k: v for k, v in (("status", status), ("description", body.get("description")))}
    changes = {k: v for k, v in changes.items() if v is not None}
    try:
        series, source, bucket = await catalog.series.change_meta(who, signal_id, changes)
    except NotFound:
        raise NotFound(f"signal '{signal_id}' not found") from None
    ref = SeriesRef(series.id, bucket.key, source.key, series.field, series.unit)
    return Response(
        msgspec.json.encode(signal_out(ref, series.meta, source)), media_type="application/json"
    )
