"""dakkio's request body: JSON only, its refusals as dakkio details."""

from __future__ import annotations

from typing import Any

from fastapi import Request

from sensorbase.dialects.base import services
from sensorbase.dialects.body import parse_json, read_body, require_media_type
from sensorbase.dialects.dakkio.errors import Details, Path, expected
from sensorbase.dialects.lane import Call
from sensorbase.errors import InvalidInput


async def json_body(request: Request) -> Any:
    """The JSON body: dakkio's document says Content-Type "Must be application/json" (415
    otherwise), decoded by the one decoder (dialects/body.py), its refusal as a dakkio detail."""
    _require_json(request.headers.get("content-type"))
    return _parsed(await read_body(request, services(request).settings.max_body_bytes))


async def json_object(request: Request) -> dict[str, Any]:
    """The JSON body, which must be an object."""
    return _object(await json_body(request))


async def call_object(call: Call) -> dict[str, Any]:
    """`json_object` of a fast lane's request (dialects/lane.py)."""
    _require_json(call.header(b"content-type"))
    return _object(_parsed(await call.body()))


def _require_json(content_type: str | None) -> None:
    require_media_type(content_type, ("application/json",), missing_ok=False)


def _parsed(body: bytes) -> Any:
    try:
        return parse_json(body)
    except InvalidInput as exc:
        details = Details()
        for problem in exc.problems:
            path: Path = ["body", problem.field] if problem.field else ["body"]
            details.add(path, problem.reason if problem.field else f"Invalid JSON: {exc.detail}")
        raise details.error() from None


def _object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        details = Details()
        details.add(["body"], expected("object", body))
        raise details.error()
    return body
