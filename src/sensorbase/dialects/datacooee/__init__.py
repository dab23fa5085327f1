"""The Datacooee dialect: JSON:API upload per input and eight fetch endpoints.

The vendor's sample upload (`POST /api/external/v1/inputs/senxxxxxxxxxx/inputdata/`, headers
`ORGANIZATION-ID`, `ORGANIZATION-API-KEY`, `Content-Type: application/vnd.api+json`):

    {"data":{"type":"SensorData", "id": "null", "attributes": { "value": "12.5", "timestamp": "2020-10-13T14:02:39.489Z"}, "relationships": { "sensor": { "data": { "type": "Sensor", "id": "senxxxxxxxxxx" }}}}}

and a fetch:

    GET /api/external/v1/get_inputdata_by_inputs/?inputs_ids="senXXXX,senXXXY,senXXXZ"&timeperiod_start="2020-10-03 15:31:55"&timeperiod_finish="2020-11-03 15:31:55"&order_by="timestamp"&sort_by="desc"

Modules: `errors` (error shape and words, credentials), `inputs` (inputs and assets on
sources and groups), `upload` (the JSON:API body), `write` (the upload route), `params` (fetch
parameters), `read` (the fetch routes: reading and reply shapes). docs/dialects/datacooee.md records every reading of the document chosen here.
"""  # noqa: E501

from __future__ import annotations

import msgspec
from fastapi import APIRouter, Response

from sensorbase.dialects import openapi
from sensorbase.dialects.base import dialect_router
from sensorbase.dialects.datacooee import params as dc_params
from sensorbase.dialects.datacooee import upload as dc_upload
from sensorbase.dialects.datacooee.errors import ERROR_SCHEMA, MEDIA_TYPE, render_error
from sensorbase.dialects.datacooee.read import ENDPOINTS, fetch_handler
from sensorbase.dialects.datacooee.write import fast_lanes as upload_lanes
from sensorbase.dialects.datacooee.write import upload
from sensorbase.dialects.lane import Lane
from sensorbase.settings import Settings

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


def router() -> APIRouter:
    api = dialect_router(
        "datacooee",
        render_error,
        prefix=PREFIX,
        tags=["Datacooee"],
        error_schema=ERROR_SCHEMA,
        error_media_type=MEDIA_TYPE,
    )

    for path in ("/inputs/{input_pk}/inputdata/", "/inputs/{input_pk}/inputdata"):
        api.add_api_route(
            path,
            upload,
            methods=["POST"],
            status_code=201,
            summary="Upload one reading of an input (JSON:API)",
            openapi_extra=_UPLOAD_BODY,
            response_class=_JsonApi,
            responses={201: {"content": {MEDIA_TYPE: {"schema": {"type": "object"}}}}},
            include_in_schema=path.endswith("/"),
        )
    for name, (kind, latest, by_asset) in ENDPOINTS.items():
        handler = fetch_handler(kind, latest, by_asset)
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


def fast_lanes() -> dict[tuple[str, str], Lane]:
    return upload_lanes(PREFIX)
