"""The Datacooee dialect: JSON:API upload per input and eight fetch endpoints.

The vendor's sample upload (`POST /api/external/v1/inputs/senxxxxxxxxxx/inputdata/`, headers
`ORGANIZATION-ID`, `ORGANIZATION-API-KEY`, `Content-Type: application/vnd.api+json`):

    {"data":{"type":"SensorData", "id": "null", "attributes": { "value": "12.5", "timestamp": "2020-10-13T14:02:39.489Z"}, "relationships": { "sensor": { "data": { "type": "Sensor", "id": "senxxxxxxxxxx" }}}}}

and a fetch:

    GET /api/external/v1/get_inputdata_by_inputs/?inputs_ids="senXXXX,senXXXY,senXXXZ"&timeperiod_start="2020-10-03 15:31:55"&timeperiod_finish="2020-11-03 15:31:55"&order_by="timestamp"&sort_by="desc"

Modules: `jsonapi` (error shape, credentials), `inputs` (inputs and assets on sources and
groups), `upload` (the JSON:API body), `params` (fetch parameters), `fetch` (reading and
reply shapes). docs/dialects/datacooee.md records every reading of the document chosen here.
"""  # noqa: E501

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
from fastapi import APIRouter, Depends, Request, Response

from sensorbase.auth import access
from sensorbase.auth.keys import Principal
from sensorbase.dialects import openapi
from sensorbase.dialects.base import dialect_router, services
from sensorbase.dialects.body import read_body, require_media_type
from sensorbase.dialects.datacooee import inputs as dc_inputs
from sensorbase.dialects.datacooee import params as dc_params
from sensorbase.dialects.datacooee import upload as dc_upload
from sensorbase.dialects.datacooee.fetch import Fetch, Kind
from sensorbase.dialects.datacooee.jsonapi import ERROR_SCHEMA, MEDIA_TYPE, principal, render_error
from sensorbase.errors import Problem, invalid
from sensorbase.ingest.pipeline import WriteOptions
from sensorbase.model import SeriesKey
from sensorbase.settings import Settings
from sensorbase.times import now_us

PREFIX = "/api/external/v1"
SAMPLE_UPLOAD = (
    '{"data":{"type":"SensorData", "id": "null", "attributes": { "value": "12.5", '
    '"timestamp": "2020-10-13T14:02:39.489Z"}, "relationships": { "sensor": { "data": '
    '{ "type": "Sensor", "id": "senxxxxxxxxxx" }}}}}'
)
# The upload as `upload.decode` reads it. `attributes.sensor` and the relationship's id, when
# given, must name the input of the URL: a dependency OpenAPI cannot express.
_NUMERIC = {"anyOf": [{"type": "number"}, {"type": "string", "pattern": dc_upload.NUMBER_PATTERN}]}
_ABSENT = {"anyOf": [{"type": "null"}, {"type": "string", "maxLength": 0}]}  # null or ""
_X_AXIS = openapi.nullable({"type": ["number", "string"]})


def _position(bound: int) -> openapi.Schema:
    degrees = {"type": "string", "pattern": dc_upload.DEGREES_PATTERN[bound]}
    return {"anyOf": [{"type": "number", "minimum": -bound, "maximum": bound}, degrees, _ABSENT]}


def _with(name: str, other: str) -> openapi.Schema:
    """`name` given (neither null nor empty) needs `other` given too."""
    return {
        "if": {"required": [name], "properties": {name: {"not": _ABSENT}}},
        "then": {"required": [other], "properties": {other: {"not": _ABSENT}}},
    }


def _typed(name: str) -> openapi.Schema:
    """A JSON:API `type`: `name` in any case, or null."""
    return openapi.nullable({"type": "string", "pattern": f"^{openapi.any_case(name)}$"})


_ATTRIBUTES = {
    "type": "object",
    "additionalProperties": False,
    "required": ["value", "timestamp"],
    "properties": {
        "value": {**_NUMERIC, "description": 'A number, or a numeric string ("12.5")'},
        "timestamp": openapi.DATE_TIME,
        "latitude": _position(90),
        "longitude": _position(180),
        "x_axis_value": _X_AXIS,
        "x_axis_data": {**_X_AXIS, "description": "Or x_axis_value, not both"},
        "metadata": openapi.nullable({"type": ["object", "string"]}),
        "sensor": {"description": "The input's id, as in the URL"},
    },
    "allOf": [
        _with("latitude", "longitude"),
        _with("longitude", "latitude"),
        {
            "not": {
                "required": ["x_axis_value", "x_axis_data"],
                "properties": {
                    "x_axis_value": {"not": {"type": "null"}},
                    "x_axis_data": {"not": {"type": "null"}},
                },
            }
        },
    ],
}
_LINKED = openapi.nullable(
    {
        "type": "object",
        "properties": {"type": _typed("Sensor"), "id": {"description": "The input's id"}},
    }
)
_RELATIONSHIPS = openapi.nullable(
    {
        "type": "object",
        "properties": {
            "sensor": openapi.nullable({"type": "object", "properties": {"data": _LINKED}})
        },
    }
)
_UPLOAD_SCHEMA = {
    "type": "object",
    "required": ["data"],
    "properties": {
        "data": {
            "type": "object",
            "required": ["attributes"],
            "properties": {
                "type": _typed("SensorData"),
                "id": {"description": "Ignored (the reply gives the reading's id)"},
                "attributes": _ATTRIBUTES,
                "relationships": _RELATIONSHIPS,
            },
        }
    },
}
_UPLOAD_BODY = openapi.body(
    _UPLOAD_SCHEMA, msgspec.json.decode(SAMPLE_UPLOAD), MEDIA_TYPE, "application/json"
)
_MAX_LIMIT = Settings.model_fields["max_result_points"].default


class _JsonApi(Response):
    """The upload's reply, as the document declares it: a JSON:API document."""

    media_type = MEDIA_TYPE


def _pointer(canonical_field: str | None) -> str:
    name = {"time": "timestamp", "meta": "metadata"}.get(canonical_field or "", "value")
    return f"{dc_upload.ATTRIBUTES}/{name}"


def _json(body: Any, status: int = 200, media_type: str = "application/json") -> Response:
    return Response(msgspec.json.encode(body), status, media_type=media_type)


async def upload(request: Request, input_pk: str, who: Principal) -> Response:
    svc = services(request)
    access.require(who, "data:write")
    require_media_type(request.headers.get("content-type"), send=MEDIA_TYPE)
    body = await read_body(request, svc.settings.max_body_bytes)
    found = await svc.read(lambda reader: dc_inputs.get_input(reader, who, input_pk))
    reading = dc_upload.decode(body, found.source.key)
    batch = reading.batch(SeriesKey(found.bucket_key, found.source.key, found.field))
    # The pipeline's own checks (finite value, time window), run first so that a refusal
    # points at the attribute the client sent.
    problems = svc.ingest.check(batch)
    if problems:
        raise invalid([Problem(p.reason, _pointer(p.field)) for p in problems])
    await svc.ingest.write(
        who,
        batch,
        WriteOptions(create_sources=False),
    )
    return _json(dc_upload.echo(reading, found.source.key), 201, MEDIA_TYPE)


def _fetch_handler(
    kind: Kind, latest: bool, by_asset: bool
) -> Callable[[Request, Principal], Awaitable[Response]]:
    async def handle(request: Request, who: Principal = Depends(principal)) -> Response:
        svc = services(request)
        access.require(who, "data:read")
        cap = svc.settings.max_result_points
        params = dc_params.parse(
            list(request.query_params.multi_items()),
            by_asset=by_asset,
            now_us=now_us(),
            max_limit=cap,
        )
        fetch = Fetch(who, params, kind, latest, cap)
        reply: Any = await svc.read(fetch.by_asset if by_asset else fetch.by_inputs)
        return _json(reply)

    return handle


ENDPOINTS: dict[str, tuple[Kind, bool, bool]] = {
    "get_inputdata_by_inputs": ("raw", False, False),
    "get_latest_inputdata_by_inputs": ("raw", True, False),
    "get_statistics_inputdata_by_inputs": ("statistics", False, False),
    "get_latest_statistics_inputdata_by_inputs": ("statistics", True, False),
    "get_inputdata_by_asset": ("raw", False, True),
    "get_latest_inputdata_by_asset": ("raw", True, True),
    "get_statistics_inputdata_by_asset": ("statistics", False, True),
    "get_latest_statistics_inputdata_by_asset": ("statistics", True, True),
}


def router() -> APIRouter:
    api = dialect_router(
        "datacooee",
        render_error,
        prefix=PREFIX,
        tags=["Datacooee"],
        error_schema=ERROR_SCHEMA,
        error_media_type=MEDIA_TYPE,
    )

    async def post_inputdata(
        request: Request, input_pk: str, who: Principal = Depends(principal)
    ) -> Response:
        return await upload(request, input_pk, who)

    for path in ("/inputs/{input_pk}/inputdata/", "/inputs/{input_pk}/inputdata"):
        api.add_api_route(
            path,
            post_inputdata,
            methods=["POST"],
            status_code=201,
            summary="Upload one reading of an input (JSON:API)",
            openapi_extra=_UPLOAD_BODY,
            response_class=_JsonApi,
            responses={201: {"content": {MEDIA_TYPE: {"schema": {"type": "object"}}}}},
            include_in_schema=path.endswith("/"),
        )
    for name, (kind, latest, by_asset) in ENDPOINTS.items():
        handler = _fetch_handler(kind, latest, by_asset)
        for path in (f"/{name}", f"/{name}/"):
            api.add_api_route(
                path,
                handler,
                methods=["GET"],
                summary=name.replace("_", " "),
                openapi_extra={"parameters": dc_params.parameters(by_asset, _MAX_LIMIT)},
                include_in_schema=not path.endswith("/"),
            )
    return api
