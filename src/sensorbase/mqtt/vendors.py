"""Vendor dialects' JSON bodies over MQTT (topic `<prefix>/<org>/<bucket>/<source>/~<dialect>`),
each decoded by its dialect's own decoder, so a device moves from the vendor's HTTP API to MQTT
without changing its payload:

    ~dakkio     POST /api/data's body, or POST /api/data/batch's ({"bucketId", "dataPoints"});
                its bucketId must be the topic's bucket, its data sources must exist
    ~diagrams   a DiagRAMS push: [{"sensorId", "date", "value", "valueName"?, ...}]

The body's own sources (dataSourceId, sensorId) are the points' sources; the topic's source
level names the publisher only."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from sensorbase.dialects.body import parse_json
from sensorbase.dialects.dakkio import write as dakkio
from sensorbase.dialects.diagrams import write as diagrams
from sensorbase.errors import PayloadTooLarge, Problem, invalid
from sensorbase.ingest.pipeline import WriteOptions
from sensorbase.model import PointBatch
from sensorbase.mqtt.topics import Topic
from sensorbase.settings import Settings

Decoder = Callable[[bytes, Topic, Settings], tuple[PointBatch, WriteOptions]]


def _dakkio(payload: bytes, topic: Topic, _: Settings) -> tuple[PointBatch, WriteOptions]:
    body = parse_json(payload)
    if not isinstance(body, dict):
        raise invalid([Problem("must be a JSON object, as dakkio's POST /api/data takes")])
    if "dataPoints" in body:
        bucket, points = dakkio.decode_batch(body)
    else:
        bucket, point = dakkio.decode_one(body)
        points = [point]
    if bucket != topic.bucket:
        reason = f"must be the topic's bucket '{topic.bucket}'"
        raise invalid([Problem(reason, "bucketId")])
    batch, origin = dakkio.columns(bucket, points)
    return batch, WriteOptions(create_sources=False, origin=np.array(origin, np.int32))


def _diagrams(payload: bytes, topic: Topic, settings: Settings) -> tuple[PointBatch, WriteOptions]:
    decoded = diagrams.decode(payload, topic.bucket, settings.max_points_per_request)
    return decoded.batch, WriteOptions(origin=decoded.origin, known_problems=decoded.problems)


DIALECTS: dict[str, Decoder] = {"dakkio": _dakkio, "diagrams": _diagrams}


def decode_vendor(
    payload: bytes, topic: Topic, settings: Settings
) -> tuple[PointBatch, WriteOptions]:
    if len(payload) > settings.max_body_bytes:
        limit = settings.max_body_bytes
        raise PayloadTooLarge(f"{len(payload)} bytes in one message; the limit is {limit}")
    decoder = DIALECTS.get(topic.dialect or "")
    if decoder is None:
        names = ", ".join(f"~{name}" for name in DIALECTS)
        reason = f"no dialect '~{topic.dialect}' over MQTT (there are: {names})"
        raise invalid([Problem(reason, "topic")])
    return decoder(payload, topic, settings)
