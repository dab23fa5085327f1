"""dakkio's error body, and the engine's typed errors worded as dakkio words them.

    {"error": "Validation Error", "message": "Invalid request parameters",
     "details": [{"path": ["body", "bucketId"], "message": "Expected string, received undefined"}]}

A detail's `path` is Zod's: where in the request the problem lies. dakkio's own body checks
raise `PathProblem`s, which carry that path; the engine's problems (ingest/pipeline.py: times
out of the window, fields a data source's schema does not declare, names, metadata size) name
a canonical part and the request item, and the renderer of each route knows where an item lies
in its body (`["body"]` for one data point, `["body", "dataPoints", i]` in a batch).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgspec
from fastapi import Response

from sensorbase.dialects.base import ErrorRenderer
from sensorbase.dialects.dakkio.dates import time_text
from sensorbase.errors import (
    Archived,
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    Problem,
    RateLimited,
    SensorbaseError,
)

Path = list[str | int]
ItemPath = Callable[[int | None], Path]  # where a request item lies in the body

TITLES = {
    400: "Validation Error",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    409: "Conflict",
    413: "Payload Too Large",
    415: "Unsupported Media Type",
    422: "Validation Error",
    429: "Too Many Requests",
    503: "Service Unavailable",
}
UNAUTHORIZED = "Invalid or missing API key"
INVALID = "Invalid request parameters"
ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error", "message"],
    "properties": {
        "error": {"type": "string"},
        "message": {"type": "string"},
        "details": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["path", "message"],
                "properties": {"path": {"type": "array"}, "message": {"type": "string"}},
            },
        },
    },
}
# What the engine names (ingest/pipeline.py, catalog/), in dakkio's words.
PARTS = {
    "source": "dataSourceId",
    "time": "timestamp",
    "value": "values",
    "field": "values",
    "meta": "metadata",
}
NOT_FOUND = {
    "bucket": "Bucket not found",
    "source": "Data source not found",
    "key": "API key not found",
}
TAKEN = {
    "bucket": "Bucket with this name already exists",
    "source": "Data source with this name already exists in this bucket",
    "key": "API key with this name already exists in this bucket",
}
NEEDED = {"admin": "an admin key", "data:write": "a write or admin key"}
_encode = msgspec.json.Encoder()


@dataclass(frozen=True, slots=True)
class PathProblem(Problem):
    """A problem at a Zod path of the request: `("body", "dataPoints", 3, "timestamp")`."""

    path: tuple[str | int, ...] = ()


def at(path: Path, message: str) -> PathProblem:
    return PathProblem(message, ".".join(str(p) for p in path[1:]) or None, path=tuple(path))


class Details:
    """Validation problems collected while walking a body: every bad item, in order."""

    def __init__(self) -> None:
        self.items: list[PathProblem] = []

    def add(self, path: Path, message: str) -> None:
        self.items.append(at(path, message))

    def __bool__(self) -> bool:
        return bool(self.items)

    def error(self) -> InvalidInput:
        return InvalidInput(INVALID, list(self.items))


def invalid_at(path: Path, message: str) -> InvalidInput:
    """A 400 whose one detail is `message` at `path`."""
    return InvalidInput(INVALID, [at(path, message)])


class _Missing:
    def __repr__(self) -> str:
        return "undefined"


MISSING: Any = _Missing()  # a name the body does not carry (JavaScript's `undefined`)


def received(value: Any) -> str:
    """Zod's name of a JSON value's type, as in "Expected string, received number"."""
    if value is MISSING:
        return "undefined"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def expected(kind: str, value: Any) -> str:
    return f"Expected {kind}, received {received(value)}"


def in_body(index: int | None) -> Path:
    """Where the request's one item lies: the body itself."""
    return ["body"]


def renderer(item: ItemPath = in_body) -> ErrorRenderer:
    """The renderer of routes whose request items lie at `item(index)` in the body."""

    def render(exc: SensorbaseError) -> Response:
        return json_reply(body_of(exc, item), exc.status)

    return render


def body_of(exc: SensorbaseError, item: ItemPath = in_body) -> dict[str, Any]:
    status = exc.status
    body: dict[str, Any] = {"error": TITLES.get(status, "Internal Server Error")}
    if status == 401:
        body["message"] = UNAUTHORIZED
    elif status == 429:
        reset = exc.reset_epoch_s if isinstance(exc, RateLimited) else None
        body["message"] = (
            f"Rate limit exceeded. Resets at {time_text(reset * 1_000_000)}"
            if reset is not None
            else "Rate limit exceeded"
        )
    elif isinstance(exc, InvalidInput):
        body["message"] = INVALID
        details = _unique([detail(p, item) for p in exc.problems]) or [
            {"path": ["body"], "message": exc.detail}
        ]
        if exc.problems_unlisted:  # the list was cut: its last entry says by how much
            more = exc.problems_unlisted
            details.append({"path": ["body"], "message": f"and {more} more not listed"})
        body["details"] = details
    else:
        body["message"] = _message(exc)
        if exc.problems:
            body["details"] = _unique([detail(p, item) for p in exc.problems])
    return body


def _message(exc: SensorbaseError) -> str:
    if isinstance(exc, NotFound) and exc.what in NOT_FOUND:
        return NOT_FOUND[exc.what]
    if isinstance(exc, Conflict) and not isinstance(exc, Archived) and exc.what in TAKEN:
        return TAKEN[exc.what]
    if isinstance(exc, Forbidden):
        if exc.needs is None:  # a key limited to one bucket, asking for another
            return "API key does not have access to this bucket"
        if exc.needs != "server_admin":
            needed = NEEDED.get(exc.needs, "a read, write or admin key")
            return f"Insufficient permissions. Required: {exc.needs} ({needed})"
    return exc.detail


def detail(problem: Problem, item: ItemPath) -> dict[str, Any]:
    """One problem as a dakkio detail: its path and message."""
    if isinstance(problem, PathProblem):
        return {"path": list(problem.path), "message": problem.reason}
    name, reason = problem.field, problem.reason
    kind = problem.kind
    if kind in ("too_old", "too_new"):  # "is before ...", "is more than ... in the future"
        return {
            "path": [*item(problem.index), "timestamp"],
            "message": "Timestamp must not be " + reason.removeprefix("is "),
        }
    if kind == "undeclared_field":  # "is not declared by the schema of 's' (declared: a, b)"
        declared = reason.rpartition("(declared: ")[2].removesuffix(")")
        return {
            "path": [*item(problem.index), "values", name or ""],
            "message": f"Field '{name}' is not defined in the data source schema "
            f"(defined: {declared})",
        }
    if kind == "wrong_type":  # "is declared as boolean, got a number"
        declared = reason.removeprefix("is declared as ").partition(",")[0]
        return {
            "path": [*item(problem.index), "values", name or ""],
            "message": f"Field '{name}' is declared as {declared} in the data source schema; "
            "Sensorbase stores numeric values only",
        }
    if kind == "too_large" and name == "limit":  # a query page reading too many points
        return {
            "path": ["body", "filters", "limit"],
            "message": reason.replace(
                "narrow the query or", "narrow the query (dataSourceId, startTime, endTime) or"
            ),
        }
    if kind is not None and name == "bucket":
        return {"path": ["body", "bucketId"], "message": reason}
    if kind is not None and name in PARTS:  # the engine's check of a request item
        return {"path": [*item(problem.index), PARTS[name]], "message": reason}
    return {"path": ["body", *(name.split(".") if name else [])], "message": reason}


def _unique(details: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each detail once, in order: the engine checks rows, and one data point makes a row per
    value (three values out of the window are one timestamp out of it)."""
    seen: set[bytes] = set()
    out = []
    for d in details:
        key = _encode.encode(d)
        if key not in seen:
            seen.add(key)
            out.append(d)
    return out


def json_reply(body: Any, status_code: int = 200) -> Response:
    return Response(_encode.encode(body), status_code=status_code, media_type="application/json")


render_error = renderer()
