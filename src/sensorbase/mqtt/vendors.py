"""Vendor dialects' JSON bodies over MQTT (topic `.../<source>/~<dialect>`), each decoded by
its dialect's own decoder."""

from __future__ import annotations

from sensorbase.auth.keys import Principal
from sensorbase.dialects.native.decode import Decoded
from sensorbase.errors import Problem, invalid
from sensorbase.mqtt.topics import Topic
from sensorbase.services import Services

DIALECTS: dict[str, object] = {}


async def decode_vendor(svc: Services, who: Principal, topic: Topic, payload: bytes) -> Decoded:
    names = ", ".join(f"~{name}" for name in sorted(DIALECTS)) or "none yet"
    reason = f"no dialect '~{topic.dialect}' over MQTT (there are: {names})"
    raise invalid([Problem(reason, "topic")])
