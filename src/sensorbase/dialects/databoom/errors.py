"""Databoom's error shape, `{"message": "..."}` (here also `errors`, one entry per problem),
the words a push's refusals take (the signal and the entry of each bad value), the router every
Databoom route hangs on, its bearer credential, and its token permissions.

Databoom's token permissions are Sensorbase scopes (one scope model, docs/dialects/databoom.md):
Read is `data:read`, Publish `data:write`, Create `catalog:write` (devices from templates and
signals created ahead of any value); an `admin` key has all three."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import msgspec
from fastapi import APIRouter, Depends, Request, Response
from fastapi.security import HTTPBearer

from sensorbase.auth.keys import Principal
from sensorbase.dialects.base import authenticate, bearer, dialect_router
from sensorbase.errors import Forbidden, InvalidInput, Problem, SensorbaseError, invalid
from sensorbase.model import Source

MESSAGE_PROBLEMS = 20  # problems spelled out in `message`; `errors` lists up to 100


def _where(problem: Problem) -> str:
    return f"{problem.field}: {problem.reason}" if problem.field else problem.reason


PERMISSIONS = {"data:read": "Read", "data:write": "Publish", "catalog:write": "Create"}


def render_error(exc: SensorbaseError) -> Response:
    body: dict[str, Any] = {"message": exc.detail}
    if isinstance(exc, Forbidden) and exc.needs in PERMISSIONS:
        body["message"] = (
            f"this token lacks the {PERMISSIONS[exc.needs]} permission "
            f"(Sensorbase scope '{exc.needs}')"
        )
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


_SIGNAL_KINDS = ("undeclared_field", "wrong_type")  # a signal the device's schema refuses
_PARTS = {"time": "date", "field": "name"}  # a point's parts, as a push names them


@contextmanager
def push_words(device: Source | None, where: Callable[[int], str]) -> Iterator[None]:
    """The write's refusals in Databoom's words: a signal the device's schema refuses is named
    once, as `signal '<token>'`; a bad date, value or signal name by where it sat in the body
    (`where(point)`: "signal 't', history entry 2"), as `..., date`, `..., value`, `..., name`."""
    try:
        yield
    except InvalidInput as exc:
        if not exc.problems or any(p.index is None or p.kind is None for p in exc.problems):
            raise  # not the write path's point problems (a refused schema, say): as they are
        raise invalid(_worded(exc.problems, device, where)) from None


def _worded(
    problems: list[Problem], device: Source | None, where: Callable[[int], str]
) -> list[Problem]:
    signals: dict[str, Problem] = {}
    points: list[Problem] = []
    for p in problems:
        token = p.field or ""
        if p.kind in _SIGNAL_KINDS:
            if token not in signals:
                # (several devices, a template push's: the write path's words name the device)
                reason = p.reason if device is None else _schema_reason(p, device)
                signals[token] = Problem(reason, f"signal '{token}'")
        else:
            part = _PARTS.get(p.field or "", p.field)
            points.append(Problem(p.reason, f"{where(p.index or 0)}, {part}", None, p.kind))
    return [*signals.values(), *points]


def _schema_reason(problem: Problem, device: Source) -> str:
    spec = (device.schema or {}).get(problem.field or "")
    if spec is None:
        declared = ", ".join(sorted(device.schema or {})) or "none"
        return f"is not declared by device '{device.key}' (declared: {declared})"
    return f"is declared as {spec.type}; Databoom values here are numbers"


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
scheme = HTTPBearer(auto_error=False, description="A Sensorbase API key or access token")


async def principal(request: Request, _: object = Depends(scheme)) -> Principal:
    return authenticate(request, bearer(request))
