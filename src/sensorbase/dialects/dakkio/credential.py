"""dakkio's credential: `X-API-Key`, and what each kind of key may do.

A key is a Sensorbase key, sent as issued (`sb_<id>_<secret>`) or in dakkio's spelling
`dakkio_<a|w|r>_<id>_<secret>` (what the dakkio key routes hand out). The letter is cosmetic:
what a key may do comes from its stored scopes and bucket.

dakkio's dashboard and admin routes (buckets, data sources, keys, the query) also take a JWT,
`Authorization: Bearer <jwt>`: here a Sensorbase access token (minted from a key by
`POST /v1/auth/token` or a DiagRAMS-style token route, or a user's sign-in token). X-API-Key
wins when both are sent. The ingest routes take X-API-Key only, as dakkio's.
"""

from __future__ import annotations

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader

from sensorbase.auth import access
from sensorbase.auth.keys import PREFIX, Principal
from sensorbase.dialects.base import authenticate, bearer, services
from sensorbase.dialects.lane import Call
from sensorbase.errors import Unauthorized
from sensorbase.model import Scope

# Declared for OpenAPI only (so /docs offers an Authorize button); `principal` reads it.
scheme = APIKeyHeader(
    name="X-API-Key",
    scheme_name="dakkio X-API-Key",
    auto_error=False,
    description="Sensorbase API key",
)
KIND_LETTER = {"admin": "a", "write": "w", "read": "r"}


def sensorbase_credential(header: str | None) -> str | None:
    if not header or not header.strip():
        return None
    text = header.strip()
    if text.startswith("dakkio_") and len(text) > 9 and text[8] == "_" and text[7] in "awr":
        return PREFIX + text[9:]
    return text


async def principal(request: Request, _: object = Depends(scheme)) -> Principal:
    return _principal(request, sensorbase_credential(request.headers.get("x-api-key")))


async def admin_principal(request: Request, _: object = Depends(scheme)) -> Principal:
    """X-API-Key, else `Authorization: Bearer <jwt>` (the dashboard and admin routes')."""
    credential = sensorbase_credential(request.headers.get("x-api-key"))
    return _principal(request, credential or bearer(request))


def call_principal(call: Call) -> Principal:
    """`principal` of a fast lane's request (dialects/lane.py): X-API-Key only."""
    try:
        return call.authenticate_with(sensorbase_credential(call.header(b"x-api-key")))
    except Unauthorized:
        call.rate = call.services.rate.hit(f"anonymous:{call.address()}")
        raise


def _principal(request: Request, credential: str | None) -> Principal:
    try:
        return authenticate(request, credential)
    except Unauthorized:
        # Unauthenticated calls are counted too (per client address), so every reply carries
        # X-RateLimit-* and a key-guessing flood meets 429.
        client = request.client.host if request.client else "unknown"
        request.state.rate = services(request).rate.hit(f"anonymous:{client}")
        raise


def key_kind(scopes: tuple[Scope, ...]) -> str:
    if "admin" in scopes:
        return "admin"
    return "write" if "data:write" in scopes else "read"


def require(who: Principal, scope: Scope) -> None:
    """Before the body is read: a key without the scope is refused whatever it sends (the
    renderer words the refusal as dakkio does: "Insufficient permissions. Required: ...")."""
    access.require(who, scope)
