"""Madevo's error shape, `{"error": "<code>", "message": "...", "details": [{"row", "column",
"reason"}]}`, and the words of the write path's refusals: by record (row) and column."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from fastapi import Response

from sensorbase.dialects.base import in_words
from sensorbase.dialects.madevo.records import (
    METRIC_COLUMNS,
    TIMESTAMP,
    VALUE,
    Built,
    Role,
    encode,
    refuse,
)
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

V1_ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error", "message"],
    "properties": {
        "error": {"const": True},
        "message": {"type": "string"},
        "code": {"type": "string"},
        "details": {"type": "array", "items": {"type": "object"}},
    },
}
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
    return _rendered(exc, False)


def render_v1_error(exc: SensorbaseError) -> Response:
    """The /api/v1 generation's shape: `{"error": true, "message": "...", "code": "<code>",
    "details": [...]}` (its replies all carry `error` as a boolean)."""
    return _rendered(exc, True)


def _rendered(exc: SensorbaseError, v1: bool) -> Response:
    if isinstance(exc, NotFound):  # (a problem's field is a record's column: left as named)
        exc = in_words(exc, WORDS)
    code = CODES.get(exc.status, "internal_error")
    body: dict[str, Any] = (
        {"error": True, "message": exc.detail, "code": code}
        if v1
        else {"error": code, "message": exc.detail}
    )
    if exc.problems:
        body["details"] = [p.as_dict("row", "column") for p in exc.problems]
        if exc.problems_unlisted:
            body["details_total"] = exc.problems_total
    headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
    return Response(
        encode.encode(body), status_code=exc.status, media_type="application/json", headers=headers
    )


@contextmanager
def record_words(built: Built, records: list[Any], roles: dict[str, Role]) -> Iterator[None]:
    """The write's refusals of points in Madevo's words: each named by its record (row) and
    column. A bad value or timestamp is refused as unprocessable (422), as Madevo does."""
    try:
        yield
    except InvalidInput as exc:
        if not exc.problems or any(p.index is None or p.kind is None for p in exc.problems):
            raise  # not the write path's point problems (a refused schema, say): as they are
        worded = [_worded(p, built, records, roles) for p in exc.problems]
        rows = [p for p in worded if p.kind in _ROW_KINDS]
        raise (refuse(rows) if rows else refuse(worded, InvalidInput)) from None


def _worded(problem: Problem, built: Built, records: list[Any], roles: dict[str, Role]) -> Problem:
    point = problem.index or 0
    row = built.row[point]
    return Problem(
        problem.reason, _column(problem.field, point, row, built, records, roles), row, problem.kind
    )


def _column(
    part: str | None,
    point: int,
    row: int,
    built: Built,
    records: list[Any],
    roles: dict[str, Role],
) -> str:
    """The column of record `row` that holds a point's `part` (the engine's name)."""
    if part == "time":
        return TIMESTAMP
    if part == "bucket":
        return "datasource_id"
    if part == "source":
        return next((name for name, role in roles.items() if role == "entity"), "datasource_id")
    if part == "field" and built.column[point] == VALUE:  # narrow: the metric's name column
        record = records[row]
        return next((m for m in METRIC_COLUMNS if record.get(m) is not None), METRIC_COLUMNS[0])
    return built.column[point]  # a wide record's metric column, or the narrow `value`
