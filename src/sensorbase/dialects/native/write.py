"""`POST /v1/write`: points in, acknowledged once durable."""

from __future__ import annotations

from typing import Any

from fastapi import Request, Response
from msgspec import json

from sensorbase.auth import access
from sensorbase.dialects.body import JSON_TYPES, require_media_type
from sensorbase.dialects.lane import Call, as_route
from sensorbase.dialects.native.decode import decode
from sensorbase.dialects.native.problems import native_router, problem_body
from sensorbase.errors import Problem, invalid
from sensorbase.ingest.pipeline import WriteOptions
from sensorbase.times import PRECISION_US

router = native_router()

_POINT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "bucket": {"type": "string"},
        "source": {"type": "string"},
        "field": {"type": "string"},
        "value": {"type": "number"},
        "fields": {"type": "object", "additionalProperties": {"type": "number"}},
        "time": {"oneOf": [{"type": "string", "format": "date-time"}, {"type": "number"}]},
        "latitude": {"type": "number"},
        "longitude": {"type": "number"},
        "meta": {"type": "object"},
    },
}
_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "oneOf": [
                        {"type": "array", "items": _POINT_SCHEMA},
                        {
                            "type": "object",
                            "required": ["points"],
                            "properties": {
                                "bucket": {"type": "string"},
                                "source": {"type": "string"},
                                "points": {"type": "array", "items": _POINT_SCHEMA},
                            },
                        },
                    ]
                },
                "example": {
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
            },
            "application/x-ndjson": {"schema": {"type": "string"}},
        },
    }
}


_PARAMETERS = [
    {"name": "bucket", "in": "query", "schema": {"type": "string"},
     "description": "Default bucket of the points"},
    {"name": "source", "in": "query", "schema": {"type": "string"},
     "description": "Default source of the points"},
    {"name": "precision", "in": "query", "schema": {"type": "string", "enum": list(PRECISION_US)},
     "description": "Unit of numeric times: s, ms, us or ns"},
    {"name": "partial", "in": "query", "schema": {"type": "boolean", "default": False},
     "description": "Store the good points, list the bad ones"},
]  # fmt: skip
_TRUE, _FALSE = ("true", "1", "yes", "on"), ("false", "0", "no", "off")
NDJSON_TYPES = (
    "application/x-ndjson",
    "application/ndjson",
    "application/jsonlines",
    "application/x-jsonlines",
    "application/jsonl",
)


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
    who = call.authenticate()
    access.require(who, "data:write")
    svc, params = call.services, call.params
    partial_text = params.get("partial", "false").lower()
    if partial_text not in _TRUE + _FALSE:
        raise invalid([Problem("must be true or false", "partial")])
    kind = require_media_type(
        call.header(b"content-type"), (*JSON_TYPES, *NDJSON_TYPES), missing_ok=True
    )
    body = await call.body()
    decoded = decode(
        body,
        ndjson=kind in NDJSON_TYPES,
        bucket=params.get("bucket"),
        source=params.get("source"),
        precision=params.get("precision"),
        max_points=svc.settings.max_points_per_request,
        check=svc.ingest.check,
    )
    outcome = await svc.ingest.write(
        who.org_id,
        decoded.batch,
        WriteOptions(
            partial=partial_text in _TRUE,
            allowed_bucket_id=who.bucket_id,
            origin=decoded.origin,
            known_problems=decoded.problems,
        ),
    )
    reply: dict[str, Any] = {"written": outcome.receipt.points, "series": outcome.receipt.series}
    if outcome.rejected:
        reply["rejected"] = problem_body(invalid(outcome.rejected))["errors"]
    return json.encode(reply)
