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
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Annotated, Any

import msgspec
import numpy as np
from fastapi import APIRouter, Depends, Request, Response

from sensorbase.auth import access
from sensorbase.dialects import openapi
from sensorbase.dialects.base import authenticate, bearer, dialect_router, services
from sensorbase.dialects.body import (
    FORM,
    JSON_TYPES,
    decode_json,
    parse_json,
    read_body,
    require_media_type,
)
from sensorbase.dialects.oauth import (
    OAUTH_ERROR_SCHEMA,
    exchange,
    render_oauth_error,
    token_reply,
)
from sensorbase.errors import (
    MAX_LISTED_PROBLEMS,
    NotFound,
    PayloadTooLarge,
    Problem,
    SensorbaseError,
    invalid,
)
from sensorbase.ingest.pipeline import WriteOptions
from sensorbase.model import Bucket, PointBatch, SeriesKey
from sensorbase.storage.base import Reader
from sensorbase.times import parse_iso_us

DEFAULT_VALUE_NAME = "none"
# The pipeline's words for the parts of a point, in DiagRAMS's.
WORDS = {"time": "date", "meta": "labels", "source": "sensorId", "field": "valueName"}

SensorId = Annotated[str, msgspec.Meta(min_length=1, max_length=200, pattern=r"\S")]
ValueName = Annotated[str, msgspec.Meta(max_length=200, pattern=r"^[A-Za-z0-9_]+$")]
Labels = list[Any] | dict[str, Any]


class Reading(msgspec.Struct, forbid_unknown_fields=True):
    sensorId: SensorId
    date: str
    value: float
    valueName: ValueName | None = None
    labels: Labels | None = None
    precision: float | None = None


_typed = msgspec.json.Decoder(list[Reading])
_encode = msgspec.json.Encoder()

# What each name must be, and how a refusal explains it.
_FIELDS: dict[str, tuple[Any, str]] = {
    "sensorId": (SensorId, "must be a non-empty string of at most 200 characters"),
    "valueName": (
        ValueName | None,
        "must match [A-Za-z0-9_]+ (letters, digits, underscore; at most 200 characters)",
    ),
    "date": (str, "must be an ISO 8601 date in UTC as a string, e.g. 2020-01-01T08:03:51.000Z"),
    "value": (float, 'must be a JSON number (send 3.14, not "3.14")'),
    "labels": (Labels | None, "must be a JSON array or object"),
    "precision": (float | None, "must be a JSON number"),
}
_REQUIRED = ("sensorId", "date", "value")

# --- errors ------------------------------------------------------------------------------

_CODES = {
    400: "bad_request",
    401: "invalid_token",
    403: "access_denied",
    404: "not_found",
    405: "method_not_allowed",
    408: "request_timeout",
    409: "conflict",
    413: "request_too_large",
    415: "unsupported_media_type",
    422: "bad_request",
    429: "too_many_requests",
    503: "temporarily_unavailable",
}


def render_error(exc: SensorbaseError) -> Response:
    """`{"error", "error_description", "errors"?}`: the OAuth2 form of the token endpoint, with
    every bad reading listed under `errors`."""
    body: dict[str, Any] = {
        "error": _CODES.get(exc.status, "server_error"),
        "error_description": exc.detail,
    }
    if exc.problems:
        body["errors"] = [p.as_dict() for p in exc.problems]
        if exc.problems_unlisted:
            body["errors_total"] = exc.problems_total
    headers = None
    if exc.status == 401:
        headers = {"WWW-Authenticate": 'Bearer realm="sensorbase", error="invalid_token"'}
    return Response(
        _encode.encode(body),
        status_code=exc.status,
        media_type="application/json",
        headers=headers,
    )


# --- decoding ----------------------------------------------------------------------------


def decode(
    body: bytes,
    bucket: str,
    max_points: int,
    check: Callable[[PointBatch], list[Problem]],
) -> PointBatch:
    """The readings of a push as a canonical batch, or InvalidInput listing every bad one.

    `check` is the ingest pipeline's own check of values and times: run here so that its
    refusals name DiagRAMS's `date` and come together with the decoding problems."""
    problems: list[Problem] = []
    origin: list[int] | None = None
    try:
        readings = decode_json(body, _typed)
    except msgspec.ValidationError:
        readings, origin, problems = _walk(body, max_points)
    if len(readings) > max_points:
        raise PayloadTooLarge(f"{len(readings)} readings in one request; the limit is {max_points}")
    if not readings and not problems:
        raise invalid([Problem("holds no reading: a push carries at least one")])
    batch, bad_date = _columns(readings, origin, bucket, problems)
    for problem in check(batch):
        index = problem.index if origin is None or problem.index is None else origin[problem.index]
        if index not in bad_date:
            name = WORDS.get(problem.field or "", problem.field)
            problems.append(Problem(problem.reason, name, index))
    if problems:
        problems.sort(key=lambda p: p.index or 0)
        raise invalid(problems)
    return batch


def _columns(
    readings: list[Reading], origin: list[int] | None, bucket: str, problems: list[Problem]
) -> tuple[PointBatch, set[int]]:
    index: dict[tuple[str, str], int] = {}
    series_index: list[int] = []
    values: list[float] = []
    extras: list[str | None] = []
    has_extra = False
    time_us = np.zeros(len(readings), np.int64)
    parsed: dict[str, int] = {}
    bad_date: set[int] = set()
    for j, r in enumerate(readings):
        name = r.valueName or DEFAULT_VALUE_NAME
        series_index.append(index.setdefault((r.sensorId, name), len(index)))
        values.append(r.value)
        us = parsed.get(r.date)
        if us is None:
            try:
                us = parsed[r.date] = parse_iso_us(r.date, naive_is_utc=True)
            except ValueError as exc:
                at = j if origin is None else origin[j]
                problems.append(Problem(str(exc), "date", at))
                bad_date.add(at)
                us = 0
        time_us[j] = us
        if r.labels is not None or r.precision is not None:
            meta: dict[str, Any] = {}
            if r.labels is not None:
                meta["labels"] = r.labels
            if r.precision is not None:
                meta["precision"] = r.precision
            extras.append(_encode.encode({"meta": meta}).decode())
            has_extra = True
        else:
            extras.append(None)
    batch = PointBatch(
        keys=[SeriesKey(bucket, sensor, name) for sensor, name in index],
        series_index=np.array(series_index, np.int32),
        time_us=time_us,
        value=np.array(values, np.float64),
        extra=extras if has_extra else None,
    )
    return batch, bad_date


def _walk(body: bytes, max_points: int) -> tuple[list[Reading], list[int], list[Problem]]:
    """A body the typed decoder refused, reading by reading: the good readings, their
    indices, and every problem of the bad ones (each bad name of each reading)."""
    items = parse_json(body)
    if not isinstance(items, list):
        raise invalid([Problem("the body must be a JSON array of readings")])
    if len(items) > max_points:  # before any reading is looked at: refusing costs no more
        raise PayloadTooLarge(f"{len(items)} readings in one request; the limit is {max_points}")
    good: list[Reading] = []
    origin: list[int] = []
    problems: list[Problem] = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            problems.append(Problem("each reading must be a JSON object", None, i))
            continue
        if len(problems) >= MAX_LISTED_PROBLEMS and not _plausible(item):
            # Past what a refusal lists, bad readings are only counted: cheaply, by type.
            problems.append(Problem("is not a valid reading", None, i))
            continue
        found = len(problems)
        for name in _REQUIRED:
            if name not in item:
                problems.append(Problem("is required", name, i))
        for name, given in item.items():
            if name not in _FIELDS:
                known = ", ".join(_FIELDS)
                problems.append(Problem(f"is not a known name (known: {known})", name, i))
                continue
            kind, reason = _FIELDS[name]
            try:
                msgspec.convert(given, kind, strict=True)
            except msgspec.ValidationError:
                problems.append(Problem(f"{reason}; got {_shown(given)}", name, i))
                continue
            if isinstance(given, float) and not math.isfinite(given):
                problems.append(Problem("must be a finite number", name, i))
        if len(problems) == found:
            good.append(msgspec.convert(item, Reading, strict=True))
            origin.append(i)
        elif isinstance(item.get("date"), str):
            try:
                parse_iso_us(item["date"], naive_is_utc=True)
            except ValueError as exc:
                problems.append(Problem(str(exc), "date", i))
    return good, origin, problems


_PLAIN: dict[str, tuple[type, ...]] = {
    "sensorId": (str,),
    "date": (str,),
    "value": (int, float),
    "valueName": (str, type(None)),
    "labels": (list, dict, type(None)),
    "precision": (int, float, type(None)),
}


def _plausible(item: dict[str, Any]) -> bool:
    """Whether a reading could be good, by the types of its members alone."""
    return all(name in item for name in _REQUIRED) and all(
        type(value) in _PLAIN.get(name, ()) for name, value in item.items()
    )


def _shown(given: Any) -> str:
    text = json.dumps(given)
    return text if len(text) <= 40 else text[:37] + "..."


# --- routes ------------------------------------------------------------------------------

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error", "error_description"],
    "properties": {
        "error": {"type": "string"},
        "error_description": {"type": "string"},
        "errors": {"type": "array", "items": {"type": "object"}},
        "errors_total": {"type": "integer"},
    },
}
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
    svc = services(request)
    who = authenticate(request, bearer(request))
    # The document's own curl example loses its Content-Type header (`-H -H "Content-Type:
    # ..."`), so `-d` sends its JSON as a form type: taken, and read as the JSON it is.
    require_media_type(request.headers.get("content-type"), (*JSON_TYPES, FORM))

    def find(reader: Reader) -> Bucket:
        # Another organisation's id answers exactly as an id that does not exist.
        org = reader.get_org_by_id(who.org_id)
        if org is None or org.key != organisation_id:
            raise NotFound(f"organisation '{organisation_id}' not found")
        return access.bucket(reader, who, ml_project, "data:write")

    bucket = await svc.read(find)
    body = await read_body(request, svc.settings.max_body_bytes)
    batch = decode(body, bucket.key, svc.settings.max_points_per_request, svc.ingest.check)
    outcome = await svc.ingest.write(
        who,
        batch,
        WriteOptions(),
    )
    reply = {"points": outcome.receipt.points, "series": outcome.receipt.series}
    return Response(_encode.encode(reply), status_code=201, media_type="application/json")


def router() -> APIRouter:
    combined = APIRouter()
    combined.include_router(_tokens)
    combined.include_router(_data)
    return combined
