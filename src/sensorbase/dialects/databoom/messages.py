"""Databoom's error shape, `{"message": "..."}` (here also `errors`, one entry per problem),
the router every Databoom route hangs on, and its bearer credential."""

from __future__ import annotations

from typing import Any

import msgspec
from fastapi import APIRouter, Depends, Request, Response
from fastapi.security import HTTPBearer

from sensorbase.auth.keys import Principal
from sensorbase.dialects.base import authenticate, bearer, dialect_router
from sensorbase.errors import Problem, SensorbaseError

MESSAGE_PROBLEMS = 20  # problems spelled out in `message`; `errors` lists up to 100


def _where(problem: Problem) -> str:
    return f"{problem.field}: {problem.reason}" if problem.field else problem.reason


def render_error(exc: SensorbaseError) -> Response:
    body: dict[str, Any] = {"message": exc.detail}
    if exc.problems:
        shown = [_where(p) for p in exc.problems[:MESSAGE_PROBLEMS]]
        more = exc.problems_total - len(shown)
        body["message"] = "; ".join(shown) + (f"; and {more} more (see errors)" if more else "")
        body["errors"] = [
            {k: v for k, v in (("field", p.field), ("reason", p.reason)) if v is not None}
            for p in exc.problems
        ]
        if exc.problems_unlisted:
            body["errors_total"] = exc.problems_total
    headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
    return Response(
        msgspec.json.encode(body),
        status_code=exc.status,
        media_type="application/json",
        headers=headers,
    )


ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["message"],
    "properties": {
        "message": {"type": "string"},
        "errors": {"type": "array", "items": {"type": "object"}},
        "errors_total": {"type": "integer"},
    },
}


def databoom_router() -> APIRouter:
    return dialect_router(
        "databoom", render_error, prefix="/v1", tags=["databoom"], error_schema=ERROR_SCHEMA
    )


# Declared for OpenAPI only (the Authorize button); `bearer` does the parsing.
_scheme = HTTPBearer(auto_error=False, description="A Sensorbase API key or access token")


def principal(request: Request, _: object = Depends(_scheme)) -> Principal:
    return authenticate(request, bearer(request))
