"""The native API's credential: `Authorization: Bearer <API key or access token>`, or, with no
Authorization header, the console's session cookie (console/session.py), whose state changes
must carry its CSRF token."""

from __future__ import annotations

from fastapi import Depends, Request
from fastapi.security import HTTPBearer

from sensorbase.auth.keys import Principal
from sensorbase.auth.tokens import CSRF_HEADER, SESSION_COOKIE
from sensorbase.dialects.base import authenticate, bearer, check_csrf, services

# Declared for OpenAPI only (so /docs offers an Authorize button); `bearer` does the parsing.
_scheme = HTTPBearer(auto_error=False, description="An API key (sb_...) or an access token")


async def principal(request: Request, _: object = Depends(_scheme)) -> Principal:
    # async: FastAPI would run a plain function on the thread pool, a hop per request; the
    # lookup is a cached dictionary hit (a key is read from storage at most once per
    # `key_cache_s`).
    if "authorization" not in request.headers:
        session = request.cookies.get(SESSION_COOKIE)
        if session:
            who = authenticate(request, session)
            if request.method not in _SAFE:
                check_csrf(services(request), session, request.headers.get(CSRF_HEADER))
            return who
    return authenticate(request, bearer(request))


_SAFE = ("GET", "HEAD", "OPTIONS")
