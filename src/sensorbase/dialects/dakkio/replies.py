"""dakkio's reply vocabulary: its error body, Zod-style validation details, 24-hex ids and
timestamps.

    {"error": "Validation Error", "message": "Invalid request parameters",
     "details": [{"path": ["body", "bucketId"], "message": "Expected string, received undefined"}]}
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from typing import Any

import msgspec
import numpy as np
from fastapi import Response

from sensorbase.errors import InvalidInput, Problem, RateLimited, SensorbaseError
from sensorbase.model import Int64Array
from sensorbase.times import format_many, format_us

Path = list[str | int]

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
_encode = msgspec.json.Encoder()


class Details:
    """Validation problems collected while walking a body: every bad item, in order."""

    def __init__(self) -> None:
        self.items: list[tuple[Path, str]] = []

    def add(self, path: Path, message: str) -> None:
        self.items.append((path, message))

    def __bool__(self) -> bool:
        return bool(self.items)

    def error(self) -> InvalidInput:
        return validation_error(self.items)


def validation_error(items: list[tuple[Path, str]]) -> InvalidInput:
    """A 400 whose body lists each (path, message) as a dakkio detail."""
    problems = [
        Problem(message, ".".join(str(p) for p in path[1:]) or None) for path, message in items
    ]
    exc = InvalidInput("Invalid request parameters", problems)
    listed = items[: len(exc.problems)]  # as many as the error lists (MAX_LISTED_PROBLEMS)
    exc.dakkio_details = [{"path": path, "message": message} for path, message in listed]  # type: ignore[attr-defined]
    return exc


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


def render_error(exc: SensorbaseError) -> Response:
    status = exc.status
    body: dict[str, Any] = {"error": TITLES.get(status, "Internal Server Error")}
    if status == 401:
        body["message"] = UNAUTHORIZED
    elif status == 429:
        reset = None
        if isinstance(exc, RateLimited) and exc.reset_epoch_s is not None:
            reset = format_us(exc.reset_epoch_s * 1_000_000)
        body["message"] = (
            f"Rate limit exceeded. Resets at {short_time(reset)}"
            if reset
            else ("Rate limit exceeded")
        )
    elif isinstance(exc, InvalidInput):
        body["message"] = "Invalid request parameters"
        details = getattr(exc, "dakkio_details", None)
        if not details:
            details = [
                {"path": ["body", *(p.field.split(".") if p.field else [])], "message": p.reason}
                for p in exc.problems
            ] or [{"path": ["body"], "message": exc.detail}]
        if exc.problems_unlisted:  # the list was cut: its last entry says by how much
            more = exc.problems_unlisted
            details = [*details, {"path": ["body"], "message": f"and {more} more not listed"}]
        body["details"] = details
    else:
        body["message"] = exc.detail
        details = getattr(exc, "dakkio_details", None)
        if details:
            body["details"] = details
    return Response(_encode.encode(body), status_code=status, media_type="application/json")


def json_reply(body: Any, status_code: int = 200) -> Response:
    return Response(_encode.encode(body), status_code=status_code, media_type="application/json")


# --- times --------------------------------------------------------------------------------


def short_time(iso: str) -> str:
    """`...T10:30:00.000000Z` → `...T10:30:00Z`; `....123000Z` → `....123Z` (as sent)."""
    if iso.endswith(".000000Z"):
        return iso[:-8] + "Z"
    if iso.endswith("000Z"):
        return iso[:-4] + "Z"
    return iso


def time_text(time_us: int) -> str:
    return short_time(format_us(time_us))


def ms_text(time_us: int) -> str:
    """An entity's createdAt, to the millisecond as a JavaScript server writes it."""
    return time_text(time_us // 1_000 * 1_000)


def time_texts(time_us: Int64Array) -> list[str]:
    return [short_time(t) for t in format_many(time_us)]


def now_ms_us() -> int:
    """Now, to the millisecond (what a JavaScript server's createdAt carries)."""
    return time.time_ns() // 1_000_000 * 1_000


# --- ids ----------------------------------------------------------------------------------

_counter = int.from_bytes(os.urandom(3), "big")
_process = os.urandom(5)
_lock = threading.Lock()


def object_id() -> str:
    """A new MongoDB-style ObjectId: 4 bytes of epoch seconds, 5 random, a 3-byte counter."""
    global _counter
    with _lock:
        _counter = (_counter + 1) % 0xFFFFFF
        count = _counter
    return (int(time.time()).to_bytes(4, "big") + _process + count.to_bytes(3, "big")).hex()


def point_id(bucket: str, source: str, time_us: int) -> str:
    """The stable 24-hex `_id` of a data point: a point is (data source, timestamp), so the
    same point always shows the same id, in the ingest reply and in every query."""
    seconds = (time_us // 1_000_000) & 0xFFFFFFFF
    digest = hashlib.blake2b(f"{bucket}\0{source}\0{time_us}".encode(), digest_size=8)
    return f"{seconds:08x}{digest.hexdigest()}"


def number_out(value: float) -> float | int:
    """65.0 → 65: a value sent as an integer reads back as one."""
    return int(value) if value.is_integer() and abs(value) < 2**53 else value


def numbers_out(values: np.ndarray) -> list[float | int]:
    return [number_out(v) for v in values.tolist()]
