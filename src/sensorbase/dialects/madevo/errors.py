"""Madevo's error shape, `{"error": "<code>", "message": "...", "details": [{"row", "column",
"reason"}]}`, and the words of the write path's refusals: by record (row) and column."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from fastapi import Response

from sensorbase.dialects.base import in_words
from sensorbase.dialects.madevo.records import TIMESTAMP, Built, encode, refuse
from sensorbase.errors import InvalidInput, NotFound, Problem, SensorbaseError

CODES = {
    400: "validation_error",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    408: "request_timeout",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
    503: "service_unavailable",
}
WORDS = {"bucket": "data source"}  # a data source is a bucket (its key the datasource_id)
# The problems of a point itself (ingest/checks.py Window.rows): a record's value or time.
_ROW_KINDS = frozenset({"not_finite", "too_old", "too_new", "too_large"})

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error", "message"],
    "properties": {
        "error": {"type": "string"},
        "message": {"type": "string"},
        "details": {"type": "array", "items": {"type": "object"}},
        "details_total": {"type": "integer"},
    },
}


def render_error(exc: SensorbaseError) -> Response:
    if isinstance(exc, NotFound):  # (a problem's field is a record's column: left as named)
        exc = in_words(exc, WORDS)
    body: dict[str, Any] = {"error": CODES.get(exc.status, "internal_error"), "message": exc.detail}
    if exc.problems:
        body["details"] = [p.as_dict("row", "column") for p in exc.problems]
        if exc.problems_unlisted:
            body["details_total"] = exc.problems_total
    headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
    return Response(
        encode.encode(body), status_code=exc.status, media_type="application/json", headers=headers
    )


@contextmanager
def record_words(built: Built) -> Iterator[None]:
    """The write's refusals of points in Madevo's words: each bad value or timestamp named by
    its record (row) and column, refused as unprocessable (422)."""
    try:
        yield
    except InvalidInput as exc:
        rows = [p for p in exc.problems if p.kind in _ROW_KINDS and p.index is not None]
        if not rows:
            raise
        raise refuse([_worded(p, built) for p in rows]) from None


def _worded(problem: Problem, built: Built) -> Problem:
    point = problem.index or 0
    column = TIMESTAMP if problem.field == "time" else built.column[point]
    return Problem(problem.reason, column, built.row[point], problem.kind)
