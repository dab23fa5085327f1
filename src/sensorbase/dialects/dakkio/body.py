"""dakkio's request body: JSON only, its refusals as dakkio details."""

from __future__ import annotations

from typing import Any

from fastapi import Request

from sensorbase.dialects.base import services
from sensorbase.dialects.body import parse_json, read_body, require_media_type
from sensorbase.dialects.dakkio.errors import Details, Path, expected
from sensorbase.errors import InvalidInput


async def json_body(request: Request) -> Any:
    """The JSON body: dakkio's document says Content-Type "Must be application/json" (415
    otherwise), decoded by the one decoder (dialects/body.py), its refusal as a dakkio detail."""
    require_media_type(request.headers.get("content-type"), ("application/json",), missing_ok=False)
    body = await read_body(request, services(request).settings.max_body_bytes)
    try:
        return parse_json(body)
    except InvalidInput as exc:
        details = Details()
        for problem in exc.problems:
            path: Path = ["body", problem.field] if problem.field else ["body"]
            details.add(path, problem.reason if problem.field else f"Invalid JSON: {exc.detail}")
        raise details.error() from None


async def json_object(request: Request) -> dict[str, Any]:
    """The JSON body, which must be an object."""
    body = await json_body(request)
    if not isinstance(body, dict):
        details = Details()
        details.add(["body"], expected("object", body))
        raise details.error()
    return body
