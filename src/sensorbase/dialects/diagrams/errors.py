"""DiagRAMS's error form: the OAuth2 shape of its token endpoint, with every bad reading
listed under `errors`, each naming the reading's own names (sensorId, valueName, date, labels).

    {"error": "bad_request", "error_description": "...",
     "errors": [{"index": 2, "field": "value", "reason": "must be a JSON number ..."}]}
"""

from __future__ import annotations

from typing import Any

import msgspec
from fastapi import Response

from sensorbase.dialects.base import in_words
from sensorbase.errors import SensorbaseError

# The pipeline's words for the parts of a point, in DiagRAMS's.
WORDS = {"time": "date", "meta": "labels", "source": "sensorId", "field": "valueName"}

_CODES = {
    400: "bad_request",
    401: "invalid_token",
    403: "access_denied",
    404: "not_found",
    405: "method_not_allowed",
    408: "request_timeout",
    409: "conflict",
    413: "request_too_large",
    415: "unsupported_media_type",
    422: "bad_request",
    429: "too_many_requests",
    503: "temporarily_unavailable",
}


def render_error(exc: SensorbaseError) -> Response:
    """`{"error", "error_description", "errors"?}`: the OAuth2 form of the token endpoint, with
    every bad reading listed under `errors`, in DiagRAMS's words."""
    exc = in_words(exc, WORDS)
    body: dict[str, Any] = {
        "error": _CODES.get(exc.status, "server_error"),
        "error_description": exc.detail,
    }
    if exc.problems:
        body["errors"] = [p.as_dict() for p in exc.problems]
        if exc.problems_unlisted:
            body["errors_total"] = exc.problems_total
    headers = None
    if exc.status == 401:
        headers = {"WWW-Authenticate": 'Bearer realm="sensorbase", error="invalid_token"'}
    return Response(
        msgspec.json.encode(body),
        status_code=exc.status,
        media_type="application/json",
        headers=headers,
    )


ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error", "error_description"],
    "properties": {
        "error": {"type": "string"},
        "error_description": {"type": "string"},
        "errors": {"type": "array", "items": {"type": "object"}},
        "errors_total": {"type": "integer"},
    },
}
