"""`POST /restapi/login` (email and password: a user token) and `POST /restapi/refresh-token`."""

from __future__ import annotations

from typing import Any

from fastapi import Depends, Request

from sensorbase.catalog import Catalog
from sensorbase.dialects.base import authenticate, bearer, catalog_of, client_address, services
from sensorbase.dialects.body import (
    FORM,
    JSON_TYPES,
    parse_form,
    parse_json,
    read_body,
    require_media_type,
)
from sensorbase.dialects.madevo.records import refuse
from sensorbase.errors import InvalidInput, Problem
from sensorbase.model import User


async def credentials(request: Request) -> dict[str, Any]:
    kind = require_media_type(
        request.headers.get("content-type"), (*JSON_TYPES, FORM), missing_ok=True
    )
    raw = await read_body(request, 64 * 1024)
    if kind == FORM:
        return parse_form(raw)
    body = parse_json(raw) if raw else {}
    if not isinstance(body, dict):
        raise InvalidInput('the body must be a JSON object {"email", "password"}')
    return body


async def signed_in(request: Request, catalog: Catalog) -> User:
    """The user whose email and password the body gives (both generations' login): each
    missing one named, limited per email like a key, failures counted (auth/failures.py)."""
    svc = services(request)
    body = await credentials(request)
    problems = [
        Problem("is required (a string)", name)
        for name in ("email", "password")
        if not isinstance(body.get(name), str) or not body[name]
    ]
    if problems:
        raise refuse(problems, InvalidInput)
    email, password = str(body["email"]), str(body["password"])
    request.state.rate = svc.rate.hit(f"login:{email.lower()}")

    async def attempt() -> User:
        return await catalog.users.check(email, password)

    return await svc.failures.sign_in(email, client_address(request), attempt)


async def login(request: Request, catalog: Catalog = Depends(catalog_of)) -> dict[str, Any]:
    svc = services(request)
    token, _ = svc.tokens.user_token(await signed_in(request, catalog))
    return {"token": token, "expires_in": svc.tokens.access_ttl_s}


async def refresh_token(request: Request) -> dict[str, Any]:
    svc = services(request)
    token, _ = svc.tokens.renew(authenticate(request, bearer(request)))
    return {"token": token, "expires_in": svc.tokens.access_ttl_s}
