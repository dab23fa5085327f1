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
from sensorbase.dialects.native.points_json import (
    EPOCHS,
    epoch_times,
    points_json,
    times_json,
    values_json,
)
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
        "enum": ["json", "columns", "csv", ""],
        "description": "json (default; also when empty: an object a point), columns (JSON, "
        "an array a column: time, value) or csv (or Accept: text/csv)",
    },
    "epoch": {
        "type": "string",
        "enum": list(EPOCHS),
        "description": "Times as integers since 1970 in this unit (floored), not ISO 8601",
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
    epoch = options.pop("epoch") or None
    problems = []
    if output not in ("json", "columns", "csv"):
        problems.append(Problem("must be json, columns or csv", "format"))
    if epoch is not None and epoch not in EPOCHS:
        problems.append(Problem(f"must be one of {', '.join(EPOCHS)}", "epoch"))
    if problems:
        raise invalid(problems)
    if type(options.get("fill")) in (int, float):
        options["fill"] = repr(options["fill"])  # a JSON number: the fill value
    spec = parse_spec(**options)

    result = await service.query(who, spec)
    reply = Reply(spec, columns=output == "columns", epoch=epoch)
    if output == "csv":
        return Response(reply.csv(result), media_type="text/csv")
    return msgspec.json.encode(reply.json(result))


def _carried(extra: str | bytes | None) -> dict[str, Any]:
    """What a point carries beside its value, under the names the reply gives them."""
    if not extra:
        return {}
    carried: dict[str, Any] = msgspec.json.decode(extra)
    if "lat" in carried:
        carried["latitude"], carried["longitude"] = carried.pop("lat"), carried.pop("lon")
    return carried


class Reply:
    """A query's result as its reply shows it: JSON (an object a point, or `columns`: an array
    a column) or CSV, times as ISO 8601 text or as integers of an `epoch` unit."""

    def __init__(self, spec: QuerySpec, columns: bool = False, epoch: str | None = None):
        self.spec, self.columns, self.epoch = spec, columns, epoch

    def times(self, time_us: Any) -> list[Any]:
        return format_many(time_us) if self.epoch is None else epoch_times(time_us, self.epoch)

    def time(self, time_us: int) -> str | int:
        return format_us(time_us) if self.epoch is None else self.times(_array([time_us]))[0]

    def points(self, result: SeriesResult) -> tuple[str, Any]:
        """The series' points, under the member that holds them: without extras (the usual
        case) encoded straight from the columns (points_json.py), with them one object (or
        one column) a name."""
        pts = result.points
        if pts is None or not len(pts):
            return ("columns", {"time": [], "value": []}) if self.columns else ("points", [])
        if pts.extra is None:
            if self.columns:
                column = msgspec.Raw(times_json(pts.time_us, self.epoch))
                return "columns", {"time": column, "value": msgspec.Raw(values_json(pts.value))}
            return "points", msgspec.Raw(points_json(pts.time_us, pts.value, self.epoch))
        times, values = self.times(pts.time_us), pts.value.tolist()
        carried = [_carried(e) for e in pts.extra]
        if not self.columns:
            rows = zip(times, values, carried, strict=True)
            return "points", [{"time": t, "value": v, **c} for t, v, c in rows]
        names = dict.fromkeys(name for c in carried for name in c)  # first seen first
        extras = {name: [c.get(name) for c in carried] for name in names}
        return "columns", {"time": times, "value": values, **extras}

    def buckets(self, rows: list[Any]) -> tuple[str, Any]:
        starts = self.times(_array([row.start_us or 0 for row in rows]))
        if self.columns:
            named = {name: [row.values.get(name) for row in rows] for name in self.spec.aggregates}
            return "columns", {"time": starts, **named}
        return "buckets", [{"time": t, **row.values} for t, row in zip(starts, rows, strict=True)]

    def json(self, result: QueryResult) -> dict[str, Any]:
        return {"series": [self.series(item) for item in result.series],
                "next_cursor": result.next_cursor}  # fmt: skip

    def series(self, item: SeriesResult) -> dict[str, Any]:
        spec, ref = self.spec, item.series
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
                name, buckets = self.buckets(item.aggregates)
                entry[name] = buckets
            if item.summaries_until_us is not None:  # what expired answered from summaries
                entry["summaries_until"] = self.time(item.summaries_until_us)
        elif spec.mode == "m4":
            pts = item.points
            assert pts is not None
            times = times_json(pts.time_us, self.epoch)
            entry["m4"] = {"time": msgspec.Raw(times), "value": msgspec.Raw(values_json(pts.value))}
        else:
            name, points = self.points(item)
            entry[name] = points
        return entry

    def csv(self, result: QueryResult) -> str:
        """A row a point (bucket, source, field, time, value) or a row a bucket of
        aggregates (bucket, source, field, time, and a column an aggregate)."""
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        aggregates = self.spec.aggregates if self.spec.mode == "aggregate" else None
        writer.writerow(["bucket", "source", "field", "time", *(aggregates or ["value"])])
        for item in result.series:
            ref = item.series
            if aggregates is not None:
                rows = item.aggregates or []
                starts = self.times(_array([r.start_us or 0 for r in rows]))
                for row, t in zip(rows, starts, strict=True):
                    when = t if row.start_us is not None else ""
                    values = (row.values.get(a) for a in aggregates)
                    writer.writerow([ref.bucket, ref.source, ref.field, when, *values])
            elif item.points is not None and len(item.points):
                pts = item.points
                for t, v in zip(self.times(pts.time_us), pts.value.tolist(), strict=True):
                    writer.writerow([ref.bucket, ref.source, ref.field, t, v])
        return out.getvalue()


def _array(values: list[int]) -> Any:
    import numpy as np

    return np.array(values, np.int64)
