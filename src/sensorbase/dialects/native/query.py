"""`GET|POST /v1/query`: raw ranges, latest values, aggregates and M4 (a chart's points), as
JSON or CSV. `GET` is also a fast lane (dialects/lane.py): a dashboard's reads skip FastAPI's
routing and dependencies, as the write does."""

from __future__ import annotations

import csv
import io
import re
from typing import Any

import msgspec
from fastapi import Depends, Request, Response

from sensorbase.auth import access
from sensorbase.auth.keys import Principal
from sensorbase.dialects import openapi
from sensorbase.dialects.base import query_of, services
from sensorbase.dialects.body import parse_json, read_body, require_media_type
from sensorbase.dialects.lane import Call, as_route, response
from sensorbase.dialects.native.deps import principal
from sensorbase.dialects.native.points_json import points_json
from sensorbase.dialects.native.problems import native_router
from sensorbase.errors import Problem, invalid
from sensorbase.model import SeriesResult
from sensorbase.query.fill import FILL_HELP, FILL_PATTERN
from sensorbase.query.reducers import NAMES, PERCENTILE_PATTERN
from sensorbase.query.service import QueryResult, QueryService
from sensorbase.query.spec import (
    EVERY_PATTERN,
    MAX_WIDTH,
    MODES,
    Exact,
    QuerySpec,
    parse_spec,
    time_zones,
)
from sensorbase.settings import Settings
from sensorbase.times import format_many, format_us

router = native_router()
_MAX_LIMIT = Settings.model_fields["max_result_points"].default
# What each name takes, as a GET parameter or a member of the POST body (parse_spec checks it).
_NAMES: dict[str, openapi.Schema] = {
    "bucket": {"type": "string", "description": "Bucket key; without it, every bucket seen"},
    "source": {"type": "string", "description": "Source key(s): repeated, or a,b"},
    "field": {"type": "string", "description": "Field name(s): repeated, or a,b"},
    "start": {**openapi.INSTANT, "description": "Inclusive start: ISO 8601 or epoch"},
    "end": {**openapi.INSTANT, "description": "Exclusive end: ISO 8601 or epoch"},
    "last": openapi.DURATION,
    "mode": {
        "type": "string",
        "enum": list(MODES),
        "description": "raw (default), latest, aggregate, or m4 (a chart's points: width)",
    },
    "width": {
        "type": "integer",
        "minimum": 1,
        "maximum": MAX_WIDTH,
        "description": "mode=m4: the chart's width in pixels (columns of the range)",
    },
    "aggregate": {
        **openapi.comma_list((*NAMES, PERCENTILE_PATTERN)),
        "description": f"{','.join(NAMES)}, or a percentile p0 to p100 (p50, p99.9): "
        "repeated, or a,b. The last eight read every point of the range (exact; at most "
        "SENSORBASE_MAX_SCAN_POINTS); stddev is the sample's; rate is per second",
    },
    "fill": {
        "type": "string",
        "pattern": FILL_PATTERN,
        "description": f"Empty buckets (with every): {FILL_HELP}",
    },
    "integral_unit": {
        **openapi.DURATION,
        "description": "The time unit of integral: 1s (default), 1h gives kWh from kW",
    },
    "every": {
        "type": "string",
        "pattern": EVERY_PATTERN,
        "description": "Bucket width: 1 to 999999999 of s, m, h or d, w, mo, y (calendar)",
    },
    "tz": {
        "type": "string",
        "enum": list(time_zones()),
        "description": "IANA zone of calendar buckets (Europe/Paris)",
    },
    "limit": {
        "type": "integer",
        "minimum": 1,
        "maximum": _MAX_LIMIT,
        "description": "Most points (raw) or per series (latest); "
        f"at most SENSORBASE_MAX_RESULT_POINTS ({_MAX_LIMIT})",
    },
    "order": {"type": "string", "enum": ["asc", "desc"]},
    "cursor": {
        "type": "string",
        "pattern": "^[A-Za-z0-9_-]*$",
        "description": "next_cursor of the previous page",
    },
    "format": {
        "type": "string",
        "enum": ["json", "csv", ""],
        "description": "json (default; also when empty) or csv (or Accept: text/csv)",
    },
}
_INTEGERS = ("limit", "width")
_LISTS = ("source", "field", "aggregate")  # a GET parameter repeated, or a body list
_PARAMETERS = [
    openapi.parameter(
        name,
        {"type": "array", "items": schema} if name in _LISTS else schema,
        schema.get("description"),
    )
    for name, schema in _NAMES.items()
]
_BODY = openapi.body(
    {
        "type": "object",
        "description": "The same names as the GET parameters; null is absent",
        "properties": {
            name: openapi.nullable(
                {"anyOf": [schema, {"type": "array", "items": schema}]}
                if name in _LISTS
                else {"anyOf": [schema, {"type": "number"}]}  # fill's number, as JSON too
                if name == "fill"
                else schema
            )
            for name, schema in _NAMES.items()
        },
    },
    {"bucket": "farm", "field": "temperature", "aggregate": "avg", "every": "1d", "last": "7d"},
)
_CSV = {"text/csv": {"schema": {"type": "string"}}}
_REPLY = {200: {"description": "The series, as JSON or CSV (format=csv)", "content": _CSV}}
_COUNT = re.compile("[0-9]{1,18}")


def _positive(name: str, text: str) -> int:
    if not _COUNT.fullmatch(text) or int(text) == 0:
        raise invalid([Problem("must be a positive integer", name)])
    return int(text)


@router.get(
    "/query",
    summary="Query points",
    openapi_extra={"parameters": _PARAMETERS, "security": [{"HTTPBearer": []}]},
    responses=_REPLY,
)
async def query_get(request: Request) -> Response:
    return await as_route(request, query_points)


async def query_points(call: Call) -> bytes | Response:
    """The GET query, as the route and the fast lane both answer it."""
    who = call.authenticate(sessions=True, changes_state=False)
    given = call.params
    options: dict[str, Any] = {name: given.get(name) for name in _NAMES if name not in _LISTS}
    options.update({name: call.param_list(name) or None for name in _LISTS})
    for name in _INTEGERS:
        if options[name] is not None:
            options[name] = _positive(name, options[name])
    return await _answer(call.header(b"accept"), options, who, call.services.query)


@router.post(
    "/query",
    summary="Query points (parameters in a JSON body)",
    openapi_extra=_BODY,
    responses=_REPLY,
)
async def query_post(
    request: Request,
    who: Principal = Depends(principal),
    service: QueryService = Depends(query_of),
) -> Response:
    require_media_type(request.headers.get("content-type"))
    raw = await read_body(request, services(request).settings.max_body_bytes)
    body = parse_json(raw)
    if not isinstance(body, dict):
        raise invalid([Problem("the body must be a JSON object of the GET parameters' names")])
    options = {name: body.get(name) for name in _NAMES}
    problems = [
        Problem(_EXPECTED[name], name)
        for name, value in options.items()
        if value is not None and not _typed(name, value)
    ]
    if problems:
        raise invalid(problems)
    for name in ("source", "field"):  # a list's names whole: a source key may hold a comma
        names = options[name]
        if isinstance(names, list):
            options[name] = Exact(names)
    return response(await _answer(request.headers.get("accept"), options, who, service))


_EXPECTED = {
    name: "must be an integer"
    if name in _INTEGERS
    else "must be a string or a list of strings"
    if name in _LISTS
    else "must be a string or a number"
    if name == "fill"
    else "must be a string"
    for name in _NAMES
}


def _typed(name: str, value: Any) -> bool:
    """Whether a body member has its JSON type (the GET parameter's, or a list of strings)."""
    if name in _INTEGERS:
        return type(value) is int
    if name in _LISTS and isinstance(value, list):
        return all(isinstance(item, str) for item in value)
    if name == "fill" and type(value) in (int, float):
        return True  # converted by _answer
    return isinstance(value, str)


async def _answer(
    accept: str | None, options: dict[str, Any], who: Principal, service: QueryService
) -> bytes | Response:
    access.require(who, "data:read")  # before the spec is parsed: a 403 says more than a 400
    output = options.pop("format") or ("csv" if "text/csv" in (accept or "") else "json")
    if output not in ("json", "csv"):
        raise invalid([Problem("must be json or csv", "format")])
    if type(options.get("fill")) in (int, float):
        options["fill"] = repr(options["fill"])  # a JSON number: the fill value
    spec = parse_spec(**options)

    result = await service.query(who, spec)
    if output == "csv":
        return Response(render_csv(result, spec), media_type="text/csv")
    return msgspec.json.encode(render_json(result, spec))


def _points(result: SeriesResult) -> list[dict[str, Any]] | msgspec.Raw:
    """The series' points as the reply lists them: without extras (the usual case) encoded
    straight from the columns (points_json.py), with them one object a point."""
    pts = result.points
    if pts is None or not len(pts):
        return []
    if pts.extra is None:
        return msgspec.Raw(points_json(pts.time_us, pts.value))
    times = format_many(pts.time_us)
    values = pts.value.tolist()
    out = []
    for t, v, e in zip(times, values, pts.extra, strict=True):
        point: dict[str, Any] = {"time": t, "value": v}
        if e:
            carried = msgspec.json.decode(e)
            if "lat" in carried:
                point["latitude"], point["longitude"] = carried.pop("lat"), carried.pop("lon")
            point.update(carried)
        out.append(point)
    return out


def render_json(result: QueryResult, spec: QuerySpec) -> dict[str, Any]:
    series = []
    for item in result.series:
        ref = item.series
        entry: dict[str, Any] = {
            "bucket": ref.bucket,
            "source": ref.source,
            "field": ref.field,
            "unit": ref.unit,
        }
        if item.aggregates is not None:
            if spec.every is None:
                entry["aggregates"] = item.aggregates[0].values if item.aggregates else {}
            else:
                starts = [row.start_us or 0 for row in item.aggregates]
                entry["buckets"] = [
                    {"time": t, **row.values}
                    for t, row in zip(format_many(_array(starts)), item.aggregates, strict=True)
                ]
            if item.summaries_until_us is not None:  # what expired answered from summaries
                entry["summaries_until"] = format_us(item.summaries_until_us)
        elif spec.mode == "m4":
            pts = item.points
            assert pts is not None
            entry["m4"] = {"time": format_many(pts.time_us), "value": pts.value.tolist()}
        else:
            entry["points"] = _points(item)
        series.append(entry)
    return {"series": series, "next_cursor": result.next_cursor}


def render_csv(result: QueryResult, spec: QuerySpec) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    if spec.mode == "aggregate":
        writer.writerow(["bucket", "source", "field", "time", *spec.aggregates])
        for item in result.series:
            ref = item.series
            rows = item.aggregates or []
            starts = format_many(_array([r.start_us or 0 for r in rows])) if rows else []
            for row, t in zip(rows, starts, strict=True):
                when = t if row.start_us is not None else ""
                writer.writerow(
                    [
                        ref.bucket,
                        ref.source,
                        ref.field,
                        when,
                        *(row.values.get(a) for a in spec.aggregates),
                    ]
                )
        return out.getvalue()
    writer.writerow(["bucket", "source", "field", "time", "value"])
    for item in result.series:
        ref = item.series
        if item.points is None or not len(item.points):
            continue
        for t, v in zip(format_many(item.points.time_us), item.points.value.tolist(), strict=True):
            writer.writerow([ref.bucket, ref.source, ref.field, t, v])
    return out.getvalue()


def _array(values: list[int]) -> Any:
    import numpy as np

    return np.array(values, np.int64)
