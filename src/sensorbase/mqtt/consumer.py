"""The consumer: one persistent MQTT session at QoS 1, each message acknowledged (PUBACK) only
once its points are committed.

paho's network thread queues each message for the server's event loop, which takes every
message queued by then as one burst (up to `mqtt_receive_maximum` are in flight): the burst is
folded into as few writes as it can be (mqtt/handler.py), and bursts in flight meet in the same
group commits (storage/write_queue.py), which is where the throughput comes from. A burst grows
with the load: when the loop is busy, more messages wait for the next. Acknowledgements go
out in the order the messages came, as MQTT asks of QoS 1 (a message is acknowledged when it
and every one before it are committed). A message still unacknowledged when the connection
drops, or when Sensorbase dies, is sent again by the broker to the same session (clean start
off, a session expiry): written again, it replaces the same (series, time) points, so nothing is
lost and nothing doubled.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from msgspec import json
from paho.mqtt import client as paho
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from sensorbase.mqtt import broker, topics
from sensorbase.mqtt.refusals import Refusal
from sensorbase.settings import Settings

log = logging.getLogger("sensorbase.mqtt")


@dataclass(slots=True)
class _InFlight:
    mid: int
    qos: int
    connection: int
    done: bool = False


class Consumer:
    def __init__(
        self,
        settings: Settings,
        handle: Callable[[list[tuple[str, bytes]]], Awaitable[None]],
    ) -> None:
        self._settings = settings
        self._handle = handle
        self._client = broker.client(settings, settings.mqtt_client_id, manual_ack=True)
        self._client.on_connect = self._connected
        self._client.on_message = self._received
        self._client.on_disconnect = self._disconnected
        self._lock = threading.Lock()
        self._in_flight: deque[_InFlight] = deque()
        self._connection = 0  # acknowledgements belong to the connection that got the message
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._waiting: list[tuple[str, bytes, _InFlight]] = []  # for the next burst
        self.connected = threading.Event()

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        host, port, _ = broker.address(self._settings)
        properties = Properties(PacketTypes.CONNECT)
        properties.SessionExpiryInterval = self._settings.mqtt_session_expiry_s
        properties.ReceiveMaximum = self._settings.mqtt_receive_maximum
        self._client.connect_async(
            host, port, keepalive=30, clean_start=False, properties=properties
        )
        self._client.loop_start()

    def stop(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    def publish(self, topic: str, payload: bytes) -> None:
        self._client.publish(topic, payload, qos=0)

    def publish_refusal(self, org: str, refusal: Refusal) -> None:
        topic = topics.errors_topic(self._settings.mqtt_topic_prefix, org)
        self.publish(topic, json.encode(refusal.as_dict()))

    def _connected(
        self, client: paho.Client, _: Any, flags: Any, reason: Any, __: Any = None
    ) -> None:
        if reason.is_failure:
            log.error("MQTT broker refused Sensorbase's connection: %s", reason)
            return
        with self._lock:
            self._connection += 1
            self._in_flight.clear()  # the broker sends those again on this connection
        # Subscribed again each time: a broker restarted without persistence forgot them.
        share = self._settings.mqtt_share_group
        for topic_filter in topics.filters(self._settings.mqtt_topic_prefix, share):
            client.subscribe(topic_filter, qos=1)
        self.connected.set()
        log.info("MQTT connected (session present: %s)", flags.session_present)

    def _disconnected(self, *_: Any) -> None:
        self.connected.clear()

    def _received(self, _: paho.Client, __: Any, message: paho.MQTTMessage) -> None:
        assert self._loop is not None
        with self._lock:
            entry = _InFlight(message.mid, message.qos, self._connection)
            if message.qos:
                self._in_flight.append(entry)
            first = not self._waiting
            self._waiting.append((message.topic, bytes(message.payload), entry))
        if first:  # one wake-up a burst, not one a message
            self._loop.call_soon_threadsafe(self._take_burst)

    def _take_burst(self) -> None:
        with self._lock:
            burst, self._waiting = self._waiting, []
        if burst:
            task = asyncio.get_running_loop().create_task(self._work(burst))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _work(self, burst: list[tuple[str, bytes, _InFlight]]) -> None:
        # Raises only when stopping: the burst is left unacknowledged.
        await self._handle([(topic, payload) for topic, payload, _ in burst])
        self._acknowledge([entry for _, _, entry in burst if entry.qos])

    def _acknowledge(self, entries: list[_InFlight]) -> None:
        with self._lock:
            for entry in entries:
                entry.done = True
            while self._in_flight and self._in_flight[0].done:
                first = self._in_flight.popleft()
                if first.connection == self._connection:
                    self._client.ack(first.mid, first.qos)
