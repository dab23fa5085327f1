"""Deletes of a time range of points (docs/lifecycle.md). A bucket's retention is set with
the bucket (`POST`/`PATCH /v1/buckets`, admin.py).

    DELETE /v1/points?bucket=farm&source=ESP32-001&field=temperature
                      &start=2026-01-01T00:00:00Z&end=2026-02-01T00:00:00Z

A delete is all-or-nothing: a refusal (422) names every bad parameter, an unknown bucket or
source is a 404, and then nothing is deleted."""

from __future__ import annotations

from typing import Any

from fastapi import Depends, Query, Request

from sensorbase.auth.keys import Principal
from sensorbase.catalog import Catalog
from sensorbase.dialects import openapi
from sensorbase.dialects.base import catalog_of
from sensorbase.dialects.native.deps import principal
from sensorbase.dialects.native.problems import native_router
from sensorbase.errors import Problem, invalid
from sensorbase.model import TimeRange
from sensorbase.query.spec import split_list
from sensorbase.times import format_us, parse_instant

router = native_router()

_PARAMETERS = [
    openapi.parameter("bucket", {"type": "string"}, "Bucket key", required=True),
    openapi.parameter(
        "source", {"type": "array", "items": {"type": "string"}}, "Source key(s); none: all"
    ),
    openapi.parameter(
        "field", {"type": "array", "items": {"type": "string"}}, "Field name(s); none: all"
    ),
    openapi.parameter(
        "start", openapi.INSTANT, "Inclusive start: ISO 8601 or epoch", required=True
    ),
    openapi.parameter("end", openapi.INSTANT, "Exclusive end: ISO 8601 or epoch", required=True),
]


@router.delete(
    "/points",
    summary="Delete the points of a time range",
    openapi_extra={"parameters": _PARAMETERS},
)
async def delete_points(
    request: Request,
    who: Principal = Depends(principal),
    catalog: Catalog = Depends(catalog_of),
    bucket: str | None = Query(None, include_in_schema=False),
    start: str | None = Query(None, include_in_schema=False),
    end: str | None = Query(None, include_in_schema=False),
) -> dict[str, Any]:
    given = request.query_params
    problems = []
    if not bucket:
        problems.append(Problem("required: the bucket whose points to delete", "bucket"))
    bounds: dict[str, int] = {}
    for name, text in (("start", start), ("end", end)):
        if text is None:
            problems.append(Problem("required: a delete names its time range", name))
            continue
        try:
            bounds[name] = parse_instant(text)
        except ValueError as exc:
            problems.append(Problem(str(exc), name))
    if len(bounds) == 2 and bounds["end"] <= bounds["start"]:
        problems.append(Problem("must be after start", "end"))
    unknown = sorted(set(given) - {"bucket", "source", "field", "start", "end"})
    problems += [Problem("unknown parameter", name) for name in unknown]
    if problems:
        raise invalid(problems)
    assert bucket is not None
    sources = split_list(given.getlist("source") or None)
    fields = split_list(given.getlist("field") or None)
    time_range = TimeRange(bounds["start"], bounds["end"])
    refs = await catalog.points.delete(who, bucket, sources, fields, time_range)
    return {
        "bucket": bucket,
        "start": format_us(bounds["start"]),
        "end": format_us(bounds["end"]),
        "series": [{"source": r.source, "field": r.field} for r in refs],
    }
