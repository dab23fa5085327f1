"""`/console/api/session`: signing in to the console with an email and password or an API key.

    POST   /console/api/session {"email": "ana@example.com", "password": "..."} or {"key": "sb_..."}
           -> 200 {"who": {...}, "csrf": "..."}, Set-Cookie: sb_session=<access token>
    GET    /console/api/session -> the same body, 401 without a valid session
    DELETE /console/api/session -> 204, the cookie cleared

The cookie holds an access token minted by auth/tokens.py (a user token, or a key's access
token): HttpOnly (no script reads it), SameSite=Strict (no other site's page sends it), Secure
when the request came over https (directly, or from a proxy trusted by --forwarded-allow-ips),
living as long as the token. The native API takes it as a credential when a request has no
Authorization header, and then asks every state change for the header X-CSRF-Token with the
token given here: an HMAC of the session token, so the server keeps nothing. Revoking the key or
changing or deleting the user ends the session on its next request, as it ends their tokens.
Wrong credentials count against the failed-attempt limits of every sign-in (auth/failures.py).
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request, Response

from sensorbase.auth.keys import Principal, split_token
from sensorbase.auth.tokens import SESSION_COOKIE, USER_SUBJECT
from sensorbase.errors import InvalidInput, Problem, Unauthorized, WrongCredentials, invalid
from sensorbase.model import User
from sensorbase.services import Services

router = APIRouter(prefix="/console/api")
_MAX_BODY_BYTES = 16 * 1024


def _services(request: Request) -> Services:
    found: Services = request.app.services
    return found


def _address(request: Request) -> str:
    client = request.scope.get("client")
    return str(client[0]) if client else "unknown"


async def _body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if len(raw) > _MAX_BODY_BYTES:
        raise InvalidInput(f"the body is over {_MAX_BODY_BYTES} bytes")
    try:
        body = json.loads(raw or b"{}")
    except ValueError:
        raise InvalidInput("the body must be JSON") from None
    if not isinstance(body, dict):
        raise InvalidInput('the body must be {"email", "password"} or {"key"}')
    return body


@router.post("/session")
async def sign_in(request: Request, response: Response) -> dict[str, Any]:
    svc = _services(request)
    body = await _body(request)
    address = _address(request)
    if "key" in body:
        key = body["key"]
        parts = split_token(key) if isinstance(key, str) else None
        if parts is None:
            raise invalid([Problem("must be an API key (sb_...)", "key")])

        async def by_key() -> Principal:
            return svc.keys.verify(*parts)

        who = await svc.failures.sign_in(parts[0], address, by_key)
        token, _ = svc.tokens.renew(who)
    else:
        problems = [
            Problem("is required (a string)", name)
            for name in ("email", "password")
            if not isinstance(body.get(name), str) or not body[name]
        ]
        if problems:
            raise invalid(problems)
        email, password = str(body["email"]), str(body["password"])

        async def by_password() -> User:
            return await svc.catalog.users.check(email, password)

        user = await svc.failures.sign_in(email, address, by_password)
        token, _ = svc.tokens.user_token(user)
        who = svc.tokens.authenticate(token, lambda: address)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=svc.tokens.access_ttl_s,
        path="/",
        secure=request.url.scheme == "https",
        httponly=True,
        samesite="strict",
    )
    return await _reply(svc, who, token)


@router.get("/session")
async def current(request: Request) -> dict[str, Any]:
    svc = _services(request)
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        raise Unauthorized("no session: sign in first")
    try:
        who = svc.tokens.authenticate(token, lambda: _address(request))
    except WrongCredentials:
        raise Unauthorized("the session is not valid: sign in again") from None
    return await _reply(svc, who, token)


@router.delete("/session", status_code=204)
async def sign_out(request: Request) -> Response:
    response = Response(status_code=204)
    response.delete_cookie(
        SESSION_COOKIE,
        path="/",
        secure=request.url.scheme == "https",
        httponly=True,
        samesite="strict",
    )
    return response


async def _reply(svc: Services, who: Principal, token: str) -> dict[str, Any]:
    org = await svc.catalog.orgs.mine(who)
    is_user = who.key_id.startswith(USER_SUBJECT)
    user = await svc.catalog.users.me(who) if is_user else None
    bucket = await svc.catalog.buckets.get_by_id(who, who.bucket_id) if who.bucket_id else None
    return {
        "who": {
            "organisation": org.key,
            "email": user.email if user else None,
            "key": None if is_user else who.key_id,
            "scopes": list(who.scopes),
            "bucket": bucket.key if bucket else None,
            "server_admin": who.server_admin,
        },
        "csrf": svc.tokens.csrf_of(token),
    }
