"""Madevo: push records into a data source; sign in with email and password.

    POST /restapi/datasource/insert   (PATCH too)   Authorization: Bearer <token>
    {
      "datasource_id": "67890",
      "data": [
        {
          "timestamp": "2025-01-01T12:00:00Z",
          "metric": "temperature",
          "value": 22.5
        }
      ]
    }
    → 200 {"message": "Data successfully inserted", "count": 1}

    POST /restapi/login {"email": "...", "password": "..."}   → {"token": "..."}
    POST /restapi/refresh-token   Authorization: Bearer <token> → {"token": "..."}

How Madevo maps onto Sensorbase (docs/dialects/madevo.md says it at length):

- A data source is a bucket whose key is the `datasource_id`. It must exist (create it with
  `POST /v1/buckets`); another organisation's id answers exactly as a missing one (404).
- A data source is a table: its schema is column → type ("number" or "string") plus at most one
  entity column, kept in the bucket's `meta.madevo`. Declared there when the bucket is created
  (then undeclared columns are refused), or else inferred from the first insert and grown by later
  ones. A column never changes its type: a row that tries is refused (422, row and column named).
- Records are narrow (`{timestamp, metric | metric_name, value, ...}`) or wide
  (`{timestamp, <entity>?, m1, m2, ...}`). The entity column is `entity_id`, else the first column
  named `*_id`; its value is the source key (no entity: the source whose key is the data source id).
  A metric is a field: in a narrow record the `metric`/`metric_name` value, in a wide one each
  number column. Values are JSON numbers or numeric strings. Every other column is a dimension,
  kept with the record's points as `{"meta": {column: value}}`.
- Errors: `{"error": "<code>", "message": "...", "details": [{"row", "column", "reason"}]}`.

    errors.py    the error shape and the words of a refused record
    settings.py  Madevo's settings (SENSORBASE_MADEVO_*)
    records.py   the insert body: envelope, records, columns
    schema.py    a data source's columns and their types, declared or inferred
    write.py     POST|PATCH /restapi/datasource/insert
    signin.py    POST /restapi/login, POST /restapi/refresh-token
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from sensorbase.dialects import openapi
from sensorbase.dialects.base import dialect_router
from sensorbase.dialects.lane import Lane
from sensorbase.dialects.madevo import v1
from sensorbase.dialects.madevo.errors import ERROR_SCHEMA, render_error
from sensorbase.dialects.madevo.records import TIMESTAMP
from sensorbase.dialects.madevo.settings import MadevoSettings
from sensorbase.dialects.madevo.signin import login, refresh_token
from sensorbase.dialects.madevo.write import insert_endpoint, insert_route

# What `envelope` and the records' planning take. Which columns a data source holds, and their
# types, are stored data (declared, or fixed by earlier inserts): a schema says only this much.
_RECORD = {
    "type": "object",
    "description": "{timestamp, metric | metric_name, value, ...} (narrow) or "
    "{timestamp, <entity>?, m1, m2, ...} (wide); a column keeps its type",
    "required": [TIMESTAMP],
    "properties": {TIMESTAMP: openapi.DATE_TIME},
    "propertyNames": openapi.NONBLANK,
    "additionalProperties": {"type": ["number", "string", "null"]},
}
_INSERT_DOC = {
    **openapi.body(
        {
            "type": "object",
            "required": ["datasource_id", "data"],
            "properties": {
                "datasource_id": {
                    "anyOf": [openapi.NONBLANK, {"type": "integer"}],
                    "description": "The data source: a bucket's key (an integer is read as text)",
                },
                "data": {
                    "type": "array",
                    "minItems": 1,
                    "items": _RECORD,
                    "description": "At most SENSORBASE_MADEVO_MAX_RECORDS records (1000; 413)",
                },
            },
        },
        {
            "datasource_id": "67890",
            "data": [{"timestamp": "2025-01-01T12:00:00Z", "metric": "temperature", "value": 22.5}],
        },
    ),
    "security": [{"HTTPBearer": []}],
}
_LOGIN_DOC = openapi.form_or_json(
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


def router(settings: MadevoSettings | None = None) -> APIRouter:
    """Both generations: /restapi, and /api/v1 (v1/)."""
    settings = settings or MadevoSettings()
    insert = insert_route(settings)
    routes = dialect_router(
        "madevo", render_error, prefix="/restapi", tags=["madevo"], error_schema=ERROR_SCHEMA
    )
    for method in ("POST", "PATCH"):
        routes.add_api_route(
            "/datasource/insert",
            insert,
            methods=[method],
            name=f"madevo_insert_{method.lower()}",
            operation_id=f"madevo_insert_{method.lower()}",
            summary="Insert records into a data source",
            openapi_extra=_INSERT_DOC,
            response_model=dict[str, Any],  # (the reply's schema, as when it returned a dict)
        )
    routes.add_api_route(
        "/login", login, methods=["POST"], summary="Sign in: a user token", openapi_extra=_LOGIN_DOC
    )
    routes.add_api_route(
        "/refresh-token",
        refresh_token,
        methods=["POST"],
        summary="A fresh token for a valid one",
        openapi_extra={"security": [{"HTTPBearer": []}]},
    )
    both = APIRouter()
    both.include_router(routes)
    both.include_router(v1.router(settings))
    return both


def fast_lanes() -> dict[tuple[str, str], Lane]:
    """/restapi's insert, answered before FastAPI's routing (dialects/lane.py), with the
    settings `router()` takes from the environment. (/api/v1's insert, which tells the
    streams' hub, stays a route.)"""
    lane = Lane("madevo", render_error, insert_endpoint(MadevoSettings()))
    return {(method, "/restapi/datasource/insert"): lane for method in ("POST", "PATCH")}
