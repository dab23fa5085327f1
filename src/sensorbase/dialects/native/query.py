"""`GET|POST /v1/query`: raw ranges, latest values and aggregates, as JSON or CSV."""

from __future__ import annotations

import csv
import io
from typing import Any

import msgspec
from fastapi import Depends, Query, Request, Response
from pydantic import BaseModel, Field

from sensorbase.auth import access
from sensorbase.auth.keys import Principal
from sensorbase.dialects.base import services
from sensorbase.dialects.native.deps import principal
from sensorbase.dialects.native.problems import native_router
from sensorbase.errors import Problem, invalid
from sensorbase.model import SeriesResult
from sensorbase.query.service import QueryResult
from sensorbase.query.spec import QuerySpec, parse_spec
from sensorbase.storage.base import Reader
from sensorbase.times import format_many

router = native_router()


class QueryBody(BaseModel):
    """The same names as the GET parameters."""

    bucket: str | None = None
    source: list[str] | str | None = None
    field: list[str] | str | None = None
    start: str | None = None
    end: str | None = None
    last: str | None = Field(None, description="Relative period ending now: 15m, 6h, 7d")
    mode: str | None = Field(None, description="raw (default), latest or aggregate")
    aggregate: list[str] | str | None = Field(
        None, description="min, max, avg, sum, count, first, last"
    )
    every: str | None = Field(None, description="Bucket width: 30s, 15m, 1h, 1d, 1w, 1mo, 1y")
    tz: str | None = Field(None, description="IANA zone for day, week, month buckets")
    limit: int | None = None
    order: str | None = None
    cursor: str | None = None
    format: str | None = Field(None, description="json (default) or csv")


@router.get("/query", summary="Query points")
async def query_get(
    request: Request,
    bucket: str | None = Query(None),
    source: list[str] | None = Query(None, description="Source key(s), repeated or a,b"),
    field: list[str] | None = Query(None, description="Field name(s), repeated or a,b"),
    start: str | None = Query(None, description="ISO 8601 with a zone, or epoch"),
    end: str | None = Query(None, description="Exclusive end: ISO 8601 or epoch"),
    last: str | None = Query(None, description="Relative period ending now: 15m, 6h, 7d"),
    mode: str | None = Query(None, description="raw (default), latest or aggregate"),
    aggregate: list[str] | None = Query(None, description="min,max,avg,sum,count,first,last"),
    every: str | None = Query(None, description="Bucket width: 30s, 15m, 1h, 1d, 1w, 1mo, 1y"),
    tz: str | None = Query(None, description="IANA zone for day, week, month buckets"),
    limit: int | None = Query(None, description="Most points (raw) or per series (latest)"),
    order: str | None = Query(None, description="asc or desc"),
    cursor: str | None = Query(None, description="next_cursor of the previous page"),
    format: str | None = Query(None, description="json (default) or csv"),
    who: Principal = Depends(principal),
) -> Response:
    body = QueryBody(
        bucket=bucket,
        source=source,
        field=field,
        start=start,
        end=end,
        last=last,
        mode=mode,
        aggregate=aggregate,
        every=every,
        tz=tz,
        limit=limit,
        order=order,
        cursor=cursor,
        format=format,
    )
    return await _answer(request, body, who)


@router.post("/query", summary="Query points (parameters in a JSON body)")
async def query_post(
    request: Request, body: QueryBody, who: Principal = Depends(principal)
) -> Response:
    return await _answer(request, body, who)


async def _answer(request: Request, body: QueryBody, who: Principal) -> Response:
    svc = services(request)
    access.require(who, "data:read")
    output = body.format or ("csv" if "text/csv" in request.headers.get("accept", "") else "json")
    if output not in ("json", "csv"):
        raise invalid([Problem("must be json or csv", "format")])
    spec = parse_spec(**body.model_dump(exclude={"format"}))

    def run(reader: Reader) -> QueryResult:
        bucket_id = who.bucket_id
        if spec.bucket is not None:
            bucket_id = access.bucket(reader, who, spec.bucket, "data:read").id
        series = svc.query.select(reader, who.org_id, bucket_id, spec)
        return svc.query.run(reader, series, spec)

    result = await svc.read(run)
    if output == "csv":
        return Response(render_csv(result, spec), media_type="text/csv")
    return Response(msgspec.json.encode(render_json(result, spec)), media_type="application/json")


def _points(result: SeriesResult) -> list[dict[str, Any]]:
    pts = result.points
    if pts is None or not len(pts):
        return []
    times = format_many(pts.time_us)
    values = pts.value.tolist()
    if pts.extra is None:
        return [{"time": t, "value": v} for t, v in zip(times, values, strict=True)]
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
