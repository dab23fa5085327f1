"""Decoding a DiagRAMS push into a canonical batch: each reading `{sensorId, valueName?, date,
value, labels?, precision?}` is a point of series (source=sensorId, field=valueName or "none");
`labels` and `precision` are kept in the point's extra as `{"meta": {...}}`.

    [{"sensorId":"1","date":"2020-01-01T08:03:51.000Z","value":19.9},
     {"sensorId":"2","date":"2020-01-01T08:03:51.000Z","value":0}]

What the readings hold (finite values, dates in the window, names) is the ingest pipeline's to
check; the decoder names what it cannot decode, in DiagRAMS's names.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Annotated, Any

import msgspec
import numpy as np
import numpy.typing as npt

from sensorbase.dialects.body import decode_json, parse_json
from sensorbase.errors import MAX_LISTED_PROBLEMS, PayloadTooLarge, Problem, invalid
from sensorbase.model import PointBatch, SeriesKey
from sensorbase.times import parse_iso_us

DEFAULT_VALUE_NAME = "none"

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


@dataclass(slots=True)
class Decoded:
    """A decoded push: its good readings, the reading each row came from, and the bad ones."""

    batch: PointBatch
    origin: npt.NDArray[np.int32] | None  # None: row i is reading i
    problems: list[Problem]


def decode(body: bytes, bucket: str, max_points: int) -> Decoded:
    """The readings of a push as a canonical batch of the good ones, and every bad one named
    (an empty push refused here). Whether the bad ones refuse the push is the pipeline's
    decision, once it has added its own problems (values, dates, names) to these."""
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
    if not problems:
        return Decoded(batch, None, [])
    rows = (
        np.arange(len(readings), dtype=np.int32) if origin is None else np.array(origin, np.int32)
    )
    problems.sort(key=lambda p: p.index or 0)
    if bad_date:
        keep = ~np.isin(rows, np.array(sorted(bad_date), np.int32))
        return Decoded(batch.take(keep), rows[keep], problems)
    return Decoded(batch, rows, problems)


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
