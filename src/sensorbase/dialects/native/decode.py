"""Decoding native write bodies into a canonical PointBatch.

A body is a JSON array of points, an object `{"bucket"?, "source"?, "points": [...]}` whose
top-level names are defaults for its points, or NDJSON (one point per line):

    {"bucket": "farm", "points": [
      {"source": "ESP32-001", "field": "temperature", "value": 21.5,
       "time": "2026-11-21T10:00:00Z"},
      {"source": "ESP32-001", "fields": {"temperature": 21.7, "humidity": 40.2},
       "time": 1795254000, "latitude": 48.85, "longitude": 2.35, "meta": {"fw": "1.2"}}]}

The fast path (fast_decode.py: compiled code where it was built, else msgspec's typed structs)
decodes the common body straight into columns; only a body that fails it is walked item by
item, so that the refusal lists every bad point, not the first.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgspec
import numpy as np
import numpy.typing as npt

from sensorbase.dialects.body import parse_json
from sensorbase.dialects.native.fast_decode import INT64_LIMIT_US, decode_fast
from sensorbase.errors import (
    MAX_LISTED_PROBLEMS,
    InvalidInput,
    PayloadTooLarge,
    Problem,
    invalid,
)
from sensorbase.model import PointBatch, SeriesKey
from sensorbase.times import PRECISION_US, epoch_to_us, now_us, parse_iso_us

Number = float


class NativePoint(msgspec.Struct, forbid_unknown_fields=True):
    bucket: str | None = None
    source: str | None = None
    field: str | None = None
    value: Number | None = None
    fields: dict[str, Number] | None = None
    time: str | int | float | None = None
    latitude: Number | None = None
    longitude: Number | None = None
    meta: dict[str, Any] | None = None


class NativeBody(msgspec.Struct, forbid_unknown_fields=True):
    points: list[NativePoint]
    bucket: str | None = None
    source: str | None = None


_encode = msgspec.json.Encoder()


@dataclass(slots=True)
class Decoded:
    """A decoded body: its good points, the item each row came from, and the bad items."""

    batch: PointBatch
    origin: npt.NDArray[np.int32] | None  # None: row i is item i
    problems: list[Problem]


def decode(
    body: bytes,
    *,
    ndjson: bool,
    bucket: str | None,
    source: str | None,
    precision: str | None,
    max_points: int,
) -> Decoded:
    """Decode a write body: the good items as a batch (with the item each row came from), and
    every item it cannot decode named. What the points hold (finite values, times in the window,
    names) is the ingest pipeline's to check, and whether the bad items refuse the request
    (atomic) its decision, once it has added its own problems to these."""
    if precision is not None and precision not in PRECISION_US:
        raise invalid([Problem("must be s, ms, us or ns", "precision")])
    if not ndjson:
        fast = decode_fast(body, bucket, source, precision, max_points)
        if fast is not None:  # one row per item: the pipeline names rows as items
            return Decoded(fast, None, [])
    # Anything else (or a fast-decoded batch with bad points): the general path, which names
    # every bad item.
    problems: list[Problem] = []
    points: list[NativePoint | None]
    parsed: Any = (
        [_line(line, i) for i, line in enumerate(_lines(body))] if ndjson else parse_json(body)
    )
    _count(parsed, max_points)
    try:
        decoded = msgspec.convert(parsed, NativeBody | list[NativePoint])
        if isinstance(decoded, NativeBody):
            bucket = decoded.bucket or bucket
            source = decoded.source or source
            decoded = decoded.points
        points = list(decoded)
    except msgspec.ValidationError:
        # Walk the items one by one so that the refusal names every bad one.
        points, bucket, source = _walk(parsed, bucket, source, problems)
    batch, origin = _columns(points, bucket, source, precision, max_points, problems)
    if not problems and not len(batch):
        raise invalid([Problem("holds no point: a write carries at least one", "points")])
    # (The walk's problems are in item order already: a body of 100,000 bad points is not
    # sorted for nothing.)
    if not problems:
        return Decoded(batch, origin, [])
    bad = np.array(sorted({p.index for p in problems if p.index is not None}), np.int32)
    keep = ~np.isin(origin, bad)
    return Decoded(batch.take(keep), origin[keep], problems)


def _lines(body: bytes) -> list[bytes]:
    return [line for line in body.splitlines() if line.strip()]


def _line(line: bytes, index: int) -> Any:
    """One NDJSON line's JSON value, its problems naming the line."""
    try:
        return parse_json(line)
    except InvalidInput as exc:
        raise invalid([Problem(p.reason, p.field, index) for p in exc.problems]) from None


def _count(parsed: Any, max_points: int) -> None:
    """413 for a body of more items than a request may carry, before any item is looked at:
    refusing such a body costs no more than reading it."""
    items = parsed.get("points") if isinstance(parsed, dict) else parsed
    if isinstance(items, list) and len(items) > max_points:
        raise PayloadTooLarge(f"{len(items)} points in one request; the limit is {max_points}")


def _columns(
    points: list[NativePoint | None],
    bucket: str | None,
    source: str | None,
    precision: str | None,
    max_points: int,
    problems: list[Problem],
) -> tuple[PointBatch, npt.NDArray[np.int32]]:
    index: dict[SeriesKey, int] = {}
    series_index: list[int] = []
    values: list[float] = []
    times: list[Any] = []
    extras: list[str | None] = []
    has_extra = False
    origin: list[int] = []
    for i, p in enumerate(points):
        if p is None:  # refused by the typed decoder, already reported
            continue
        b, s = p.bucket or bucket, p.source or source
        if not b:
            problems.append(
                Problem("is required (in the point, the body or ?bucket=)", "bucket", i)
            )
        if not s:
            problems.append(
                Problem("is required (in the point, the body or ?source=)", "source", i)
            )
        if p.fields is not None:
            if p.field is not None or p.value is not None:
                problems.append(Problem("give either 'fields' or 'field' and 'value'", "fields", i))
                continue
            if not p.fields:
                problems.append(Problem("must name at least one field", "fields", i))
                continue
            pairs = list(p.fields.items())
        elif p.field is None or p.value is None:
            missing = "field" if p.field is None else "value"
            problems.append(Problem("is required (or give 'fields')", missing, i))
            continue
        else:
            pairs = [(p.field, p.value)]
        if not b or not s:
            continue
        extra = None
        if p.latitude is not None or p.longitude is not None or p.meta:
            if (p.latitude is None) != (p.longitude is None):
                problems.append(Problem("latitude and longitude come together", "latitude", i))
            elif p.latitude is not None and not -90 <= p.latitude <= 90:
                problems.append(Problem("must lie in [-90, 90]", "latitude", i))
            elif p.longitude is not None and not -180 <= p.longitude <= 180:
                problems.append(Problem("must lie in [-180, 180]", "longitude", i))
            carried: dict[str, Any] = {}
            if p.latitude is not None:
                carried["lat"], carried["lon"] = p.latitude, p.longitude
            if p.meta:
                carried["meta"] = p.meta
            extra = _encode.encode(carried).decode()
            has_extra = True
        for name, value in pairs:
            if not name:
                problems.append(Problem("a field name must not be empty", "field", i))
                continue
            series_index.append(index.setdefault(SeriesKey(b, s, name), len(index)))
            values.append(value)
            times.append(p.time)
            extras.append(extra)
            origin.append(i)
    if len(values) > max_points:
        raise PayloadTooLarge(f"{len(values)} points in one request; the limit is {max_points}")
    time_us = _times(times, origin, precision, problems)
    batch = PointBatch(
        keys=list(index),
        series_index=np.array(series_index, np.int32),
        time_us=time_us,
        value=np.array(values, np.float64),
        extra=extras if has_extra else None,
    )
    return batch, np.array(origin, np.int32)


def _times(
    times: list[Any], origin: list[int], precision: str | None, problems: list[Problem]
) -> np.ndarray:
    out = np.empty(len(times), np.int64)
    parsed: dict[str, int] = {}
    received = now_us()
    for j, t in enumerate(times):
        if type(t) is str:
            us = parsed.get(t)
            if us is None:
                try:
                    us = parsed[t] = parse_iso_us(t)
                except ValueError as exc:
                    problems.append(Problem(str(exc), "time", origin[j]))
                    us = 0
            out[j] = us
        elif t is None:
            out[j] = received
        elif precision is None:
            problems.append(
                Problem("a numeric time needs ?precision=s|ms|us|ns", "time", origin[j])
            )
        else:
            us = epoch_to_us(t, precision)
            if us is None or not -INT64_LIMIT_US <= us <= INT64_LIMIT_US:
                reason = f"{t:g} {precision} since 1970 is no time Sensorbase can hold"
                problems.append(Problem(reason, "time", origin[j]))
                us = 0
            out[j] = us
    return out


def _walk(
    items: Any,
    bucket: str | None,
    source: str | None,
    problems: list[Problem],
) -> tuple[list[NativePoint | None], str | None, str | None]:
    """The items of a body the typed conversion refused: each converted alone, None where bad.
    Once as many problems are found as a refusal lists, the rest are only counted, by plain
    type checks: a body of 100,000 bad points is refused in about the time it is read."""

    def refuse(reason: str, field: str | None = None) -> InvalidInput:
        return invalid([Problem(reason, field)])

    if isinstance(items, dict):
        unknown = set(items) - {"points", "bucket", "source"}
        if unknown:
            raise refuse(f"unknown top-level name(s): {', '.join(sorted(unknown))}")
        if not isinstance(items.get("points"), list):
            raise refuse("must be a list of points", "points")
        for name in ("bucket", "source"):
            if name in items and not isinstance(items[name], str | None):
                raise refuse("must be a string", name)
        bucket = items.get("bucket") or bucket
        source = items.get("source") or source
        items = items["points"]
    if not isinstance(items, list):
        raise refuse("the body must be a list of points or an object with 'points'")
    converted: list[NativePoint | None] = []
    for i, item in enumerate(items):
        if len(problems) >= MAX_LISTED_PROBLEMS and not _plausible(item):
            problems.append(Problem("is not a valid point", None, i))  # counted, not listed
            converted.append(None)
            continue
        try:
            converted.append(msgspec.convert(item, NativePoint))
        except msgspec.ValidationError as exc:
            problems.extend(_item_problems(item, i, exc))
            converted.append(None)
    return converted, bucket, source


_NUMBER_TYPES = (int, float)
_PLAIN: dict[str, tuple[type, ...]] = {
    "bucket": (str,),
    "source": (str,),
    "field": (str,),
    "value": _NUMBER_TYPES,
    "fields": (dict,),
    "time": (str, int, float),
    "latitude": _NUMBER_TYPES,
    "longitude": _NUMBER_TYPES,
    "meta": (dict,),
}


def _plausible(item: Any) -> bool:
    """Whether msgspec could take `item` as a NativePoint, by the types of its members alone
    (no exception raised for a bad one: the cheap test of the items past the listed ones)."""
    if type(item) is not dict:
        return False
    for name, value in item.items():
        kinds = _PLAIN.get(name)
        if kinds is None or (value is not None and (type(value) not in kinds)):
            return False
    return True


_NAMES = {f.encode_name: f.type for f in msgspec.structs.fields(NativePoint)}


def _item_problems(item: Any, index: int, exc: msgspec.ValidationError) -> list[Problem]:
    """Every bad name of a refused item, where msgspec stops at the first."""
    if not isinstance(item, dict):
        return [_problem(str(exc), index)]
    found = []
    for name, value in item.items():
        kind = _NAMES.get(name)
        if kind is None:
            found.append(Problem("is not a known name", name, index))
        elif name == "fields" and isinstance(value, dict):  # each field named on its own
            for key, number in value.items():
                found.extend(_converted(number, Number, f"fields.{key}", index))
        else:
            found.extend(_converted(value, kind, name, index))
    return found or [_problem(str(exc), index)]


def _converted(value: Any, kind: Any, path: str, index: int) -> list[Problem]:
    try:
        msgspec.convert(value, kind)
    except msgspec.ValidationError as bad:
        return [_problem(str(bad), index, path)]
    return []


def _problem(message: str, index: int, name: str = "") -> Problem:
    """msgspec's message as a Problem of item `index` (`name`: of the item's value it checked)."""
    reason, _, where = message.partition(" - at `")
    path = where.rstrip("`").removeprefix("$")
    field = (name + path if name else path.lstrip(".")) or None
    if reason.startswith("Expected `float") and "got `str`" in reason:
        reason = 'must be a JSON number, not a string (send 21.5, not "21.5")'
    elif reason.startswith("Expected `float"):
        reason = f"must be a number ({reason})"
    if reason.startswith("Object contains unknown field"):
        field = reason.split("`")[1] if "`" in reason else field
        reason = "is not a known name"
    return Problem(reason, field, index)
