"""`POST /api/external/v1/inputs/{input_pk}/inputdata/`: one reading, as a JSON:API resource.

    {"data": {"type": "SensorData", "id": "null",
              "attributes": {"value": "12.5", "timestamp": "2020-10-13T14:02:39.489Z",
                             "latitude": 40.730610, "longitude": -73.935242},
              "relationships": {"sensor": {"data": {"type": "Sensor", "id": "senxxxxxxxxxx"}}}}}

`value` is a number or a numeric string (parsed strictly: `12.5`, `-3`, `1e3`; not `12,5`,
` 12`, `NaN`); `latitude`/`longitude` likewise, and come together. The reply (201) echoes the
stored resource: its id is the reading's time in microseconds since the epoch (an input holds
one reading per instant, so re-sending a reading gives it the same id), the timestamp comes
back with six fractional digits and the value as a string.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

import msgspec
import numpy as np

from sensorbase.dialects.body import parse_json
from sensorbase.errors import InvalidInput, Problem, invalid
from sensorbase.model import PointBatch, SeriesKey
from sensorbase.times import format_us, parse_iso_us

_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")  # ASCII digits
# The numeric strings the OpenAPI document declares: `_NUMBER`'s with at most 200 digits before
# the point and a two-digit exponent, so that every one is a finite float (10**299 at most).
NUMBER_PATTERN = r"^[+-]?(?:[0-9]{1,200}(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]{1,2})?$"
# Latitudes and longitudes as numeric strings, within their bounds (plain decimals).
DEGREES_PATTERN = {
    90: r"^[+-]?(?:90(?:\.0*)?|[0-8]?[0-9](?:\.[0-9]*)?|\.[0-9]+)$",
    180: r"^[+-]?(?:180(?:\.0*)?|1[0-7][0-9](?:\.[0-9]*)?|[0-9]{1,2}(?:\.[0-9]*)?|\.[0-9]+)$",
}
ATTRIBUTES = "/data/attributes"
KNOWN_ATTRIBUTES = (
    "value",
    "timestamp",
    "latitude",
    "longitude",
    "x_axis_value",
    "x_axis_data",
    "metadata",
    "sensor",
)
_encode = msgspec.json.Encoder()


@dataclass(frozen=True, slots=True)
class Reading:
    time_us: int
    value: float
    latitude: float | None
    longitude: float | None
    x_axis_value: Any
    metadata: Any

    def extra(self) -> str | None:
        """The canonical per-point extras (`lat`, `lon`, `meta`, `x_axis_value`) as JSON text."""
        carried: dict[str, Any] = {}
        if self.latitude is not None:
            carried["lat"], carried["lon"] = self.latitude, self.longitude
        if self.metadata is not None:
            carried["meta"] = self.metadata
        if self.x_axis_value is not None:
            carried["x_axis_value"] = self.x_axis_value
        return _encode.encode(carried).decode() if carried else None

    def batch(self, key: SeriesKey) -> PointBatch:
        extra = self.extra()
        return PointBatch(
            keys=[key],
            series_index=np.zeros(1, np.int32),
            time_us=np.array([self.time_us], np.int64),
            value=np.array([self.value], np.float64),
            extra=[extra] if extra is not None else None,
        )


def number_text(value: float) -> str:
    """A float as Datacooee shows numbers: a decimal string (`12.5`)."""
    return repr(float(value))


def echo(reading: Reading, input_key: str) -> dict[str, Any]:
    attributes: dict[str, Any] = {
        "timestamp": format_us(reading.time_us),
        "value": number_text(reading.value),
    }
    if reading.latitude is not None and reading.longitude is not None:
        attributes["latitude"] = number_text(reading.latitude)
        attributes["longitude"] = number_text(reading.longitude)
    if reading.x_axis_value is not None:
        attributes["x_axis_value"] = reading.x_axis_value
    if reading.metadata is not None:
        attributes["metadata"] = reading.metadata
    return {
        "data": {
            "type": "SensorData",
            "id": str(reading.time_us),
            "attributes": attributes,
            "relationships": {"sensor": {"data": {"type": "Sensor", "id": input_key}}},
        }
    }


def _number(raw: Any, pointer: str, problems: list[Problem]) -> float | None:
    reason = 'must be a number or a numeric string such as "12.5"'
    if isinstance(raw, bool) or not isinstance(raw, int | float | str):
        problems.append(Problem(f"{reason}, got {_shown(raw)}", pointer))
        return None
    if isinstance(raw, str) and not _NUMBER.fullmatch(raw):
        problems.append(Problem(f"{reason}, got {_shown(raw)}", pointer))
        return None
    try:
        number = float(raw)
    except OverflowError:
        number = math.inf
    if not math.isfinite(number):
        problems.append(Problem(f"must be a finite number, got {_shown(raw)}", pointer))
        return None
    return number


def _shown(raw: Any) -> str:
    text = _encode.encode(raw).decode()
    return text if len(text) <= 60 else text[:57] + "..."


def _object(raw: Any, pointer: str, problems: list[Problem]) -> dict[str, Any] | None:
    if not isinstance(raw, dict):
        what = "is missing" if raw is None else f"must be an object, got {_shown(raw)}"
        problems.append(Problem(what, pointer))
        return None
    return raw


def _check_type(data: dict[str, Any], expected: str, pointer: str, problems: list[Problem]) -> None:
    kind = data.get("type")
    if kind is not None and (not isinstance(kind, str) or kind.lower() != expected.lower()):
        problems.append(Problem(f'must be "{expected}", got {_shown(kind)}', pointer))


def decode(body: bytes, input_key: str) -> Reading:
    """The reading of an upload body, or InvalidInput naming every bad member."""
    try:
        doc = parse_json(body)
    except InvalidInput as exc:  # the document's root is at fault: its pointer is "/"
        raise InvalidInput(exc.detail, [Problem(p.reason, "/") for p in exc.problems]) from None
    problems: list[Problem] = []
    if not isinstance(doc, dict):
        raise invalid([Problem('must be an object {"data": {...}}', "/")])
    data = _object(doc.get("data"), "/data", problems)
    if data is None:
        raise invalid(problems)
    _check_type(data, "SensorData", "/data/type", problems)
    attributes = _object(data.get("attributes"), ATTRIBUTES, problems)
    _check_relationship(data.get("relationships"), input_key, problems)
    if attributes is None:
        raise invalid(problems)
    for name in attributes:
        if name not in KNOWN_ATTRIBUTES:
            problems.append(
                Problem(
                    f"is not an attribute of SensorData (known: {', '.join(KNOWN_ATTRIBUTES)})",
                    f"{ATTRIBUTES}/{name}",
                )
            )
    value = None
    if attributes.get("value") is None:
        problems.append(Problem("is required", f"{ATTRIBUTES}/value"))
    else:
        value = _number(attributes["value"], f"{ATTRIBUTES}/value", problems)
    time_us = _timestamp(attributes.get("timestamp"), problems)
    latitude, longitude = _position(attributes, problems)
    x_axis = _x_axis(attributes, problems)
    metadata = attributes.get("metadata")
    if metadata is not None and not isinstance(metadata, dict | str):
        problems.append(
            Problem(
                f"must be an object or a string, got {_shown(metadata)}", f"{ATTRIBUTES}/metadata"
            )
        )
    sensor = attributes.get("sensor")
    if sensor is not None and sensor != input_key:
        problems.append(
            Problem(
                f"is {_shown(sensor)} but the URL names input '{input_key}'", f"{ATTRIBUTES}/sensor"
            )
        )
    if problems or value is None or time_us is None:
        raise invalid(problems)
    return Reading(time_us, value, latitude, longitude, x_axis, metadata)


def _check_relationship(raw: Any, input_key: str, problems: list[Problem]) -> None:
    if raw is None:
        return
    pointer = "/data/relationships"
    relationships = _object(raw, pointer, problems)
    if relationships is None or relationships.get("sensor") is None:
        return
    sensor = _object(relationships["sensor"], f"{pointer}/sensor", problems)
    if sensor is None or sensor.get("data") is None:
        return
    linked = _object(sensor["data"], f"{pointer}/sensor/data", problems)
    if linked is None:
        return
    _check_type(linked, "Sensor", f"{pointer}/sensor/data/type", problems)
    linked_id = linked.get("id")
    if linked_id is not None and linked_id != input_key:
        problems.append(
            Problem(
                f"is {_shown(linked_id)} but the URL names input '{input_key}'",
                f"{pointer}/sensor/data/id",
            )
        )


def _timestamp(raw: Any, problems: list[Problem]) -> int | None:
    pointer = f"{ATTRIBUTES}/timestamp"
    if raw is None:
        problems.append(Problem("is required", pointer))
        return None
    if not isinstance(raw, str):
        problems.append(
            Problem(
                f'must be an ISO 8601 time string such as "2020-10-13T14:02:39.489Z", '
                f"got {_shown(raw)}",
                pointer,
            )
        )
        return None
    try:
        return parse_iso_us(raw.strip(), naive_is_utc=True)
    except ValueError as exc:
        problems.append(Problem(f'{exc}; send e.g. "2020-10-13T14:02:39.489Z"', pointer))
        return None


def _position(
    attributes: dict[str, Any], problems: list[Problem]
) -> tuple[float | None, float | None]:
    found: dict[str, float | None] = {}
    for name, bound in (("latitude", 90.0), ("longitude", 180.0)):
        raw = attributes.get(name)
        pointer = f"{ATTRIBUTES}/{name}"
        if raw is None or raw == "":
            found[name] = None
            continue
        number = _number(raw, pointer, problems)
        if number is not None and not -bound <= number <= bound:
            problems.append(
                Problem(f"must lie in [-{bound:g}, {bound:g}], got {_shown(raw)}", pointer)
            )
            number = None
        found[name] = number
    latitude, longitude = found["latitude"], found["longitude"]
    given = {n for n in ("latitude", "longitude") if attributes.get(n) not in (None, "")}
    if len(given) == 1:
        missing = ({"latitude", "longitude"} - given).pop()
        problems.append(
            Problem(
                f"is required with {given.pop()} (they come together)", f"{ATTRIBUTES}/{missing}"
            )
        )
    return latitude, longitude


def _x_axis(attributes: dict[str, Any], problems: list[Problem]) -> Any:
    value = attributes.get("x_axis_value")
    other = attributes.get("x_axis_data")
    if value is not None and other is not None:
        problems.append(
            Problem("give x_axis_value or x_axis_data, not both", f"{ATTRIBUTES}/x_axis_data")
        )
        return None
    chosen, name = (value, "x_axis_value") if value is not None else (other, "x_axis_data")
    if chosen is not None and (
        isinstance(chosen, bool) or not isinstance(chosen, int | float | str)
    ):
        problems.append(
            Problem(f"must be a number or a string, got {_shown(chosen)}", f"{ATTRIBUTES}/{name}")
        )
        return None
    return chosen
