"""`POST /v1/write`: points in, acknowledged once durable."""

from __future__ import annotations

from typing import Any

from fastapi import Depends, Query, Request, Response
from msgspec import json

from sensorbase.auth import access
from sensorbase.auth.keys import Principal
from sensorbase.dialects.base import read_body, services
from sensorbase.dialects.native.decode import decode
from sensorbase.dialects.native.deps import principal
from sensorbase.dialects.native.problems import native_router, problem_body
from sensorbase.errors import invalid
from sensorbase.ingest.pipeline import WriteOptions

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


@router.post(
    "/write",
    status_code=200,
    openapi_extra=_BODY,
    summary="Write points",
    responses={400: {"description": "Bad points, every one listed"}, 413: {}, 503: {}},
)
async def write(
    request: Request,
    bucket: str | None = Query(None, description="Default bucket of the points"),
    source: str | None = Query(None, description="Default source of the points"),
    precision: str | None = Query(None, description="Unit of numeric times: s, ms, us or ns"),
    partial: bool = Query(False, description="Store the good points, list the bad ones"),
    who: Principal = Depends(principal),
) -> Response:
    svc = services(request)
    access.require(who, "data:write")
    body = await read_body(request, svc.settings.max_body_bytes)
    content_type = request.headers.get("content-type", "")
    decoded = decode(
        body,
        ndjson="ndjson" in content_type or "jsonlines" in content_type,
        bucket=bucket,
        source=source,
        precision=precision,
        max_points=svc.settings.max_points_per_request,
        check=svc.ingest.check,
    )
    outcome = await svc.ingest.write(
        who.org_id,
        decoded.batch,
        WriteOptions(
            partial=partial,
            allowed_bucket_id=who.bucket_id,
            origin=decoded.origin,
            known_problems=decoded.problems,
        ),
    )
    reply: dict[str, Any] = {"written": outcome.receipt.points, "series": outcome.receipt.series}
    if outcome.rejected:
        reply["rejected"] = problem_body(invalid(outcome.rejected))["errors"]
    return Response(json.encode(reply), media_type="application/json")
