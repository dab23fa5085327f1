"""The native API's credential: `Authorization: Bearer <API key or access token>`."""

from __future__ import annotations

from fastapi import Depends, Request
from fastapi.security import HTTPBearer

from sensorbase.auth.keys import Principal
from sensorbase.dialects.base import authenticate, bearer

# Declared for OpenAPI only (so /docs offers an Authorize button); `bearer` does the parsing.
_scheme = HTTPBearer(auto_error=False, description="An API key (sb_...) or an access token")


async def principal(request: Request, _: object = Depends(_scheme)) -> Principal:
    # async: FastAPI would run a plain function on the thread pool, a hop per request; the
    # lookup is a cached dictionary hit (a key is read from storage at most once per
    # `key_cache_s`).
    return authenticate(request, bearer(request))
