"""DiagRAMS: the data bridge's push mode and its OAuth2 token endpoint.

The vendor's own example, `POST /v0/organisations/ORGANISATION_ID/data/ML_PROJECT` with
`Authorization: bearer access_token` and this body (its third reading sends `"value":"1"`, which
the vendor's prose says is refused; Sensorbase refuses it, and so stores nothing of the request):

    [{"sensorId":"1","date":"2020-01-01T08:03:51.000Z","value":19.9},
     {"sensorId":"2","date":"2020-01-01T08:03:51.000Z","value":0},
     {"sensorId":"3","date":"2020-01-01T08:03:51.000Z","value":"1"}]

- `POST /v0/oauth2/token` (and the older `/v0/oauth2token`): HTTP Basic APPLICATION_ID:SECRET
  (a Sensorbase key's id and secret), `grant_type=client_credentials` or `refresh_token`, as a
  form or JSON. Errors in OAuth2's shape (`dialects/oauth.py`).
- `POST /v0/organisations/{ORGANISATION_ID}/data/{ML_PROJECT}`: ORGANISATION_ID is the token's
  organisation key, ML_PROJECT a bucket key; each reading `{sensorId, valueName?, date, value,
  labels?, precision?}` is a point of series (source=sensorId, field=valueName or "none");
  `labels` and `precision` are kept in the point's extra as `{"meta": {...}}`. 201 on success.
  Errors keep the token endpoint's OAuth2-style form, with every bad reading listed:
  `{"error": "bad_request", "error_description": "...", "errors": [{index, field, reason}]}`.
- `GET /v0/openAPI`: the OpenAPI 3 document of these routes, built from the routers themselves
  (so it cannot drift from what is served), without credentials, as the vendor serves its own.
"""

from __future__ import annotations

from typing import Any

import msgspec
from fastapi import APIRouter, Depends, Request, Response
from fastapi.openapi.utils import get_openapi

from sensorbase import __version__
from sensorbase.auth import access
from sensorbase.dialects import openapi
from sensorbase.dialects.base import bearer_token, dialect_router
from sensorbase.dialects.body import FORM, JSON_TYPES, require_media_type
from sensorbase.dialects.diagrams.errors import ERROR_SCHEMA, render_error
from sensorbase.dialects.diagrams.write import decode
from sensorbase.dialects.lane import Call, Lane, as_route
from sensorbase.dialects.oauth import (
    OAUTH_ERROR_SCHEMA,
    exchange,
    render_oauth_error,
    token_reply,
)
from sensorbase.errors import NotFound
from sensorbase.ingest.pipeline import WriteOptions

_tokens = dialect_router(
    "diagrams",
    render_oauth_error,
    prefix="/v0",
    tags=["DiagRAMS"],
    error_schema=OAUTH_ERROR_SCHEMA,
)
_data = dialect_router(
    "diagrams", render_error, prefix="/v0", tags=["DiagRAMS"], error_schema=ERROR_SCHEMA
)

# A push as `decode` reads it: every reading refused when one breaks this.
_PUSH_BODY = {
    **openapi.body(
        {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["sensorId", "date", "value"],
                "properties": {
                    "sensorId": openapi.NAME,
                    "valueName": openapi.nullable(
                        {"type": "string", "maxLength": 200, "pattern": "^[A-Za-z0-9_]+$"}
                    ),
                    "date": {**openapi.DATE_TIME, "description": "UTC without a zone"},
                    "value": {"type": "number"},
                    "labels": openapi.nullable({"type": ["array", "object"]}),
                    "precision": openapi.nullable({"type": "number"}),
                },
            },
        },
        [
            {"sensorId": "1", "date": "2020-01-01T08:03:51.000Z", "value": 19.9},
            {"sensorId": "2", "date": "2020-01-01T08:03:51.000Z", "value": 0},
        ],
    ),
    "security": [{"HTTPBearer": []}],
}


@_tokens.post(
    "/oauth2/token",
    summary="OAuth2 token (client_credentials, refresh_token)",
    openapi_extra=openapi.TOKEN_ROUTE,
)
@_tokens.post("/oauth2token", include_in_schema=False)
async def token(request: Request, _: None = Depends(openapi.BASIC_CLIENT)) -> dict[str, Any]:
    return token_reply(await exchange(request))


@_data.post(
    "/organisations/{organisation_id}/data/{ml_project}",
    status_code=201,
    summary="Push readings (postOrganisationData)",
    openapi_extra=_PUSH_BODY,
    responses={400: {"description": "Bad readings, every one listed"}, 401: {}, 404: {}},
)
async def push(request: Request, organisation_id: str, ml_project: str) -> Response:
    return await as_route(request, push_readings)  # (the parameters are declared for OpenAPI)


async def push_readings(call: Call) -> Response:
    """The push, as the route and the fast lane both answer it."""
    who = call.authenticate_with(bearer_token(call.header(b"authorization")))
    access.require(who, "data:write")  # (before the body is read: a 403 says more than a 400)
    # The document's own curl example loses its Content-Type header (`-H -H "Content-Type:
    # ..."`), so `-d` sends its JSON as a form type: taken, and read as the JSON it is.
    require_media_type(call.header(b"content-type"), (*JSON_TYPES, FORM))
    # The path names the token's organisation: another organisation's id answers exactly as an
    # id that does not exist.
    organisation_id = call.path_params["organisation_id"]
    org = await call.services.catalog.orgs.mine(who)
    if org.key != organisation_id:
        raise NotFound(f"organisation '{organisation_id}' not found")
    settings, ingest = call.services.settings, call.services.ingest
    body = await call.body()
    decoded = decode(body, call.path_params["ml_project"], settings.max_points_per_request)
    outcome = await ingest.write(
        who,
        decoded.batch,
        WriteOptions(origin=decoded.origin, known_problems=decoded.problems),
    )
    reply = {"points": outcome.receipt.points, "series": outcome.receipt.series}
    return Response(msgspec.json.encode(reply), status_code=201, media_type="application/json")


_document = APIRouter(prefix="/v0", tags=["DiagRAMS"])
_built: list[bytes] = []  # the document, encoded once (the routes do not change)


def document() -> dict[str, Any]:
    """The OpenAPI document of the DiagRAMS routes, from the routers' own declarations."""
    built = get_openapi(
        title="DiagRAMS data bridge (served by Sensorbase)",
        version=__version__,
        openapi_version="3.1.0",
        description="Push readings with a bearer access token from `POST /v0/oauth2/token`.",
        routes=[*_tokens.routes, *_data.routes, *_document.routes],
    )
    # The push reads its bearer token itself (no FastAPI dependency declares the scheme).
    schemes = built.setdefault("components", {}).setdefault("securitySchemes", {})
    schemes.setdefault("HTTPBearer", {"type": "http", "scheme": "bearer"})
    return built


@_document.get("/openAPI", summary="This API's OpenAPI document (no credentials)")
async def openapi_document() -> Response:
    if not _built:
        _built.append(msgspec.json.encode(document()))
    return Response(_built[0], media_type="application/json")


def fast_lanes() -> dict[tuple[str, str], Lane]:
    """The push, answered before FastAPI's routing (dialects/lane.py)."""
    return {
        ("POST", "/v0/organisations/{organisation_id}/data/{ml_project}"): Lane(
            "diagrams", render_error, push_readings
        )
    }


def router() -> APIRouter:
    combined = APIRouter()
    combined.include_router(_tokens)
    combined.include_router(_data)
    combined.include_router(_document)
    return combined
