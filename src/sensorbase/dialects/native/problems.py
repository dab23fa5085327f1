"""RFC 9457 problem details: the one error shape of the native API.

{"type": "https://sensorbase.dev/problems/invalid", "title": "Invalid input", "status": 400,
 "detail": "2 problems; first: item 0, field 'value': must be a number",
 "errors": [{"index": 0, "field": "value", "reason": "must be a number"}, ...]}

At most 100 problems are listed; past that, `errors_total` counts them all.

It is also the server's own shape, for what no dialect answers (an unknown route, a method a
path does not take: api/problems.py renders those with `render_problem`, as imports point from
api to dialects, not back).
"""

from __future__ import annotations

from typing import Any

import msgspec
from fastapi import Response

from sensorbase.dialects.base import dialect_router
from sensorbase.dialects.lane import Lane, LaneEndpoint
from sensorbase.errors import MethodNotAllowed, SensorbaseError

TITLES = {
    400: "Invalid input",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    408: "Request timeout",
    409: "Conflict",
    413: "Payload too large",
    415: "Unsupported media type",
    422: "Unprocessable input",
    429: "Too many requests",
    500: "Internal error",
    503: "Unavailable",
}


def problem_body(exc: SensorbaseError, status: int | None = None) -> dict[str, Any]:
    """The problem document of `exc`; `status`: an HTTP status to give instead of the error's
    own (an HTTP error that no class of the error tree stands for)."""
    status = status or exc.status
    body: dict[str, Any] = {
        "type": f"https://sensorbase.dev/problems/{exc.code}",
        "title": TITLES.get(status, "Error"),
        "status": status,
        "detail": exc.detail,
    }
    if exc.problems:
        body["errors"] = [p.as_dict() for p in exc.problems]
        if exc.problems_unlisted:
            body["errors_total"] = exc.problems_total  # (RFC 9457 extension member)
    return body


def render_problem(exc: SensorbaseError, status: int | None = None) -> Response:
    status = status or exc.status
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    if isinstance(exc, MethodNotAllowed):
        headers = {"Allow": ", ".join(exc.allowed)}
    return Response(
        msgspec.json.encode(problem_body(exc, status)),
        status_code=status,
        media_type="application/problem+json",
        headers=headers,
    )


PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["reason"],
                "properties": {
                    "index": {"type": "integer"},
                    "field": {"type": "string"},
                    "reason": {"type": "string"},
                },
            },
        },
        "errors_total": {"type": "integer"},
    },
}


def native_router() -> Any:
    return dialect_router(
        "native",
        render_problem,
        prefix="/v1",
        error_schema=PROBLEM_SCHEMA,
        error_media_type="application/problem+json",
    )


def native_lane(endpoint: LaneEndpoint) -> Lane:
    return Lane("native", render_problem, endpoint)
