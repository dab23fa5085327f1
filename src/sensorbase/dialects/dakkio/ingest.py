"""`POST /api/data` (one data point) and `POST /api/data/batch` (1 to 1000, atomic).

A dakkio data point is (data source, timestamp) with several named values; each value becomes
one canonical point of the series (bucket, data source, value name), and the point's metadata
travels as the canonical extra `{"meta": {...}}`.
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
from sensorbase.dialects.base import dialect_router, services
from sensorbase.dialects.body import parse_json, read_body, require_media_type
from sensorbase.dialects.dakkio import deps
from sensorbase.dialects.dakkio.replies import (
    ERROR_SCHEMA,
    MISSING,
    Details,
    Path,
    expected,
    json_reply,
    now_ms_us,
    point_id,
    render_error,
    time_text,
)
from sensorbase.errors import InvalidInput, NotFound
from sensorbase.ingest.pipeline import WriteOptions
from sensorbase.model import PointBatch, SeriesKey, Source
from sensorbase.services import Services
from sensorbase.storage.base import Reader
from sensorbase.times import now_us, parse_iso_us

router = dialect_router("dakkio", render_error, tags=["dakkio"], error_schema=ERROR_SCHEMA)

SAMPLE = {
    "bucketId": "507f1f77bcf86cd799439011",
    "dataSourceId": "507f1f77bcf86cd799439012",
    "timestamp": "2024-01-15T10:30:00Z",
    "values": {"temperature": 22.5, "humidity": 65, "pressure": 1013.25},
    "metadata": {"deviceId": "ESP32-001", "location": "Living Room", "batteryLevel": 85},
}


MAX_BATCH = 1000
# What `PointChecker` takes (other members are ignored). A timestamp absent or null is now; it
# must lie in the server's window (SENSORBASE_MIN_TIME, SENSORBASE_MAX_FUTURE_S).
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
    """One checked data point: its values as sent (echoed back) and its time."""

    source: str
    time_us: int
    values: dict[str, int | float]
    metadata: dict[str, Any] | None
    path: Path


async def json_body(request: Request, svc: Services) -> Any:
    """The JSON body: dakkio's document says Content-Type "Must be application/json" (415
    otherwise), decoded by the one decoder (dialects/body.py), its refusal as a dakkio detail."""
    require_media_type(request.headers.get("content-type"), ("application/json",), missing_ok=False)
    body = await read_body(request, svc.settings.max_body_bytes)
    try:
        return parse_json(body)
    except InvalidInput as exc:
        details = Details()
        for problem in exc.problems:
            path: Path = ["body", problem.field] if problem.field else ["body"]
            details.add(path, problem.reason if problem.field else f"Invalid JSON: {exc.detail}")
        raise details.error() from None


class PointChecker:
    """Walks data points, collecting every problem with its path (Zod's wording)."""

    def __init__(self, svc: Services, details: Details) -> None:
        self.details = details
        self.now_us = now_us()
        self.min_us = svc.ingest.min_time_us
        self.min_text = svc.settings.min_time
        self.max_future_s = svc.settings.max_future_s
        self.max_us = self.now_us + svc.settings.max_future_s * 1_000_000
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

    def point(self, item: Any, path: Path) -> DataPoint | None:
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
            return DataPoint(source, time_us, values, metadata or None, path)
        before = len(self.details.items)
        source = self.id_field(item, "dataSourceId", path)
        time_us = self.timestamp(stamp, [*path, "timestamp"])
        checked = self.values(values, [*path, "values"])
        if metadata is not None and not isinstance(metadata, dict):
            self.details.add([*path, "metadata"], expected("object", metadata))
        if len(self.details.items) > before or source is None or checked is None:
            return None
        return DataPoint(source, time_us, checked, metadata or None, path)

    def _good_time(self, text: str) -> int | None:
        """The instant of a good timestamp (remembered: a batch often repeats them), else None."""
        try:
            # RFC 3339 allows a lower-case "t" and "z"; ISO 8601 has no other letters.
            time_us = parse_iso_us(text.upper(), naive_is_utc=True)
        except ValueError:
            return None
        if not self.min_us <= time_us <= self.max_us:
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
            time_us = parse_iso_us(value.upper(), naive_is_utc=True)
        except ValueError:
            self.details.add(
                path, "Invalid datetime (expected ISO 8601, e.g. 2024-01-15T10:30:00Z)"
            )
            return 0
        if time_us < self.min_us:
            self.details.add(path, f"Timestamp must not be before {self.min_text}")
        elif time_us > self.max_us:
            self.details.add(
                path, f"Timestamp must not be more than {self.max_future_s} s in the future"
            )
        return time_us

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


async def resolve_sources(
    svc: Services, who: Principal, bucket_key: str, points: list[DataPoint]
) -> dict[str, Source]:
    """The bucket (tenancy check) and each named data source; 404 naming every missing one."""
    wanted = {p.source for p in points}

    def find(reader: Reader) -> dict[str, Source]:
        found = deps.bucket(reader, who, bucket_key, "data:write")
        sources = {}
        for key in wanted:
            source = reader.get_source(found.id, key)
            if source is not None:
                sources[key] = source
        return sources

    sources = await svc.read(find)
    missing = [p for p in points if p.source not in sources]
    if missing:
        error = NotFound("Data source not found")
        if len(points) > 1:
            error.dakkio_details = [  # type: ignore[attr-defined]
                {"path": [*p.path, "dataSourceId"], "message": "Data source not found"}
                for p in missing
            ]
        raise error
    return sources


def check_schemas(points: list[DataPoint], sources: dict[str, Source]) -> None:
    """A data source with a declared schema refuses undeclared and non-numeric fields."""
    details = Details()
    for p in points:
        schema = sources[p.source].schema
        if not schema:
            continue
        for name in p.values:
            spec = schema.get(name)
            if spec is None:
                details.add(
                    [*p.path, "values", name],
                    f"Field '{name}' is not defined in the data source schema "
                    f"(defined: {', '.join(sorted(schema))})",
                )
            elif spec.type != "number":
                details.add(
                    [*p.path, "values", name],
                    f"Field '{name}' is declared as {spec.type} in the data source schema; "
                    "Sensorbase stores numeric values only",
                )
    if details:
        raise details.error()


def columns(bucket_key: str, points: list[DataPoint]) -> PointBatch:
    index: dict[tuple[str, str], int] = {}
    series_index: list[int] = []
    times: list[int] = []
    values: list[float] = []
    extras: list[str | None] = []
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
    return PointBatch(
        keys=[SeriesKey(bucket_key, source, name) for source, name in index],
        series_index=np.array(series_index, np.int32),
        time_us=np.array(times, np.int64),
        value=np.array(values, np.float64),
        extra=extras if has_extra else None,
    )


async def store(svc: Services, who: Principal, bucket_key: str, points: list[DataPoint]) -> None:
    sources = await resolve_sources(svc, who, bucket_key, points)
    check_schemas(points, sources)
    await svc.ingest.write(
        who,
        columns(bucket_key, points),
        WriteOptions(
            create_sources=False,
        ),
    )


@router.post(
    "/api/data",
    status_code=201,
    summary="dakkio: ingest one data point",
    openapi_extra=openapi.body(POINT_SCHEMA, SAMPLE),
)
async def ingest_one(request: Request, who: Principal = Depends(deps.principal)) -> Response:
    svc = services(request)
    deps.require(who, "data:write")
    body = await json_body(request, svc)
    details = Details()
    checker = PointChecker(svc, details)
    if not isinstance(body, dict):
        details.add(["body"], expected("object", body))
        raise details.error()
    bucket_key = checker.id_field(body, "bucketId", ["body"])
    point = checker.point(body, ["body"])
    if details or bucket_key is None or point is None:
        raise details.error()
    await store(svc, who, bucket_key, [point])
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


@router.post(
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
async def ingest_batch(request: Request, who: Principal = Depends(deps.principal)) -> Response:
    svc = services(request)
    deps.require(who, "data:write")
    body = await json_body(request, svc)
    details = Details()
    checker = PointChecker(svc, details)
    if not isinstance(body, dict):
        details.add(["body"], expected("object", body))
        raise details.error()
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
            point = checker.point(item, ["body", "dataPoints", i])
            if point is not None:
                points.append(point)
    if details or bucket_key is None:
        raise details.error()
    await store(svc, who, bucket_key, points)
    return json_reply({"message": "Batch ingested successfully", "count": len(points)}, 201)
