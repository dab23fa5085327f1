"""The native API's credential: `Authorization: Bearer <API key or access token>`."""

from __future__ import annotations

from fastapi import Depends, Request
from fastapi.security import HTTPBearer

from sensorbase.auth.keys import Principal
from sensorbase.dialects.base import authenticate, bearer

# Declared for OpenAPI only (so /docs offers an Authorize button); `bearer` does the parsing.
_scheme = HTTPBearer(auto_error=False, description="An API key (sb_...) or an access token")


def principal(request: Request, _: object = Depends(_scheme)) -> Principal:
    return authenticate(request, bearer(request))
