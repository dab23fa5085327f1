"""Vendor dialects' JSON bodies over MQTT (topic `<prefix>/<org>/<bucket>/<source>/~<dialect>`),
each decoded by its dialect's own decoder, so a device moves from the vendor's HTTP API to MQTT
without changing its payload:

    ~dakkio     POST /api/data's body, or POST /api/data/batch's ({"bucketId", "dataPoints"});
                its bucketId must be the topic's bucket, its data sources must exist
    ~diagrams   a DiagRAMS push: [{"sensorId", "date", "value", "valueName"?, ...}]
    ~databoom   a Databoom push: {"device", "date"?, "signals": [...] or {...}}; the device is
                a source of the topic's bucket that exists
    ~datacooee  a Datacooee reading (JSON:API `{"data": {"type": "SensorData", ...}}`); the
                topic's source level is the input, which exists in the topic's bucket
    ~madevo     a Madevo insert: {"datasource_id", "data": [...]}; datasource_id is the topic's
                bucket, whose schema the records follow (and grow) as over HTTP

The body's own sources (dataSourceId, sensorId, device) are the points' sources; for those the
topic's source level names the publisher only."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, replace

import numpy as np

from sensorbase.auth.keys import Principal
from sensorbase.dialects.body import parse_json
from sensorbase.dialects.dakkio import write as dakkio
from sensorbase.dialects.databoom.errors import push_words
from sensorbase.dialects.databoom.signals import decode_push
from sensorbase.dialects.datacooee import inputs as datacooee_inputs
from sensorbase.dialects.datacooee.upload import decode as decode_reading
from sensorbase.dialects.diagrams import write as diagrams
from sensorbase.dialects.madevo import write as madevo
from sensorbase.dialects.madevo.records import envelope
from sensorbase.dialects.madevo.settings import MadevoSettings
from sensorbase.errors import NotFound, PayloadTooLarge, Problem, invalid
from sensorbase.ingest.pipeline import WriteOptions
from sensorbase.model import PointBatch, SeriesKey
from sensorbase.mqtt.topics import Topic
from sensorbase.services import Services
from sensorbase.times import now_us


@dataclass(frozen=True, slots=True)
class Vendor:
    """A vendor body decoded: its write, and the dialect's words for the write's refusals."""

    batch: PointBatch
    options: WriteOptions
    words: Callable[[], AbstractContextManager[None]] = nullcontext


Decoder = Callable[[bytes, Topic, Services, Principal], Awaitable[Vendor]]


async def _dakkio(payload: bytes, topic: Topic, _: Services, __: Principal) -> Vendor:
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
    return Vendor(batch, WriteOptions(create_sources=False, origin=np.array(origin, np.int32)))


async def _diagrams(payload: bytes, topic: Topic, svc: Services, _: Principal) -> Vendor:
    decoded = diagrams.decode(payload, topic.bucket, svc.settings.max_points_per_request)
    options = WriteOptions(origin=decoded.origin, known_problems=decoded.problems)
    return Vendor(decoded.batch, options)


async def _databoom(payload: bytes, topic: Topic, svc: Services, who: Principal) -> Vendor:
    decoded = decode_push(payload, now_us(), svc.settings.max_points_per_request)
    source = await svc.catalog.sources.get(who, topic.bucket, decoded.device, "data:write")
    series_meta = {
        SeriesKey(topic.bucket, source.key, token): meta for token, meta in decoded.metas.items()
    }
    options = WriteOptions(create_sources=False, series_meta=series_meta)
    return Vendor(
        decoded.batch(topic.bucket, source.key), options, lambda: push_words(source, decoded.where)
    )


async def _datacooee(payload: bytes, topic: Topic, svc: Services, who: Principal) -> Vendor:
    # An input is its source's one field, which takes reading its series to know.
    reader = replace(who, scopes=(*who.scopes, "data:read"))
    found = await datacooee_inputs.get_input(svc.catalog, reader, topic.source, "data:write")
    if found.bucket_key != topic.bucket:  # an input elsewhere is none of this topic's
        raise NotFound(f"input '{topic.source}' not found in bucket '{topic.bucket}'")
    reading = decode_reading(payload, found.source.key)
    batch = reading.batch(SeriesKey(found.bucket_key, found.source.key, found.field))
    return Vendor(batch, WriteOptions(create_sources=False))


def _madevo_decoder() -> Decoder:
    max_records = MadevoSettings().max_records

    async def decode(payload: bytes, topic: Topic, svc: Services, who: Principal) -> Vendor:
        source_id, records = envelope(payload, max_records)
        if source_id != topic.bucket:
            raise invalid(
                [Problem(f"must be the topic's bucket '{topic.bucket}'", "datasource_id")]
            )
        bucket = await svc.catalog.buckets.get(who, source_id, "data:write")
        prepared = madevo.prepare(bucket, source_id, records)
        return Vendor(prepared.batch, prepared.options, prepared.words)

    return decode


DIALECTS: dict[str, Decoder] = {
    "dakkio": _dakkio,
    "diagrams": _diagrams,
    "databoom": _databoom,
    "datacooee": _datacooee,
    "madevo": _madevo_decoder(),
}


async def decode_vendor(payload: bytes, topic: Topic, svc: Services, who: Principal) -> Vendor:
    if len(payload) > svc.settings.max_body_bytes:
        limit = svc.settings.max_body_bytes
        raise PayloadTooLarge(f"{len(payload)} bytes in one message; the limit is {limit}")
    decoder = DIALECTS.get(topic.dialect or "")
    if decoder is None:
        names = ", ".join(f"~{name}" for name in DIALECTS)
        reason = f"no dialect '~{topic.dialect}' over MQTT (there are: {names})"
        raise invalid([Problem(reason, "topic")])
    return await decoder(payload, topic, svc, who)
