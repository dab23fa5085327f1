"""Datacooee's error shape, its words for the write path's problems, and its credentials.

Errors are JSON:API error objects, one per problem, naming the body member (`source.pointer`)
or the query parameter (`source.parameter`) at fault:

    {"errors": [{"status": "400", "code": "invalid", "title": "Bad Request",
                 "detail": "value must be a number or a numeric string such as \\"12.5\\"",
                 "source": {"pointer": "/data/attributes/value"}}]}

A `Problem.field` that starts with `/` is a JSON pointer into the body; any other field is the
name of a query parameter as the client spelled it.

Credentials are two headers: ORGANIZATION-ID (the Sensorbase organisation's key) and
ORGANIZATION-API-KEY (a Sensorbase API key `sb_...` or an access token of that organisation).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec
from fastapi import Depends, Request, Response
from fastapi.security import APIKeyHeader

from sensorbase.auth.keys import Principal
from sensorbase.catalog import Catalog
from sensorbase.dialects.base import authenticate, catalog_of, in_words
from sensorbase.dialects.datacooee.upload import ATTRIBUTES
from sensorbase.dialects.lane import Call
from sensorbase.errors import Problem, SensorbaseError, Unauthorized

MEDIA_TYPE = "application/vnd.api+json"
TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    409: "Conflict",
    413: "Request Entity Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Entity",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["errors"],
    "properties": {
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["status", "code", "title", "detail"],
                "properties": {
                    "status": {"type": "string"},
                    "code": {"type": "string"},
                    "title": {"type": "string"},
                    "detail": {"type": "string"},
                    "source": {"type": "object"},
                },
            },
        },
        "meta": {"type": "object"},
    },
}


def _error(exc: SensorbaseError, problem: Problem | None) -> dict[str, Any]:
    item: dict[str, Any] = {
        "status": str(exc.status),
        "code": exc.code,
        "title": TITLES.get(exc.status, "Error"),
        "detail": exc.detail,
    }
    if problem is None:
        return item
    field = problem.field
    if field is None:
        item["detail"] = problem.reason
    elif field.startswith("/"):
        item["detail"] = f"{field.rsplit('/', 1)[-1]} {problem.reason}"
        item["source"] = {"pointer": field}
    else:
        item["detail"] = f"{field} {problem.reason}"
        item["source"] = {"parameter": field}
    return item


def error_body(exc: SensorbaseError) -> dict[str, Any]:
    problems: list[Problem | None] = list(exc.problems) or [None]
    body: dict[str, Any] = {"errors": [_error(exc, p) for p in problems]}
    if exc.problems_unlisted:  # JSON:API's place for what is not a resource or an error
        body["meta"] = {"errors_total": exc.problems_total}
    return body


# The write path's canonical parts, as the upload's body names them (JSON pointers).
WORDS = {
    "time": f"{ATTRIBUTES}/timestamp",
    "meta": f"{ATTRIBUTES}/metadata",
    "value": f"{ATTRIBUTES}/value",
}


def render_error(exc: SensorbaseError) -> Response:
    exc = in_words(exc, WORDS)
    return Response(msgspec.json.encode(error_body(exc)), exc.status, media_type=MEDIA_TYPE)


# Declared for OpenAPI (the Authorize button of /docs); `_header` does the reading.
org_scheme = APIKeyHeader(
    name="ORGANIZATION-ID", scheme_name="Datacooee ORGANIZATION-ID", auto_error=False
)
key_scheme = APIKeyHeader(
    name="ORGANIZATION-API-KEY", scheme_name="Datacooee ORGANIZATION-API-KEY", auto_error=False
)


def _header(get: Callable[[str], str | None], name: str) -> str | None:
    """A header by its dashed or underscored name (the document writes both), any case,
    without the surrounding quotes a copied example may carry; `get` reads a header by its
    lower-case name."""
    raw = get(name) or get(name.replace("-", "_"))
    if raw is None:
        return None
    value = raw.strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        value = value[1:-1].strip()
    return value or None


async def principal(
    request: Request,
    _org: object = Depends(org_scheme),
    _key: object = Depends(key_scheme),
    catalog: Catalog = Depends(catalog_of),
) -> Principal:
    return await _principal(request.headers.get, lambda key: authenticate(request, key), catalog)


async def call_principal(call: Call) -> Principal:
    """`principal` of a fast lane's request (dialects/lane.py)."""
    return await _principal(
        lambda name: call.header(name.encode()), call.authenticate_with, call.services.catalog
    )


async def _principal(
    header: Callable[[str], str | None],
    authenticate_key: Callable[[str], Principal],
    catalog: Catalog,
) -> Principal:
    """The key behind ORGANIZATION-API-KEY, which must belong to the ORGANIZATION-ID named.

    A valid key paired with another organisation's id, or with an id that does not exist,
    gets the same answer: nothing tells the two apart."""
    key = _header(header, "organization-api-key")
    if key is None:
        raise Unauthorized("the ORGANIZATION-API-KEY header is missing")
    org_key = _header(header, "organization-id")
    if org_key is None:
        raise Unauthorized("the ORGANIZATION-ID header is missing")
    who = authenticate_key(key)
    org = await catalog.orgs.named(org_key)
    if org is None or org.id != who.org_id:
        raise Unauthorized(
            "the ORGANIZATION-API-KEY does not belong to the organisation named by ORGANIZATION-ID"
        )
    return who
