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
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from sensorbase.auth import access
from sensorbase.auth.keys import Principal
from sensorbase.auth.users import check_password
from sensorbase.dialects import openapi
from sensorbase.dialects.base import (
    authenticate,
    bearer,
    client_address,
    dialect_router,
    services,
)
from sensorbase.dialects.body import (
    FORM,
    JSON_TYPES,
    parse_form,
    parse_json,
    read_body,
    require_media_type,
)
from sensorbase.dialects.madevo.records import TIMESTAMP, build, encode, envelope, refuse
from sensorbase.dialects.madevo.schema import META_KEY, observe, plan, schema_of
from sensorbase.errors import Conflict, InvalidInput, NotFound, Problem, SensorbaseError
from sensorbase.ingest.pipeline import WriteOptions
from sensorbase.model import Bucket, User
from sensorbase.storage.base import Reader

INSERTED = "Data successfully inserted"
CODES = {
    400: "validation_error",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    408: "request_timeout",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
    503: "service_unavailable",
}


# --- errors ------------------------------------------------------------------------------


ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error", "message"],
    "properties": {
        "error": {"type": "string"},
        "message": {"type": "string"},
        "details": {"type": "array", "items": {"type": "object"}},
        "details_total": {"type": "integer"},
    },
}


def render_error(exc: SensorbaseError) -> Response:
    body: dict[str, Any] = {"error": CODES.get(exc.status, "internal_error"), "message": exc.detail}
    if exc.problems:
        body["details"] = [p.as_dict("row", "column") for p in exc.problems]
        if exc.problems_unlisted:
            body["details_total"] = exc.problems_total
    headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
    return Response(
        encode.encode(body), status_code=exc.status, media_type="application/json", headers=headers
    )


# --- routes  --------------------------------------------------------------------------------------


def _datasource(reader: Reader, who: Principal, source_id: str) -> Bucket:
    """The caller's data source: another organisation's answers exactly as a missing one."""
    try:
        return access.bucket(reader, who, source_id, "data:write")
    except NotFound:
        raise NotFound(f"data source '{source_id}' not found") from None


async def insert(request: Request) -> dict[str, Any]:
    svc = services(request)
    who = authenticate(request, bearer(request))
    require_media_type(request.headers.get("content-type"))
    raw = await read_body(request, svc.settings.max_body_bytes)
    source_id, records = envelope(raw, svc.settings.madevo_max_records)
    bucket = await svc.read(lambda r: _datasource(r, who, source_id))
    seen = observe(records)
    planned = plan(schema_of(bucket), seen, records, source_id)
    skip = {p.index for p in seen.problems + planned.problems if p.index is not None}
    built = build(records, planned.roles, seen.narrow, source_id, skip)
    problems = seen.problems + planned.problems + built.problems
    if not problems:
        for p in svc.ingest.check(built.batch):
            point = p.index or 0
            column = TIMESTAMP if p.field == "time" else built.column[point]
            problems.append(Problem(p.reason, column, built.row[point]))
    if problems:
        raise refuse(problems)

    def keep_schema(fresh: Bucket) -> dict[str, Any] | None:
        # Inside the write's transaction: the schema this request was built against must still
        # hold, and a grown schema is stored with the points or not at all.
        stored = schema_of(fresh)
        again = plan(stored, seen, records, source_id)
        if again.problems:
            raise refuse(again.problems)
        if again.roles != planned.roles:
            raise Conflict(f"the schema of data source '{source_id}' changed meanwhile; retry")
        if again.schema != stored:
            return {**fresh.meta, META_KEY: again.schema.meta()}
        return None

    options = WriteOptions(
        bucket_meta=(source_id, keep_schema),
    )
    await svc.ingest.write(who, built.batch, options)
    return {"message": INSERTED, "count": len(records)}


async def _credentials(request: Request) -> dict[str, Any]:
    kind = require_media_type(
        request.headers.get("content-type"), (*JSON_TYPES, FORM), missing_ok=True
    )
    raw = await read_body(request, 64 * 1024)
    if kind == FORM:
        return parse_form(raw)
    body = parse_json(raw) if raw else {}
    if not isinstance(body, dict):
        raise InvalidInput('the body must be a JSON object {"email", "password"}')
    return body


async def login(request: Request) -> dict[str, Any]:
    svc = services(request)
    body = await _credentials(request)
    problems = [
        Problem("is required (a string)", name)
        for name in ("email", "password")
        if not isinstance(body.get(name), str) or not body[name]
    ]
    if problems:
        raise refuse(problems, InvalidInput)
    email, password = str(body["email"]), str(body["password"])
    request.state.rate = svc.rate.hit(f"login:{email.lower()}")  # limited per email, like a key

    async def attempt() -> User:
        return await svc.read(lambda r: check_password(r, email, password))

    user = await svc.failures.sign_in(email, client_address(request), attempt)
    token, _ = svc.tokens.user_token(user)
    return {"token": token, "expires_in": svc.tokens.access_ttl_s}


async def refresh_token(request: Request) -> dict[str, Any]:
    svc = services(request)
    token, _ = svc.tokens.renew(authenticate(request, bearer(request)))
    return {"token": token, "expires_in": svc.tokens.access_ttl_s}


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


def router() -> APIRouter:
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
    return routes
