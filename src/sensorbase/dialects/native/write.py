"""`POST /v1/write`: points in, acknowledged once durable."""

from __future__ import annotations

from typing import Any

from fastapi import Request, Response
from msgspec import json

from sensorbase.auth import access
from sensorbase.dialects import openapi
from sensorbase.dialects.body import JSON_TYPES, require_media_type
from sensorbase.dialects.lane import Call, as_route
from sensorbase.dialects.native.decode import decode
from sensorbase.dialects.native.fast_decode import decode_one
from sensorbase.dialects.native.problems import native_router, problem_body
from sensorbase.errors import Problem, invalid
from sensorbase.ingest.pipeline import WriteOptions
from sensorbase.times import PRECISION_US

router = native_router()

# A point's bucket or source: a name, or empty or null for the default (of the body or the query).
_DEFAULTED = {"anyOf": [openapi.NAME, {"type": "string", "maxLength": 0}, {"type": "null"}]}
_NUMBER = {"type": "number"}
_POINT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "bucket": _DEFAULTED,
        "source": _DEFAULTED,
        "field": openapi.nullable(openapi.NAME),
        "value": openapi.nullable(_NUMBER),
        "fields": openapi.nullable(
            {
                "type": "object",
                "minProperties": 1,
                "propertyNames": openapi.NAME,
                "additionalProperties": _NUMBER,
            }
        ),
        "time": {
            "anyOf": [openapi.DATE_TIME, _NUMBER, {"type": "null"}],
            "description": "ISO 8601 with a zone, or an epoch number with ?precision; "
            "absent or null: now",
        },
        "latitude": openapi.nullable({"type": "number", "minimum": -90, "maximum": 90}),
        "longitude": openapi.nullable({"type": "number", "minimum": -180, "maximum": 180}),
        "meta": openapi.nullable(
            {"type": "object", "description": "With the position, at most 8 KiB as JSON"}
        ),
    },
    # `field` and `value`, or `fields` (null counts as absent).
    "oneOf": [
        {
            "required": ["field", "value"],
            "properties": {"field": openapi.NAME, "value": _NUMBER, "fields": {"type": "null"}},
        },
        {
            "required": ["fields"],
            "properties": {
                "fields": {"type": "object"},
                "field": {"type": "null"},
                "value": {"type": "null"},
            },
        },
    ],
    # The position comes whole: a latitude and a longitude, or neither.
    "dependentSchemas": {
        name: {
            "anyOf": [
                {"properties": {name: {"type": "null"}}},
                {"required": [other], "properties": {other: _NUMBER}},
            ]
        }
        for name, other in (("latitude", "longitude"), ("longitude", "latitude"))
    },
}
_POINTS = {"type": "array", "minItems": 1, "items": _POINT_SCHEMA}
_BODY = openapi.body(
    {
        "oneOf": [
            _POINTS,
            {
                "type": "object",
                "additionalProperties": False,
                "required": ["points"],
                "properties": {"bucket": _DEFAULTED, "source": _DEFAULTED, "points": _POINTS},
            },
        ]
    },
    {
        "bucket": "farm",
        "points": [
            {
                "source": "ESP32-001",
                "field": "temperature",
                "value": 21.5,
                "time": "2026-11-21T10:00:00Z",
            }
        ],
    },
)
_BODY["requestBody"]["content"]["application/x-ndjson"] = {
    "schema": {"type": "string", "description": "One point per line"}
}
_PARAMETERS = [
    openapi.parameter("bucket", {"type": "string"}, "Default bucket of the points"),
    openapi.parameter("source", {"type": "string"}, "Default source of the points"),
    openapi.parameter(
        "precision", {"type": "string", "enum": list(PRECISION_US)}, "Unit of numeric times"
    ),
    openapi.parameter("partial", openapi.FLAG, "Store the good points, list the bad ones"),
]
_TRUE, _FALSE = frozenset(("true", "1", "yes", "on")), frozenset(("false", "0", "no", "off"))
NDJSON_TYPES = (
    "application/x-ndjson",
    "application/ndjson",
    "application/jsonlines",
    "application/x-jsonlines",
    "application/jsonl",
)
_ACCEPTED = (*JSON_TYPES, *NDJSON_TYPES)
_FLAGS = _TRUE | _FALSE
_NDJSON = frozenset(NDJSON_TYPES)
ONE_POINT_BYTES = 512  # bodies up to this long are tried as one point first (`decode_one`)
_ONE_WRITTEN = json.encode({"written": 1, "series": 1})  # (the reply of one point written)


@router.post(
    "/write",
    status_code=200,
    openapi_extra={**_BODY, "parameters": _PARAMETERS, "security": [{"HTTPBearer": []}]},
    summary="Write points",
    responses={400: {"description": "Bad points, every one listed"}, 413: {}, 503: {}},
)
async def write(request: Request) -> Response:
    return await as_route(request, write_points)


async def write_points(call: Call) -> bytes:
    """The write, as the route and the fast lane (dialects/lane.py) both answer it."""
    who = call.authenticate(sessions=True)
    access.require(who, "data:write")
    svc, params = call.services, call.params
    partial_text = params.get("partial", "false").lower()
    if partial_text not in _FLAGS:
        raise invalid([Problem("must be true or false", "partial")])
    kind = require_media_type(call.header(b"content-type"), _ACCEPTED, missing_ok=True)
    body = call.whole_body()
    if body is None:
        body = await call.body()
    # (A body longer than any usual point's is not tried: a batch would be parsed twice.)
    if len(body) <= ONE_POINT_BYTES and partial_text not in _TRUE and kind not in _NDJSON:
        one = decode_one(
            body,
            params.get("bucket"),
            params.get("source"),
            params.get("precision"),
            svc.settings.max_points_per_request,
        )
        if one is not None:  # the most frequent write of all, without a batch
            await svc.ingest.write_one(who, *one)
            return _ONE_WRITTEN
    decoded = decode(
        body,
        ndjson=kind in _NDJSON,
        bucket=params.get("bucket"),
        source=params.get("source"),
        precision=params.get("precision"),
        max_points=svc.settings.max_points_per_request,
    )
    partial = partial_text in _TRUE
    options = None  # (the pipeline's own default: no WriteOptions to make)
    if partial or decoded.origin is not None or decoded.problems:
        options = WriteOptions(
            partial=partial, origin=decoded.origin, known_problems=decoded.problems
        )
    outcome = await svc.ingest.write(who, decoded.batch, options)
    reply: dict[str, Any] = {"written": outcome.receipt.points, "series": outcome.receipt.series}
    if outcome.rejected:
        reply["rejected"] = problem_body(invalid(outcome.rejected))["errors"]
    return json.encode(reply)
