"""`POST /api/data/query`: data points of a bucket (or one data source), raw or aggregated,
with dakkio's automatic downsampling.

Rows are data points as dakkio shows them: one per (data source, timestamp), gathering the
values of every series of that source at that instant, whichever dialect wrote them
(QueryService.rows). Aggregates and the automatic downsampling are QueryService's modes too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

import msgspec
import numpy as np
from fastapi import Depends, Request, Response

from sensorbase.auth.keys import Principal
from sensorbase.catalog import Catalog
from sensorbase.catalog.buckets import EVERY
from sensorbase.dialects import openapi
from sensorbase.dialects.base import catalog_of, dialect_router, query_of
from sensorbase.dialects.dakkio.body import json_body
from sensorbase.dialects.dakkio.credential import admin_principal, require
from sensorbase.dialects.dakkio.dates import time_text, time_texts
from sensorbase.dialects.dakkio.errors import (
    ERROR_SCHEMA,
    MISSING,
    Details,
    expected,
    invalid_at,
    json_reply,
    render_error,
)
from sensorbase.dialects.dakkio.ids import point_id
from sensorbase.limits import MAX_OFFSET
from sensorbase.model import SeriesRef, Source, TimeRange
from sensorbase.query.service import QueryService
from sensorbase.query.spec import Every, QuerySpec
from sensorbase.times import parse_iso_us

router = dialect_router("dakkio", render_error, tags=["dakkio"], error_schema=ERROR_SCHEMA)
AGGREGATIONS = ("avg", "min", "max", "sum", "count")
GROUPS: dict[str, tuple[Every, int]] = {  # groupBy → (bucket width, its typical length in µs)
    "minute": (Every(1, "m"), 60_000_000),
    "hour": (Every(1, "h"), 3_600_000_000),
    "day": (Every(1, "d"), 86_400_000_000),
    "week": (Every(1, "w"), 7 * 86_400_000_000),
    "month": (Every(1, "mo"), 2_629_746_000_000),
}
DEFAULT_LIMIT = 1000
MAX_LIMIT = 10_000
DOWNSAMPLE_ABOVE = 500  # rows; dakkio's "about 500 points"
# What `parse_query` takes: the filters in `filters` or, for clients that send them flat, at
# the top level (`filters` wins); null is absent; other members are ignored.
_FILTERS: dict[str, Any] = {
    "dataSourceId": openapi.nullable({"type": "string", "minLength": 1}),
    "startTime": openapi.nullable(openapi.DATE_TIME),
    "endTime": openapi.nullable({**openapi.DATE_TIME, "description": "Inclusive"}),
    "limit": openapi.nullable({"type": "integer", "minimum": 1, "maximum": MAX_LIMIT}),
    "offset": openapi.nullable({"type": "integer", "minimum": 0, "maximum": MAX_OFFSET}),
    "order": openapi.nullable({"type": "string", "enum": ["asc", "desc"]}),
}
QUERY_SCHEMA = {
    "type": "object",
    "required": ["bucketId"],
    "properties": {
        "bucketId": {"type": "string", "minLength": 1},
        "filters": openapi.nullable({"type": "object", "properties": _FILTERS}),
        "aggregation": openapi.nullable({"type": "string", "enum": list(AGGREGATIONS)}),
        "groupBy": openapi.nullable({"type": "string", "enum": list(GROUPS)}),
        **{name: {"description": f"As filters.{name}, when filters lacks it"} for name in _FILTERS},
    },
    # A filter at the top level counts only when `filters` does not hold it.
    "allOf": [
        {
            "if": {
                "required": ["filters"],
                "properties": {"filters": {"type": "object", "required": [name]}},
            },
            "else": {"properties": {name: schema}},
        }
        for name, schema in _FILTERS.items()
    ],
}
_decode_extra = msgspec.json.Decoder()


@dataclass(slots=True)
class QueryIn:
    bucket: str
    source: str | None
    start_us: int | None
    end_us: int | None  # inclusive, as sent
    start_text: str | None
    end_text: str | None
    limit: int
    offset: int
    order: str
    aggregation: str | None
    group_by: str | None


@dataclass(slots=True)
class Rows:
    data: list[dict[str, Any]] = field(default_factory=list)
    has_more: bool = False
    aggregation: str | None = None
    group_by: str | None = None
    downsampled: bool = False


def _enum(
    value: Any, allowed: tuple[str, ...], path: list[str | int], details: Details
) -> str | None:
    if value is None:
        return None
    if value not in allowed:
        options = " | ".join(f"'{a}'" for a in allowed)
        shown = f"'{value}'" if isinstance(value, str) else str(value)
        details.add(path, f"Invalid enum value. Expected {options}, received {shown}")
        return None
    return str(value)


def parse_query(body: Any) -> QueryIn:
    """Filters are read from `filters` and, for clients that send them flat, from the top level."""
    details = Details()
    if not isinstance(body, dict):
        details.add(["body"], expected("object", body))
        raise details.error()
    bucket = body.get("bucketId", MISSING)
    if not isinstance(bucket, str) or not bucket:
        details.add(
            ["body", "bucketId"],
            expected("string", bucket)
            if not isinstance(bucket, str)
            else "String must contain at least 1 character(s)",
        )
    filters = body.get("filters", {})
    if filters is None:
        filters = {}
    if not isinstance(filters, dict):
        details.add(["body", "filters"], expected("object", filters))
        filters = {}

    def pick(name: str) -> tuple[Any, list[str | int]]:
        if name in filters:
            return filters[name], ["body", "filters", name]
        return body.get(name), ["body", name]

    source, path = pick("dataSourceId")
    if source is not None and (not isinstance(source, str) or not source):
        details.add(
            path,
            expected("string", source)
            if not isinstance(source, str)
            else "String must contain at least 1 character(s)",
        )
    times: dict[str, int | None] = {}
    texts: dict[str, str | None] = {}
    for name in ("startTime", "endTime"):
        value, path = pick(name)
        times[name] = texts[name] = None
        if value is None:
            continue
        if not isinstance(value, str):
            details.add(path, expected("string", value))
            continue
        try:
            times[name] = parse_iso_us(value.upper(), naive_is_utc=True)
            texts[name] = value
        except ValueError:
            details.add(path, "Invalid datetime (expected ISO 8601, e.g. 2024-01-15T10:30:00Z)")
    start, end = times["startTime"], times["endTime"]
    if start is not None and end is not None and end < start:
        details.add(["body", "filters", "endTime"], "endTime must not be before startTime")
    numbers = {}
    for name, default, low, high in (
        ("limit", DEFAULT_LIMIT, 1, MAX_LIMIT),
        ("offset", 0, 0, MAX_OFFSET),
    ):
        value, path = pick(name)
        numbers[name] = default
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float):
            details.add(path, expected("number", value))
        elif not math.isfinite(value):
            details.add(path, "Number must be finite")
        elif value != int(value):
            details.add(path, "Expected integer, received float")
        elif value < low:
            details.add(path, f"Number must be greater than or equal to {low}")
        elif high is not None and value > high:
            details.add(path, f"Number must be less than or equal to {high}")
        else:
            numbers[name] = int(value)
    order_value, path = pick("order")
    order = _enum(order_value, ("asc", "desc"), path, details) or "asc"
    aggregation = _enum(body.get("aggregation"), AGGREGATIONS, ["body", "aggregation"], details)
    group_by = _enum(body.get("groupBy"), tuple(GROUPS), ["body", "groupBy"], details)
    if details:
        raise details.error()
    return QueryIn(
        bucket=str(bucket),
        source=source,
        start_us=start,
        end_us=end,
        start_text=texts["startTime"],
        end_text=texts["endTime"],
        limit=numbers["limit"],
        offset=numbers["offset"],
        order=order,
        aggregation=aggregation,
        group_by=group_by,
    )


@router.post(
    "/api/data/query",
    summary="dakkio: query data points",
    openapi_extra=openapi.body(
        QUERY_SCHEMA,
        {
            "bucketId": "507f1f77bcf86cd799439011",
            "dataSourceId": "507f1f77bcf86cd799439012",
            "filters": {"startTime": "2024-01-15T00:00:00Z", "endTime": "2024-01-16T00:00:00Z"},
            "aggregation": "avg",
            "groupBy": "hour",
        },
    ),
)
async def query(
    request: Request,
    who: Principal = Depends(admin_principal),
    catalog: Catalog = Depends(catalog_of),
    reads: QueryService = Depends(query_of),
) -> Response:
    require(who, "data:read")
    q = parse_query(await json_body(request))
    rows = await run(catalog, reads, who, q)
    return json_reply(
        {
            "data": rows.data,
            "metadata": {
                "count": len(rows.data),
                "limit": q.limit,
                "offset": q.offset,
                "hasMore": rows.has_more,
                "bucketId": q.bucket,
                "dataSourceId": q.source,
                "startTime": q.start_text,
                "endTime": q.end_text,
                "aggregation": rows.aggregation,
                "groupBy": rows.group_by,
                "downsamplingApplied": rows.downsampled,
            },
        }
    )


async def run(catalog: Catalog, reads: QueryService, who: Principal, q: QueryIn) -> Rows:
    if q.source is not None:
        sources = [await catalog.sources.get(who, q.bucket, q.source)]
    else:
        sources = (await catalog.sources.page(who, q.bucket, EVERY, 0))[0]
    series = await reads.select(who, q.bucket, [q.source] if q.source else None)
    time_range = TimeRange(q.start_us, None if q.end_us is None else q.end_us + 1)
    if q.aggregation is not None or q.group_by is not None:
        return await aggregate(
            reads, who, q, series, time_range, q.aggregation or "avg", q.group_by
        )
    if series and all(_downsampling(s) for s in sources):
        group_by = await _auto_group(reads, q, series, time_range)
        if group_by is not None:
            rows = await aggregate(reads, who, q, series, time_range, "avg", group_by)
            rows.downsampled = True
            return rows
    return await raw(reads, q, series, time_range)


def _downsampling(source: Source) -> bool:
    return source.meta.get("downsampling", True) is not False


async def _auto_group(
    reads: QueryService, q: QueryIn, series: list[SeriesRef], time_range: TimeRange
) -> str | None:
    """dakkio's automatic downsampling: when more than ~500 rows would come back, the
    smallest groupBy giving at most ~500 groups."""
    per_source: dict[str, int] = {}
    for ref, count in zip(series, await reads.counts(series, time_range), strict=True):
        per_source[ref.source] = max(per_source.get(ref.source, 0), count)
    coming = min(max(sum(per_source.values()) - q.offset, 0), q.limit)
    if coming <= DOWNSAMPLE_ABOVE:
        return None
    bounds = await reads.span(series, time_range)
    if bounds is None:
        return None
    lo = q.start_us if q.start_us is not None else bounds[0]
    hi = q.end_us if q.end_us is not None else bounds[1]
    for name, (_, width_us) in GROUPS.items():
        if (hi - lo) // width_us + 1 <= DOWNSAMPLE_ABOVE:
            return name
    return "month"


async def aggregate(
    reads: QueryService,
    who: Principal,
    q: QueryIn,
    series: list[SeriesRef],
    time_range: TimeRange,
    aggregation: str,
    group_by: str | None,
) -> Rows:
    rows = Rows(aggregation=aggregation, group_by=group_by)
    if not series:
        return rows
    every = None
    if group_by is not None:
        every, width_us = GROUPS[group_by]
        bounds = await reads.span(series, time_range)
        if bounds is None:
            return rows
        lo = q.start_us if q.start_us is not None else bounds[0]
        hi = q.end_us if q.end_us is not None else bounds[1]
        groups = (hi - lo) // width_us + 1
        # The cap counts the groups of every series: each costs a read.
        if groups * len(series) > reads.max_result_points:
            raise invalid_at(
                ["body", "groupBy"],
                f"'{group_by}' gives about {groups} groups over {len(series)} series, more "
                f"than {reads.max_result_points}; narrow startTime/endTime or dataSourceId, "
                "or use a larger groupBy",
            )
        time_range = TimeRange(lo, hi + 1)
    spec = QuerySpec(
        bucket=q.bucket,
        sources=[q.source] if q.source else None,
        fields=None,
        time_range=time_range,
        mode="aggregate",
        aggregates=(aggregation,),
        every=every,
    )
    found: dict[tuple[int | None, str], dict[str, Any]] = {}
    for result in (await reads.query(who, spec)).series:
        for row in result.aggregates or []:
            value = row.values.get(aggregation)
            if value is None or (aggregation == "count" and value == 0):
                continue
            key = (row.start_us, result.series.source)
            found.setdefault(key, {})[result.series.field] = (
                number_out(float(value)) if aggregation != "count" else int(value)
            )
    keys = sorted(found, key=lambda k: (k[0] or 0, k[1]), reverse=q.order == "desc")
    page = keys[q.offset : q.offset + q.limit]
    rows.has_more = len(keys) > q.offset + q.limit
    for start_us, source in page:
        when = time_text(start_us) if start_us is not None else q.start_text
        rows.data.append(
            {
                "bucketId": q.bucket,
                "dataSourceId": source,
                "timestamp": when,
                "values": found[(start_us, source)],
            }
        )
    return rows


def _metadata(carried: dict[str, Any]) -> dict[str, Any]:
    """A point's extra as dakkio metadata: its `meta`, plus a position written natively."""
    meta = carried.get("meta")
    out = dict(meta) if isinstance(meta, dict) else {}
    if "lat" in carried:
        out.setdefault("latitude", carried["lat"])
        out.setdefault("longitude", carried["lon"])
    return out


async def raw(
    reads: QueryService, q: QueryIn, series: list[SeriesRef], time_range: TimeRange
) -> Rows:
    """A page of data points: the union of the series' points, a row per (source, time)."""
    order: Literal["asc", "desc"] = "desc" if q.order == "desc" else "asc"
    found = await reads.rows(series, time_range, order, q.offset, q.limit)
    rows = Rows(has_more=found.has_more)
    if not found.rows:
        return rows
    texts = time_texts(np.array([row.time_us for row in found.rows], np.int64))
    for row, text in zip(found.rows, texts, strict=True):
        metadata: dict[str, Any] = {}
        for extra in row.extras:  # the metadata of the row's points (the first of a name wins)
            for name, value in _metadata(_decode_extra.decode(extra)).items():
                metadata.setdefault(name, value)
        rows.data.append(
            {
                "_id": point_id(q.bucket, row.source, row.time_us),
                "bucketId": q.bucket,
                "dataSourceId": row.source,
                "timestamp": text,
                "values": {name: number_out(v) for name, v in row.values.items()},
                "metadata": metadata,
            }
        )
    return rows


def number_out(value: float) -> float | int:
    """65.0 → 65: a value sent as an integer reads back as one."""
    return int(value) if value.is_integer() and abs(value) < 2**53 else value
