"""The read side a Databoom client uses: `GET /v1/signals` (paged, with device and signal
tokens) and `POST /v1/chart` (signals' values over a range, at a granularity).

A signal's `_id` is its Sensorbase series id, as a string; `POST /v1/chart` takes those ids.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec
import numpy as np
from fastapi import Depends, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from sensorbase.auth import access
from sensorbase.auth.keys import Principal
from sensorbase.catalog import Catalog
from sensorbase.dialects import openapi
from sensorbase.dialects.base import catalog_of, query_of
from sensorbase.dialects.databoom.dates import JS_MS, date_us
from sensorbase.dialects.databoom.errors import databoom_router, principal
from sensorbase.errors import NotFound, Problem, invalid
from sensorbase.model import Series, SeriesRef, Source, TimeRange
from sensorbase.query.service import QueryService
from sensorbase.query.spec import Every, QuerySpec

router = databoom_router()
RAW_MAX_VALUES = 10_080  # Databoom's cap on granularity '*': a value per minute for a week
HOUR_US = 3_600_000_000
DAY_US = 24 * HOUR_US
GRANULARITIES = ("a", "*", "h", "d", "m")
_EVERY = {"h": Every(1, "h"), "d": Every(1, "d"), "m": Every(1, "mo")}
_WIDTH_US = {"h": HOUR_US, "d": DAY_US, "m": 28 * DAY_US}  # the narrowest bucket of each
_AGGREGATES = ("last", "avg", "min", "max", "sum", "count")

# --- GET /v1/signals ----------------------------------------------------------------------


def signal_out(ref: SeriesRef, meta: dict[str, Any], source: Source | None) -> dict[str, Any]:
    description = source.name if source else ref.source
    return {
        "_id": str(ref.id),
        "device_token": ref.source,
        "signal_token": ref.field,
        "device": {
            "_id": str(source.id) if source else None,
            "device_token": ref.source,
            "description": description,
            "bucket": ref.bucket,
        },
        "device_description": description,
        "description": meta.get("description", ref.field),
        "unit": ref.unit if ref.unit is not None else meta.get("unit"),
        "type": meta.get("type", "number"),
        "tags": meta.get("tags", []),
        # INIT: created on first sight by a push, to be validated; a signal created otherwise
        # (POST /v1/signals with ACTIVE, another API) is ACTIVE.
        "status": meta.get("status", "ACTIVE"),
        "meta": meta,
    }


def _status(series: Series | None) -> str:
    return str((series.meta if series else {}).get("status", "ACTIVE"))


@router.get("/signals", summary="List signals, paged (Databoom)")
@router.get("/signals/", include_in_schema=False)
async def list_signals(
    page: int = Query(1, ge=1, description="Page number, from 1"),
    per_page: int = Query(100, ge=1, le=1000, description="Signals per page"),
    populatePermission: bool | None = Query(None, description="Accepted, ignored"),
    showHiddenElements: bool | None = Query(None, description="Accepted, ignored"),
    status: Literal["INIT", "ACTIVE"] | None = Query(
        None, description="Only the signals in this status (INIT: awaiting validation)"
    ),
    who: Principal = Depends(principal),
    catalog: Catalog = Depends(catalog_of),
    query: QueryService = Depends(query_of),
) -> Response:
    refs = await query.select(who)
    if status is None:
        total = len(refs)
        described = await catalog.series.described(
            who, refs[(page - 1) * per_page : page * per_page]
        )
    else:  # the status is in each series' meta: described all, then paged
        described = [
            d for d in await catalog.series.described(who, refs) if _status(d[1]) == status
        ]
        total = len(described)
        described = described[(page - 1) * per_page : page * per_page]
    data = [
        signal_out(ref, series.meta if series else {}, source) for ref, series, source in described
    ]
    reply = {"data": data, "page": page, "per_page": per_page, "total": total}
    return Response(msgspec.json.encode(reply), media_type="application/json")


# --- POST /v1/chart -----------------------------------------------------------------------


# A range bound: a date string (what JavaScript's Date reads; without a zone: UTC) or a number
# of milliseconds since 1970 (`_window` checks it: dates.date_us).
_BOUND: openapi.Schema = {
    "anyOf": [
        {**openapi.DATE_TIME, "description": "Also the other forms JavaScript's Date reads"},
        {"type": "integer", "minimum": JS_MS[0], "maximum": JS_MS[1]},
        {"type": "null"},
    ]
}


class ChartBody(BaseModel):
    # Strict: JSON types as declared (lax pydantic would read `false` as the date 0).
    model_config = ConfigDict(strict=True)

    signals: list[str | int] = Field(..., description="Signal ids (`_id` of GET /v1/signals)")
    startDate: str | int | None = Field(
        None, description="Start, inclusive", json_schema_extra=_BOUND
    )
    endDate: str | int | None = Field(None, description="End, inclusive", json_schema_extra=_BOUND)
    granularity: str = Field(
        "a",
        description="a (auto), * (raw), h, d or m",
        json_schema_extra={"enum": list(GRANULARITIES)},
    )


def _window(body: ChartBody) -> TimeRange:
    problems: list[Problem] = []
    bounds: dict[str, int | None] = {"startDate": None, "endDate": None}
    for name, value in (("startDate", body.startDate), ("endDate", body.endDate)):
        if value is not None:
            try:
                bounds[name] = date_us(value, {})
            except ValueError as exc:
                problems.append(Problem(str(exc), name))
    start, end = bounds["startDate"], bounds["endDate"]
    if start is not None and end is not None and end < start:
        problems.append(Problem("must not be before startDate", "endDate"))
    if body.granularity not in GRANULARITIES:
        problems.append(Problem("must be a (auto), * (raw), h, d or m", "granularity"))
    if problems:
        raise invalid(problems)
    return TimeRange(start, end + 1 if end is not None else None)  # endDate is inclusive


def _is_id(text: str) -> bool:
    return text.isascii() and text.isdigit() and len(text) < 19


async def _refs(catalog: Catalog, who: Principal, ids: list[str | int]) -> list[SeriesRef]:
    """The series the ids name, if the principal may read them; else one 404 naming them all."""
    refs, missing = [], []
    for raw in ids:
        text = str(raw)
        found = await _series(catalog, who, int(text)) if _is_id(text) else None
        if found is None:
            missing.append(text)
        else:
            refs.append(found)
    if missing:
        raise NotFound(f"signal(s) not found: {', '.join(missing)}")
    return refs


async def _series(catalog: Catalog, who: Principal, series_id: int) -> SeriesRef | None:
    try:
        series, source, bucket = await catalog.series.get(who, series_id)
    except NotFound:
        return None  # named with the others the request asks for
    return SeriesRef(series.id, bucket.key, source.key, series.field, series.unit)


async def _span(query: QueryService, ref: SeriesRef, window: TimeRange) -> tuple[int, int] | None:
    """The window's bounds, the series' own first and last points filling in open ends."""
    start, end = window.start_us, window.end_us
    if start is None or end is None:
        found = await query.span([ref], window)
        if found is None:
            return None
        start = found[0] if start is None else start
        end = found[1] + 1 if end is None else end
    return start, end


async def _auto(query: QueryService, ref: SeriesRef, window: TimeRange) -> str:
    """The finest granularity that gives at most RAW_MAX_VALUES values."""
    [count] = await query.counts([ref], window)
    if count <= RAW_MAX_VALUES:
        return "*"
    span = await _span(query, ref, window)
    length = span[1] - span[0] if span else 0
    for granularity in ("h", "d"):
        if length // _WIDTH_US[granularity] < RAW_MAX_VALUES:
            return granularity
    return "m"


def _dates(time_us: list[int]) -> list[str]:
    """As JavaScript's `toISOString()` writes them: milliseconds and `Z`."""
    texts = np.datetime_as_string(np.array(time_us, "datetime64[us]"), unit="ms")
    return [t + "Z" for t in texts.tolist()]


def _row(date: str, values: dict[str, Any]) -> dict[str, Any]:
    return {
        "_id": {"data": date},
        "date": date,
        "value": values["last"],
        "mean": values["avg"],
        "total_sum": values["sum"],
        "max_t": values["max"],
        "min_t": values["min"],
        "count": values["count"],
    }


async def _raw(
    query: QueryService, ref: SeriesRef, window: TimeRange, cap: int
) -> tuple[list[dict[str, Any]], bool]:
    """The signal's values, at most `cap`, and whether the range holds more."""
    [points] = await query.points([ref], window, cap)
    if not len(points):
        return [], False
    over_bound = len(points) == cap and (await query.counts([ref], window))[0] > cap
    rows = []
    for date, v in zip(_dates(points.time_us.tolist()), points.value.tolist(), strict=True):
        rows.append(_row(date, {"last": v, "avg": v, "sum": v, "max": v, "min": v, "count": 1}))
    return rows, over_bound


async def _aggregated(
    query: QueryService,
    who: Principal,
    ref: SeriesRef,
    window: TimeRange,
    granularity: str,
    left: int,
) -> tuple[list[dict[str, Any]], int]:
    """The signal's values at `granularity`, and the buckets they took of the `left` that the
    chart's other signals left (the cap holds for the whole chart: each bucket costs a read)."""
    span = await _span(query, ref, window)
    if span is None:
        return [], 0
    buckets = (span[1] - span[0]) // _WIDTH_US[granularity]
    if buckets > left:
        reason = (
            f"'{granularity}' gives more than {query.max_result_points} values over this range "
            "and these signals; choose a coarser granularity, a shorter range or fewer signals"
        )
        raise invalid([Problem(reason, "granularity")])
    spec = QuerySpec(
        ref.bucket, [ref.source], [ref.field], window, "aggregate", _AGGREGATES, _EVERY[granularity]
    )
    [series] = (await query.query(who, spec)).series
    rows = series.aggregates or []
    dates = _dates([row.start_us or 0 for row in rows])
    return [_row(date, row.values) for date, row in zip(dates, rows, strict=True)], buckets


@router.post("/chart", summary="Signal values over a range (Databoom)")
@router.post("/chart/", include_in_schema=False)
async def chart(
    body: ChartBody,
    who: Principal = Depends(principal),
    catalog: Catalog = Depends(catalog_of),
    query: QueryService = Depends(query_of),
) -> Response:
    access.require(who, "data:read")
    window = _window(body)
    cap = min(RAW_MAX_VALUES, query.max_result_points)
    reply: dict[str, Any] = {}
    info: dict[str, Any] = {}
    left = query.max_result_points  # values the chart's signals may still take
    for ref in await _refs(catalog, who, body.signals):
        granularity = body.granularity
        if granularity == "a":
            granularity = await _auto(query, ref, window)
        over_bound = False
        if granularity == "*":
            rows, over_bound = await _raw(query, ref, window, min(cap, left))
            used = len(rows)
        else:
            rows, used = await _aggregated(query, who, ref, window, granularity, left)
        reply[str(ref.id)] = rows
        left -= used
        info[str(ref.id)] = {"granularity": granularity, "overBound": over_bound}
    reply["info"] = info
    return Response(msgspec.json.encode(reply), media_type="application/json")
