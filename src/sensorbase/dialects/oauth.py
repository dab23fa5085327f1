"""The OAuth2 token exchange every bearer-token dialect shares (RFC 6749 §4.4 and §6).

The client is a Sensorbase key: client id = key id, client secret = the key's secret, sent as
HTTP Basic (preferred), or as `client_id`/`client_secret` in the body. The body is a form or JSON.
Errors take OAuth2's shape: `{"error": "invalid_client", "error_description": "..."}`.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any

import msgspec
from fastapi import Request, Response

from sensorbase.auth.keys import split_token
from sensorbase.auth.tokens import TokenPair
from sensorbase.dialects.base import client_address, services
from sensorbase.dialects.body import (
    FORM,
    JSON_TYPES,
    parse_form,
    parse_json,
    read_body,
    require_media_type,
)
from sensorbase.errors import InvalidInput, SensorbaseError, Unauthorized
from sensorbase.times import format_us

_ERRORS = {
    400: "invalid_request",
    401: "invalid_client",
    405: "invalid_request",
    413: "invalid_request",
    415: "invalid_request",
    429: "slow_down",  # too many failed attempts (RFC 8628's name for it); Retry-After says when
}


@dataclass
class OAuthInvalid(InvalidInput):
    """A token request refused with one of OAuth2's error codes (RFC 6749 §5.2)."""

    error_code: str = "invalid_request"


@dataclass
class OAuthUnauthorized(Unauthorized):
    """A client or grant refused, with OAuth2's code (invalid_client, invalid_grant)."""

    error_code: str = "invalid_client"


def render_oauth_error(exc: SensorbaseError) -> Response:
    if isinstance(exc, OAuthInvalid | OAuthUnauthorized):
        code = exc.error_code
    else:
        code = _ERRORS.get(exc.status, "server_error")
    headers = {"WWW-Authenticate": 'Basic realm="sensorbase"'} if exc.status == 401 else None
    return Response(
        msgspec.json.encode({"error": code, "error_description": exc.detail}),
        status_code=exc.status,
        media_type="application/json",
        headers=headers,
    )


OAUTH_ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error", "error_description"],
    "properties": {"error": {"type": "string"}, "error_description": {"type": "string"}},
}


async def _form(request: Request) -> dict[str, Any]:
    """The token request's parameters: a form (RFC 6749's encoding) or a JSON object, each name
    at most once (RFC 6749 §3.1); a body of another type is 415."""
    kind = require_media_type(
        request.headers.get("content-type"),
        (FORM, *JSON_TYPES),
        send="application/x-www-form-urlencoded",
    )
    body = await read_body(request, 64 * 1024)
    try:
        if kind is not None and kind != FORM:
            data = parse_json(body) if body else {}
            if not isinstance(data, dict):
                raise InvalidInput("the body must be a JSON object")
            return data
        return parse_form(body)
    except InvalidInput as exc:
        raise OAuthInvalid(exc.detail) from None


def _basic(request: Request) -> tuple[str, str] | None:
    scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user, sep, password = base64.b64decode(encoded.strip()).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        raise OAuthUnauthorized("malformed Basic credentials") from None
    return (user, password) if sep else None


async def exchange(request: Request) -> TokenPair:
    """Mint a token pair for a client_credentials or refresh_token grant."""
    tokens = services(request).tokens
    form = await _form(request)
    grant = form.get("grant_type")
    if grant == "client_credentials":
        credentials = _basic(request)
        if credentials is None and form.get("client_id") and form.get("client_secret"):
            credentials = (str(form["client_id"]), str(form["client_secret"]))
        if credentials is None:
            raise OAuthUnauthorized("client credentials are missing (HTTP Basic)")
        key_id, secret = credentials
        whole = split_token(secret)  # the whole key pasted as the secret also works
        if whole is not None and whole[0] == key_id:
            secret = whole[1]
        return await tokens.client_credentials(key_id, secret, client_address(request))
    if grant == "refresh_token":
        refresh = form.get("refresh_token")
        if not isinstance(refresh, str) or not refresh:
            raise OAuthInvalid("refresh_token is required")
        try:
            return await tokens.refresh(refresh, client_address(request))
        except Unauthorized as exc:
            raise OAuthUnauthorized(exc.detail, error_code="invalid_grant") from None
    raise OAuthInvalid(
        "grant_type must be client_credentials or refresh_token",
        error_code="unsupported_grant_type",
    )


def token_reply(pair: TokenPair) -> dict[str, Any]:
    return {
        "access_token": pair.access_token,
        "token_type": "bearer",
        "expires_in": pair.expires_in_s,
        "expiration_date": format_us(pair.expires_us),
        "refresh_token": pair.refresh_token,
        "refresh_token_expires_in": pair.refresh_expires_in_s,
        "refresh_token_expiration_date": format_us(pair.refresh_expires_us),
    }
