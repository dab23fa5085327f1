"""MQTT ingestion: devices publish to a Mosquitto broker, Sensorbase consumes (docs/mqtt.md).

A front end at the dialects' rank: it reuses their decoders and writes through the one write
path. `Bridge` is what a server process starts when SENSORBASE_MQTT_URL is set: the consumer
(consumer.py), the broker's clients kept in step with the API keys (credentials.py), the
refusals (refusals.py, read through routes.py)."""

from __future__ import annotations

import asyncio
import logging

from sensorbase.mqtt.consumer import Consumer
from sensorbase.mqtt.credentials import BrokerCredentials
from sensorbase.mqtt.handler import Handler
from sensorbase.mqtt.refusals import Refusals
from sensorbase.mqtt.routes import router
from sensorbase.services import Services

__all__ = ["Bridge", "router"]

log = logging.getLogger("sensorbase.mqtt")


class Bridge:
    def __init__(self, services: Services) -> None:
        settings = services.settings
        self.refusals = Refusals(settings.mqtt_recent_errors)
        self.consumer = Consumer(settings, self._handle)
        self.handler = Handler(services, self.refusals, self.consumer.publish_refusal)
        self.credentials: BrokerCredentials | None = None
        if settings.mqtt_manage_credentials:
            self.credentials = BrokerCredentials(services)

    async def _handle(self, burst: list[tuple[str, bytes]]) -> None:
        await self.handler.burst(burst)

    async def start(self) -> None:
        if self.credentials is not None:
            await self.credentials.start()
        self.consumer.start(asyncio.get_running_loop())

    async def stop(self) -> None:
        self.handler.stopping = True
        self.consumer.stop()
        if self.credentials is not None:
            self.credentials.stop()
