"""What each /api/v1 route declares in the OpenAPI document: its parameters and body, built from
the constants its validator checks (sources.py `text`: names of 1 to 200 characters, not blank,
no control characters; timeformat.py's formats; insert's limit)."""

from __future__ import annotations

from typing import Any

from sensorbase.dialects import openapi
from sensorbase.dialects.madevo.v1.timeformat import NAMED

Schema = dict[str, Any]
SECURE: list[dict[str, list[str]]] = [{"HTTPBearer": []}]

NAME = openapi.NAME  # a data source's name, id, timefield, metafield, asset, column
# A data source id in a body: its name, or a number (Madevo's own ids are numbers; sources.text)
SOURCE_ID = {"anyOf": [NAME, {"type": "integer"}]}
TIMEFORMAT: Schema = {
    "anyOf": [{"enum": list(NAMED)}, {"type": "string", "pattern": "^[^\\x00]*%[^\\x00]*$"}],
    "description": "ISO8601, unix, unix_ms or a strftime pattern (%Y-%m-%d %H:%M:%S)",
}
UPLOAD_ID: Schema = {"type": "string", "pattern": "^[0-9a-f]{24}$"}
ID_PARAM = openapi.parameter("id", NAME, "The data source's id", required=True)
CREATE: Schema = {
    "type": "object",
    "required": ["name", "timefield"],
    "properties": {
        "name": NAME,
        "description": openapi.TEXT,
        "timefield": NAME,
        "metafield": openapi.nullable(NAME),
        "timeformat": openapi.nullable(TIMEFORMAT),  # (null: ISO8601)
    },
}
CREATE_EXAMPLE = {
    "name": "greenhouse",
    "timefield": "ts",
    "metafield": "sensor",
    "timeformat": "%Y-%m-%d %H:%M:%S",
}


def _secure(**more: Any) -> Schema:
    return {"security": SECURE, **more}


LOGIN = openapi.form_or_json(
    {
        "type": "object",
        "required": ["email", "password"],
        "properties": {
            "email": {"type": "string", "minLength": 1},
            "password": {"type": "string", "minLength": 1},
        },
    },
    {"email": "ada@example.com", "password": "correct horse battery staple"},
    form_first=False,
)
REFRESH = _secure(
    **openapi.body(
        {
            "type": "object",
            "required": ["token"],
            "properties": {"token": {"type": "string", "minLength": 1}},
            "description": "The token of the Authorization header, again",
        },
        {"token": "eyJ..."},
    )
)
LOGOUT = _secure()
UPLOAD = _secure(
    **openapi.body(
        {"type": "object", "required": ["file"], "properties": {"file": {"format": "binary"}}},
        None,
        "multipart/form-data",
    )
)
# (The file may also be the body itself, text/csv or application/zip: not declared, since a
# schema cannot tell a CSV from any other string.)
CREATE_FROM_UPLOAD = _secure(
    **openapi.body(
        {
            **CREATE,
            "required": ["upload_id", "name", "timefield"],
            "properties": {**CREATE["properties"], "upload_id": UPLOAD_ID},
        },
        {"upload_id": "9f2c4e6a8b0d1f3e5a7c9b1d", **CREATE_EXAMPLE},
    )
)
GET_ONE = _secure(parameters=[ID_PARAM])
DELETE = _secure(parameters=[ID_PARAM])
LIST = _secure(
    parameters=[
        openapi.parameter(
            "page", {"type": "integer", "minimum": 1, "maximum": 10**9}, "From 1; 20 a page"
        )
    ]
)
PLAIN = _secure(**openapi.body(CREATE, CREATE_EXAMPLE))
RENAME = _secure(
    **openapi.body(
        {
            "type": "object",
            "required": ["id", "name"],
            "properties": {"id": SOURCE_ID, "name": NAME},
        },
        {"id": "65a1f0c2e4b6a8d0c2e4b6a8", "name": "glasshouse"},
    )
)
DETECT = _secure(
    **openapi.body(
        {
            "anyOf": [
                {
                    "type": "object",
                    "required": ["values"],
                    "properties": {
                        "values": {
                            "type": "array",
                            "minItems": 1,
                            "maxItems": 1000,
                            "items": {"type": "string"},
                        }
                    },
                },
                {
                    "type": "object",
                    "required": ["value"],
                    "properties": {"value": {"type": "string"}},
                },
            ]
        },
        {"values": ["2025-01-31 10:00:00"]},
    )
)
SUMMARY = _secure(parameters=[openapi.parameter("id", NAME, "One data source (else all)")])
DISTINCT = _secure(
    **openapi.body(
        {
            "type": "object",
            "required": ["datasource_id"],
            "properties": {"datasource_id": SOURCE_ID},
        },
        {"datasource_id": "65a1f0c2e4b6a8d0c2e4b6a8"},
    )
)


def insert(max_records: int) -> Schema:
    return _secure(
        **openapi.body(
            {
                "type": "object",
                "required": ["datasource_id", "data"],
                "properties": {
                    "datasource_id": SOURCE_ID,
                    "data": {
                        "type": "array",
                        "minItems": 1,
                        "description": f"At most {max_records} rows (413 above: a limit, as the "
                        "/restapi insert's, not a schema violation)",
                        "items": {"type": "object", "additionalProperties": {"type": "string"}},
                    },
                },
            },
            {
                "datasource_id": "65a1f0c2e4b6a8d0c2e4b6a8",
                "data": [{"ts": "2025-01-01 10:00:00", "sensor": "S1", "temperature": "21.5"}],
            },
        )
    )


PLOT = _secure(
    **openapi.body(
        {
            "type": "object",
            "required": ["datasource_id", "value"],
            "properties": {
                "datasource_id": SOURCE_ID,
                "asset": NAME,
                "value": NAME,
                "from": openapi.INSTANT,
                "to": openapi.INSTANT,
                "limit": {"type": "integer", "minimum": 1},
            },
        },
        {
            "datasource_id": "65a1f0c2e4b6a8d0c2e4b6a8",
            "asset": "S1",
            "from": "2025-01-01T00:00:00Z",
            "to": "2025-01-02T00:00:00Z",
            "value": "temperature",
        },
    )
)
