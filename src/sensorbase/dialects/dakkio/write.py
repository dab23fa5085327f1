"""`POST /api/data` (one data point) and `POST /api/data/batch` (1 to 1000, atomic).

A dakkio data point is (data source, timestamp) with several named values; each value becomes
one canonical point of the series (bucket, data source, value name), and the point's metadata
travels as the canonical extra `{"meta": {...}}`.

The walk: dakkio's own body checks (Zod's paths and wording: types, ISO 8601 timestamps,
finite numbers, at most 1000 points), then one `Ingest.write`, which finds the rest (the bucket
for this key, unknown data sources, fields a data source's schema does not declare, times out
of the server's window, names, metadata size); errors.py words its problems.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import msgspec
import numpy as np
from fastapi import Depends, Request, Response

from sensorbase.auth.keys import Principal
from sensorbase.dialects import openapi
from sensorbase.dialects.base import dialect_router
from sensorbase.dialects.dakkio import SAMPLE
from sensorbase.dialects.dakkio.body import call_object
from sensorbase.dialects.dakkio.credential import call_principal, require, scheme
from sensorbase.dialects.dakkio.dates import now_ms_us, time_text
from sensorbase.dialects.dakkio.errors import (
    ERROR_SCHEMA,
    MISSING,
    Details,
    Path,
    at,
    expected,
    json_reply,
    renderer,
)
from sensorbase.dialects.dakkio.ids import point_id
from sensorbase.dialects.lane import Call, Lane, as_route
from sensorbase.errors import NotFound, Problem
from sensorbase.ingest.pipeline import Ingest, WriteOptions
from sensorbase.model import PointBatch, SeriesKey
from sensorbase.times import now_us, parse_iso_us

# Two routers: problems of the engine name a request item, which lies at the body itself for
# one data point and at `dataPoints[i]` in a batch.
_RENDER_ONE = renderer()
_RENDER_BATCH = renderer(lambda index: ["body", "dataPoints", index or 0])
one_router = dialect_router("dakkio", _RENDER_ONE, tags=["dakkio"], error_schema=ERROR_SCHEMA)
batch_router = dialect_router("dakkio", _RENDER_BATCH, tags=["dakkio"], error_schema=ERROR_SCHEMA)


MAX_BATCH = 1000
# What `PointChecker` takes (other members are ignored). A timestamp absent or null is now; it
# must lie in the server's window (SENSORBASE_MIN_TIME, SENSORBASE_MAX_FUTURE_S: the pipeline's
# check).
ID = {**openapi.NONBLANK, "description": "An id: any text that is not blank"}
_POINT_MEMBERS: dict[str, Any] = {
    "dataSourceId": ID,
    "timestamp": openapi.nullable(openapi.DATE_TIME),
    "values": {
        "type": "object",
        "minProperties": 1,
        "propertyNames": openapi.NAME,
        "additionalProperties": {"type": "number"},
    },
    "metadata": openapi.nullable({"type": "object", "description": "At most 8 KiB as JSON"}),
}
POINT_SCHEMA = {
    "type": "object",
    "required": ["bucketId", "dataSourceId", "values"],
    "properties": {"bucketId": ID, **_POINT_MEMBERS},
}
BATCH_SCHEMA = {
    "type": "object",
    "required": ["bucketId", "dataPoints"],
    "properties": {
        "bucketId": ID,
        "dataPoints": {
            "type": "array",
            "minItems": 1,
            "maxItems": MAX_BATCH,
            "items": {
                "type": "object",
                "required": ["dataSourceId", "values"],
                "properties": _POINT_MEMBERS,
            },
        },
    },
}
_FLOAT_MAX = 1.7976931348623157e308


def _fits_float(number: int) -> bool:
    return -_FLOAT_MAX <= number <= _FLOAT_MAX


_encode = msgspec.json.Encoder()


@dataclass(slots=True)
class DataPoint:
    """One checked data point: its values as sent (echoed back), its time, and its index in
    the request (0 for the one data point of `POST /api/data`)."""

    source: str
    time_us: int
    values: dict[str, int | float]
    metadata: dict[str, Any] | None
    index: int


class PointChecker:
    """Walks data points, collecting every problem with its path (Zod's wording). What the
    body says is checked here; what the server holds (data sources, their schemas, the time
    window) is the pipeline's to check."""

    def __init__(self, details: Details) -> None:
        self.details = details
        self.now_us = now_us()
        self._good_times: dict[str, int] = {}

    def id_field(self, body: dict[str, Any], name: str, path: Path) -> str | None:
        value = body.get(name, MISSING)
        if not isinstance(value, str):
            self.details.add([*path, name], expected("string", value))
            return None
        if not value.strip():
            self.details.add([*path, name], "String must contain at least 1 character(s)")
            return None
        return value

    def point(self, item: Any, path: Path, index: int = 0) -> DataPoint | None:
        """The checked data point, or None after recording its problems. The common case (a
        good point) takes no detour; paths are built only for problems."""
        if type(item) is not dict:
            self.details.add(path, expected("object", item))
            return None
        source = item.get("dataSourceId", MISSING)
        stamp = item.get("timestamp")
        values = item.get("values", MISSING)
        metadata = item.get("metadata")
        time_us = None
        if type(stamp) is str:
            time_us = self._good_times.get(stamp)
            if time_us is None:
                time_us = self._good_time(stamp)
        if (
            type(source) is str
            and source.strip()
            and time_us is not None
            and type(values) is dict
            and _numbers(values)
            and (metadata is None or type(metadata) is dict)
        ):
            return DataPoint(source, time_us, values, metadata or None, index)
        before = len(self.details.items)
        source = self.id_field(item, "dataSourceId", path)
        time_us = self.timestamp(stamp, [*path, "timestamp"])
        checked = self.values(values, [*path, "values"])
        if metadata is not None and not isinstance(metadata, dict):
            self.details.add([*path, "metadata"], expected("object", metadata))
        if len(self.details.items) > before or source is None or checked is None:
            return None
        return DataPoint(source, time_us, checked, metadata or None, index)

    def _good_time(self, text: str) -> int | None:
        """The instant of a good timestamp (remembered: a batch often repeats them), else None."""
        try:
            # RFC 3339 allows a lower-case "t" and "z"; ISO 8601 has no other letters.
            time_us = parse_iso_us(text.upper(), naive_is_utc=True)
        except ValueError:
            return None
        self._good_times[text] = time_us
        return time_us

    def timestamp(self, value: Any, path: Path) -> int:
        # Absent or null mean "now", as the document says; "" is no ISO 8601 time, refused.
        if value is None:
            return self.now_us // 1_000 * 1_000  # to the millisecond, as a JavaScript server
        if not isinstance(value, str):
            self.details.add(path, expected("string", value))
            return 0
        try:
            return parse_iso_us(value.upper(), naive_is_utc=True)
        except ValueError:
            self.details.add(
                path, "Invalid datetime (expected ISO 8601, e.g. 2024-01-15T10:30:00Z)"
            )
            return 0

    def values(self, value: Any, path: Path) -> dict[str, int | float] | None:
        if not isinstance(value, dict):
            self.details.add(path, expected("object", value))
            return None
        if not value:
            self.details.add(path, "At least one value is required")
            return None
        good = True
        for name, number in value.items():
            if not name:
                self.details.add([*path, name], "Value name must not be empty")
                good = False
            elif isinstance(number, bool) or not isinstance(number, int | float):
                self.details.add([*path, name], expected("number", number))
                good = False
            elif not (math.isfinite(number) if isinstance(number, float) else _fits_float(number)):
                self.details.add([*path, name], "Number must be finite")
                good = False
        return value if good else None


def _numbers(values: dict[str, Any]) -> bool:
    """True when `values` is non-empty and every name is non-empty and every value a number
    that fits a float64 (bool is not int here: `type(True) is bool`)."""
    if not values or "" in values:
        return False
    for number in values.values():
        kind = type(number)
        if kind is float:
            if number - number != 0.0:  # inf or nan
                return False
        elif kind is not int or not -_FLOAT_MAX <= number <= _FLOAT_MAX:
            return False
    return True


def columns(bucket_key: str, points: list[DataPoint]) -> tuple[PointBatch, list[int]]:
    """The canonical columns of the data points (a row per value), and each row's item."""
    index: dict[tuple[str, str], int] = {}
    series_index: list[int] = []
    times: list[int] = []
    values: list[float] = []
    extras: list[str | None] = []
    origin: list[int] = []
    has_extra = False
    for p in points:
        extra = _encode.encode({"meta": p.metadata}).decode() if p.metadata else None
        has_extra = has_extra or extra is not None
        source, time_us = p.source, p.time_us
        for name, number in p.values.items():
            k = index.get((source, name))
            if k is None:
                k = index[(source, name)] = len(index)
            series_index.append(k)
            times.append(time_us)
            values.append(number)
            extras.append(extra)
        origin.extend([p.index] * len(p.values))
    batch = PointBatch(
        keys=[SeriesKey(bucket_key, source, name) for source, name in index],
        series_index=np.array(series_index, np.int32),
        time_us=np.array(times, np.int64),
        value=np.array(values, np.float64),
        extra=extras if has_extra else None,
    )
    return batch, origin


def decode_one(body: dict[str, Any]) -> tuple[str, DataPoint]:
    """`POST /api/data`'s body: its bucket key and its data point (else every problem)."""
    details = Details()
    checker = PointChecker(details)
    bucket_key = checker.id_field(body, "bucketId", ["body"])
    point = checker.point(body, ["body"])
    if details or bucket_key is None or point is None:
        raise details.error()
    return bucket_key, point


def decode_batch(body: dict[str, Any]) -> tuple[str, list[DataPoint]]:
    """`POST /api/data/batch`'s body: its bucket key and data points (else every problem)."""
    details = Details()
    checker = PointChecker(details)
    bucket_key = checker.id_field(body, "bucketId", ["body"])
    items = body.get("dataPoints", MISSING)
    points: list[DataPoint] = []
    if not isinstance(items, list):
        details.add(["body", "dataPoints"], expected("array", items))
    elif not items:
        details.add(["body", "dataPoints"], "Array must contain at least 1 element(s)")
    elif len(items) > MAX_BATCH:
        details.add(
            ["body", "dataPoints"],
            f"Array must contain at most {MAX_BATCH} element(s) (received {len(items)}); "
            "split the batch",
        )
    else:
        for i, item in enumerate(items):
            point = checker.point(item, ["body", "dataPoints", i], i)
            if point is not None:
                points.append(point)
    if details or bucket_key is None:
        raise details.error()
    return bucket_key, points


async def store(
    ingest: Ingest,
    who: Principal,
    bucket_key: str,
    points: list[DataPoint],
    *,
    in_batch: bool,
) -> None:
    """The data points, in one write. In a batch the pipeline's problems name the data point
    (`origin`); for the one point of `POST /api/data` they name its rows, which keeps them in
    the order its values were sent (the renderer lists a repeated detail once)."""
    batch, origin = columns(bucket_key, points)
    options = WriteOptions(
        create_sources=False, origin=np.array(origin, np.int32) if in_batch else None
    )
    try:
        await ingest.write(who, batch, options)
    except NotFound as exc:
        if exc.what != "source" or not in_batch:
            raise
        raise unknown_sources(exc, points) from None


def unknown_sources(exc: NotFound, points: list[DataPoint]) -> NotFound:
    """dakkio's 404 for a batch naming unknown data sources: a detail per data point naming
    one (the write names every unknown source)."""
    message, missing = "Data source not found", set(exc.names or (exc.name or "",))
    problems: list[Problem] = [
        at(["body", "dataPoints", p.index, "dataSourceId"], message)
        for p in points
        if p.source in missing
    ]
    return NotFound(message, problems, what="source", name=exc.name, names=exc.names)


@one_router.post(
    "/api/data",
    status_code=201,
    summary="dakkio: ingest one data point",
    openapi_extra=openapi.body(POINT_SCHEMA, SAMPLE),
)
async def ingest_one(request: Request, _: object = Depends(scheme)) -> Response:
    return await as_route(request, write_one)


async def write_one(call: Call) -> Response:
    """`POST /api/data`, as the route and the fast lane both answer it."""
    who = call_principal(call)
    require(who, "data:write")
    bucket_key, point = decode_one(await call_object(call))
    await store(call.services.ingest, who, bucket_key, [point], in_batch=False)
    return json_reply(
        {
            "message": "Data point ingested successfully",
            "dataPoint": {
                "_id": point_id(bucket_key, point.source, point.time_us),
                "bucketId": bucket_key,
                "dataSourceId": point.source,
                "timestamp": time_text(point.time_us),
                "values": point.values,
                "metadata": point.metadata or {},
                "createdAt": time_text(now_ms_us()),
            },
        },
        201,
    )


@batch_router.post(
    "/api/data/batch",
    status_code=201,
    summary="dakkio: ingest 1 to 1000 data points",
    openapi_extra=openapi.body(
        BATCH_SCHEMA,
        {
            "bucketId": SAMPLE["bucketId"],
            "dataPoints": [{k: v for k, v in SAMPLE.items() if k != "bucketId"}],
        },
    ),
)
async def ingest_batch(request: Request, _: object = Depends(scheme)) -> Response:
    return await as_route(request, write_batch)


async def write_batch(call: Call) -> Response:
    """`POST /api/data/batch`, as the route and the fast lane both answer it."""
    who = call_principal(call)
    require(who, "data:write")
    bucket_key, points = decode_batch(await call_object(call))
    await store(call.services.ingest, who, bucket_key, points, in_batch=True)
    return json_reply({"message": "Batch ingested successfully", "count": len(points)}, 201)


def fast_lanes() -> dict[tuple[str, str], Lane]:
    """The ingest routes, answered before FastAPI's routing (dialects/lane.py): what devices
    send, a data point a request."""
    return {
        ("POST", "/api/data"): Lane("dakkio", _RENDER_ONE, write_one),
        ("POST", "/api/data/batch"): Lane("dakkio", _RENDER_BATCH, write_batch),
    }
