"""InfluxDB's error shapes: 1.x `{"error": "..."}` (with the same text in the `X-Influxdb-Error`
header, as influxd sends it) and 2.x `{"code": "invalid", "message": "..."}`, statuses as
InfluxDB documents them for its write API:

    400 {"error": "partial write: line 3: invalid number 'x1' ('cpu v=x1') dropped=1"}
    401 {"error": "authorization failed"}                 {"code": "unauthorized", ...}
    404 {"error": "database not found: \\"farm\\""}       {"code": "not found",
                                                          "message": "bucket \\"farm\\" not found"}
    413, 429 and 503 (with Retry-After), 403 for a key without the scope or limited elsewhere.

Every reply, error or not, carries `X-Influxdb-Version` and `X-Influxdb-Build` (clients read
them from /ping; influxd sends them everywhere).
"""

from __future__ import annotations

import re
from typing import Any

import msgspec
from fastapi import Response

from sensorbase.dialects.base import in_words
from sensorbase.errors import NotFound, Problem, SensorbaseError, Unauthorized

# InfluxDB 1.8 serves exactly this dialect's routes (/write, /query, /ping, and the 2.x
# /api/v2/write and /health beside them): clients that look at the version see that one.
INFLUX_VERSION = "1.8.10"
HEADERS = {"X-Influxdb-Version": INFLUX_VERSION, "X-Influxdb-Build": "OSS"}

# The engine's parts of a point, in line protocol's words (for a refused line's reason).
WORDS = {
    "source": "series key",
    "field": "field key",
    "time": "timestamp",
    "value": "field value",
    "bucket": "database",
}

# InfluxDB 2.x's error codes (its API's `code` enum), by status.
CODES_V2 = {
    400: "invalid",
    401: "unauthorized",
    403: "forbidden",
    404: "not found",
    405: "method not allowed",
    408: "request timeout",
    409: "conflict",
    413: "request too large",
    415: "unsupported media type",
    422: "unprocessable entity",
    429: "too many requests",
    503: "unavailable",
}


def json_reply(body: dict[str, Any], status: int, extra: dict[str, str] | None = None) -> Response:
    return Response(
        msgspec.json.encode(body),
        status_code=status,
        media_type="application/json",
        headers={**HEADERS, **(extra or {})},
    )


def render_v1(exc: SensorbaseError) -> Response:
    """`{"error": "..."}`: InfluxDB 1.x's error body."""
    exc = in_words(exc, WORDS)
    if isinstance(exc, Unauthorized):
        message = "authorization failed"
    elif isinstance(exc, NotFound) and exc.what == "bucket":
        message = f'database not found: "{exc.name}"'
    else:
        message = _detail(exc)
    return json_reply({"error": message}, exc.status, {"X-Influxdb-Error": _header(message)})


def render_v2(exc: SensorbaseError) -> Response:
    """`{"code": "...", "message": "..."}`: InfluxDB 2.x's error body."""
    exc = in_words(exc, WORDS)
    if isinstance(exc, Unauthorized):
        message = "unauthorized access"
    elif isinstance(exc, NotFound) and exc.what == "bucket":
        message = f'bucket "{exc.name}" not found'
    else:
        message = _detail(exc)
    body = {"code": CODES_V2.get(exc.status, "internal error"), "message": message}
    return json_reply(body, exc.status)


def _detail(exc: SensorbaseError) -> str:
    if len(exc.problems) < 2:
        return exc.detail
    listed = "\n".join(_described(p) for p in exc.problems)
    more = f"\n(and {exc.problems_unlisted} more)" if exc.problems_unlisted else ""
    return listed + more


def _described(problem: Problem) -> str:
    where = f"{problem.field} " if problem.field else ""
    return f"{where}{problem.reason}".strip()


def partial(
    problems: list[Problem], total: int, written: int, text_of: Any, version: int
) -> Response:
    """A write whose bad lines were dropped and the good ones written: 400, every bad line named
    by its number, reason and text (the first MAX_LISTED_PROBLEMS of them), as influxd's
    `partial write: ... dropped=N` (1.x) or `{"code": "invalid", "line": N, ...}` (2.x). When no
    line was written, the same message without "partial write"."""
    lines = sorted({p.index for p in problems if p.index is not None})
    reasons: dict[int, str] = {}
    for p in problems:
        if p.index is not None and p.index not in reasons:
            field = f"{WORDS.get(p.field, p.field)}: " if p.field and p.field in WORDS else ""
            reasons[p.index] = field + p.reason
    shown = lines[:100]
    listed = "\n".join(f"line {n}: {reasons[n]} ('{_cut(text_of(n))}')" for n in shown)
    if len(lines) > len(shown):
        listed += f"\n(and {len(lines) - len(shown)} more lines)"
    dropped = max(total, len(lines))
    message = f"partial write: {listed} dropped={dropped}" if written else listed
    if version == 1:
        return json_reply({"error": message}, 400, {"X-Influxdb-Error": _header(message)})
    return json_reply(
        {"code": "invalid", "line": lines[0] if lines else 0, "message": message}, 400
    )


def _header(message: str) -> str:
    """The message as a header value: its first line, printable ASCII only (a line may hold
    any byte, and a control character in a header would break the reply), at most 500
    characters."""
    first = message.split("\n", 1)[0][:500]
    return _UNPRINTABLE.sub("?", first)


_UNPRINTABLE = re.compile(r"[^\x20-\x7e]")


def _cut(text: str) -> str:
    return text if len(text) <= 80 else text[:77] + "..."


ERROR_SCHEMA_V1: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {"error": {"type": "string"}},
}
ERROR_SCHEMA_V2: dict[str, Any] = {
    "type": "object",
    "required": ["code", "message"],
    "properties": {
        "code": {"type": "string"},
        "message": {"type": "string"},
        "line": {"type": "integer"},
    },
}
