"""Commands to Mosquitto's dynamic-security plugin: published on `$CONTROL/dynamic-security/v1`,
answered on its `/response` topic, each matched to its answer by correlation data. Sensorbase's
own broker user must be a dynamic-security admin (docs/mqtt.md shows the bootstrap)."""

from __future__ import annotations

import secrets
import threading
from typing import Any

from msgspec import json
from paho.mqtt import client as paho

from sensorbase.mqtt import broker
from sensorbase.settings import Settings

CONTROL = "$CONTROL/dynamic-security/v1"
RESPONSE = f"{CONTROL}/response"
TIMEOUT_S = 2.0


class BrokerUnreachable(RuntimeError):
    """The broker did not answer (down, or Sensorbase's user is no dynamic-security admin)."""


class Dynsec:
    def __init__(self, settings: Settings) -> None:
        # A session of its own, never persistent: answers only matter to the one who asked.
        client_id = f"{settings.mqtt_client_id}-admin-{secrets.token_hex(4)}"
        self._client = broker.client(settings, client_id)
        self._client.on_connect = self._connected
        self._client.on_subscribe = self._subscribed
        self._client.on_disconnect = self._disconnected
        self._client.message_callback_add(RESPONSE, self._answered)
        self._settings = settings
        self._ready = threading.Event()
        self._lock = threading.Lock()
        self._waiting: dict[str, tuple[threading.Event, list[dict[str, Any]]]] = {}
        self.on_ready: list[Any] = []  # called (on a thread of their own) at every (re)connect

    def start(self) -> None:
        host, port, _ = broker.address(self._settings)
        self._client.connect_async(host, port, keepalive=30)
        self._client.loop_start()

    def stop(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    def wait_ready(self, timeout_s: float) -> bool:
        return self._ready.wait(timeout_s)

    def run(self, *commands: dict[str, Any]) -> list[dict[str, Any]]:
        """Each command's response, in order (an `error` member where it failed)."""
        if not self._ready.is_set():
            raise BrokerUnreachable("not connected to the MQTT broker")
        tags = [secrets.token_hex(8) for _ in commands]
        event = threading.Event()
        answers: list[dict[str, Any]] = []
        with self._lock:
            for tag in tags:
                self._waiting[tag] = (event, answers)
        pairs = zip(commands, tags, strict=True)
        body = {"commands": [{**c, "correlationData": t} for c, t in pairs]}
        self._client.publish(CONTROL, json.encode(body), qos=1)
        try:
            deadline = TIMEOUT_S
            while len(answers) < len(commands):
                if not event.wait(deadline):
                    raise BrokerUnreachable("the dynamic-security plugin did not answer")
                event.clear()
        finally:
            with self._lock:
                for tag in tags:
                    self._waiting.pop(tag, None)
        order = {t: i for i, t in enumerate(tags)}
        return sorted(answers, key=lambda a: order[a["correlationData"]])

    def _connected(self, client: paho.Client, _: Any, __: Any, reason: Any, ___: Any) -> None:
        if not reason.is_failure:
            client.subscribe(RESPONSE, qos=0)

    def _subscribed(self, *_: Any) -> None:
        self._ready.set()
        for hook in self.on_ready:
            threading.Thread(target=hook, name="sensorbase-mqtt-sync", daemon=True).start()

    def _disconnected(self, *_: Any) -> None:
        self._ready.clear()

    def _answered(self, _: paho.Client, __: Any, message: paho.MQTTMessage) -> None:
        try:
            responses = json.decode(message.payload).get("responses", [])
        except (ValueError, AttributeError):
            return
        with self._lock:
            for answer in responses:
                waiting = self._waiting.get(str(answer.get("correlationData")))
                if waiting is not None:
                    waiting[1].append(answer)
                    waiting[0].set()
