"""An MQTT payload into a canonical batch, through the dialects' own decoders.

Native payloads (topic `<prefix>/<org>/<bucket>/<source>[/<field>]`), the topic giving the
bucket and source (and the field, when it has a fifth level):

    [{"field": "temperature", "value": 21.5, "time": 1795254000}, ...]   a list of points
    {"points": [...]}                                                    POST /v1/write's body
    {"field": "temperature", "value": 21.5, "time": "2026-11-21T10:00:00Z"}  one point
    {"fields": {"temperature": 21.5, "humidity": 40.2}}                  one point, two fields
    {"temperature": 21.5, "humidity": 40.2}                              a fields object
    {"value": 21.5}  or  21.5                                            with the topic's field

A vendor's JSON body (topic `.../<source>/~<dialect>`) is decoded by that dialect's own decoder
(mqtt/vendors.py). Numeric times are in `mqtt_time_precision` units; no time means now.
"""

from __future__ import annotations

from typing import Any

import msgspec

from sensorbase.dialects.body import parse_json
from sensorbase.dialects.native.decode import Decoded, NativePoint, decode
from sensorbase.errors import PayloadTooLarge, Problem, invalid
from sensorbase.model import PointBatch, SeriesKey
from sensorbase.mqtt.topics import Topic
from sensorbase.times import now_us

_POINT_NAMES = {f.encode_name for f in msgspec.structs.fields(NativePoint)}
_encode = msgspec.json.Encoder()


def decode_native(
    payload: bytes, topic: Topic, precision: str, max_points: int, max_bytes: int
) -> Decoded:
    """A native payload's batch, every point in the topic's bucket."""
    if len(payload) > max_bytes:
        raise PayloadTooLarge(f"{len(payload)} bytes in one message; the limit is {max_bytes}")
    body = payload.strip()
    if not body.startswith(b"[") or topic.field is not None:  # (a list goes as it came)
        parsed = parse_json(body)
        if isinstance(parsed, int | float) and not isinstance(parsed, bool):
            return _bare(parsed, topic)
        body = _encode.encode(_shaped(parsed, topic.field))
    decoded = decode(
        body,
        ndjson=False,
        bucket=topic.bucket,
        source=topic.source,
        precision=precision,
        max_points=max_points,
    )
    foreign = sorted({k.bucket for k in decoded.batch.keys if k.bucket != topic.bucket})
    if foreign:
        # The broker's rules allow a key this topic's bucket: a point may not name another.
        reason = f"the topic's bucket is '{topic.bucket}'; a point may not name another"
        raise invalid([Problem(f"{reason} ({', '.join(foreign)})", "bucket")])
    return decoded


def _bare(value: float, topic: Topic) -> Decoded:
    if topic.field is None:
        raise invalid([Problem("a bare number needs a field: publish to .../<source>/<field>")])
    key = SeriesKey(topic.bucket, topic.source, topic.field)
    return Decoded(PointBatch.one(key, now_us(), float(value)), None, [])


def _shaped(parsed: Any, field: str | None) -> Any:
    """The payload as POST /v1/write's body: one point or a fields object made a list, and the
    topic's field given to the points that name none."""
    if isinstance(parsed, dict) and "points" not in parsed:
        if not set(parsed) <= _POINT_NAMES:  # a fields object: every name is a field
            parsed = {"fields": parsed}
        parsed = [parsed]
    if field is None:
        return parsed
    points = parsed.get("points") if isinstance(parsed, dict) else parsed
    if isinstance(points, list):
        for point in points:
            if isinstance(point, dict) and "field" not in point and "fields" not in point:
                point["field"] = field
    return parsed
