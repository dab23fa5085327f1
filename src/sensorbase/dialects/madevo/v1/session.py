"""`POST /api/v1/login`, `POST /api/v1/refresh-token`, `POST /api/v1/secure/logout`.

A sign-in is a session: its access tokens last `access_ttl_s` (15 min) and may be refreshed,
even once expired, for `session_ttl_s` (7 days) from the login; refreshing wants the token in
both the Authorization header and the body (`{"token": ...}`), the same token. Logging out gives
the user a new token generation (auth/tokens.py): every token they hold ends, on every node at
once, since each use of a user token re-reads the user from the shared store."""

from __future__ import annotations

from typing import Any

from fastapi import Depends, Request

from sensorbase.catalog import Catalog
from sensorbase.dialects.base import authenticate, bearer, catalog_of, client_address, services
from sensorbase.dialects.body import parse_json, read_body
from sensorbase.dialects.madevo.settings import MadevoSettings
from sensorbase.dialects.madevo.signin import signed_in
from sensorbase.errors import Unauthorized, WrongCredentials
from sensorbase.model import User


def shown_user(user: User) -> dict[str, Any]:
    return {"id": str(user.id), "email": user.email, "role": user.role}


def login_route(settings: MadevoSettings) -> Any:
    async def login(request: Request, catalog: Catalog = Depends(catalog_of)) -> dict[str, Any]:
        svc = services(request)
        user = await signed_in(request, catalog)
        return {
            "error": False,
            "message": "login successful",
            "user": shown_user(user),
            "token": svc.tokens.session_token(user, settings.access_ttl_s),
            "expires_in": settings.access_ttl_s,
        }

    return login


def refresh_route(settings: MadevoSettings) -> Any:
    async def refresh_token(request: Request) -> dict[str, Any]:
        svc = services(request)
        header = bearer(request)
        raw = await read_body(request, 64 * 1024)
        body = parse_json(raw) if raw.strip() else {}
        given = body.get("token") if isinstance(body, dict) else None
        if not header or not isinstance(given, str) or not given:
            raise Unauthorized(
                "send the token in both the Authorization header (Bearer) and the body "
                '({"token": "..."})'
            )
        if header != given:
            raise Unauthorized("the token of the header and of the body differ")
        try:
            token = svc.tokens.resume(header, settings.session_ttl_s, settings.access_ttl_s)
        except WrongCredentials:
            svc.failures.key_failed(client_address(request))
            raise
        return {
            "error": False,
            "message": "token refreshed",
            "token": token,
            "expires_in": settings.access_ttl_s,
        }

    return refresh_token


async def logout(request: Request, catalog: Catalog = Depends(catalog_of)) -> dict[str, Any]:
    who = authenticate(request, bearer(request))
    await catalog.users.end_tokens(who)
    return {"error": False, "message": "logout successful"}
