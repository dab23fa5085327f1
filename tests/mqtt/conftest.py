"""Fixtures: a real Mosquitto broker, a real `sensorbase serve` consuming from it, and devices
(paho clients) that publish with Sensorbase keys as their broker credentials."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from paho.mqtt import client as paho
from paho.mqtt.enums import CallbackAPIVersion

from tests.live import KEY_PATTERN, Server, start_server
from tests.mqtt.mosquitto import Broker, available

why_not = available()
if why_not and os.environ.get("CI"):
    raise RuntimeError(f"MQTT tests need a broker: {why_not}")
pytestmark = pytest.mark.skipif(why_not is not None, reason=why_not or "")


@dataclass
class Sensorbase:
    """A server process consuming from the broker, and its bootstrap admin key."""

    data: Path
    broker: Broker
    server: Server
    admin: str
    env: dict[str, str]

    def http(self, key: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key or self.admin}"}
        return httpx.Client(base_url=self.server.url, headers=headers, timeout=10)

    def restart(self) -> None:
        self.server = start_server(self.data, env=self.env)

    def key(self, scopes: list[str], bucket: str | None = None, org: str | None = None) -> str:
        body: dict[str, Any] = {"name": "device", "scopes": scopes}
        if bucket:
            body["bucket"] = bucket
        path = f"/v1/orgs/{org}/keys" if org else "/v1/keys"
        with self.http() as client:
            reply = client.post(path, json=body)
        assert reply.status_code == 201, reply.text
        return str(reply.json()["key"])

    def points(self, bucket: str, key: str | None = None, **params: Any) -> dict[str, list]:
        """Every point of the bucket, by 'source/field'."""
        with self.http(key) as client:
            reply = client.get(
                "/v1/query",
                params={"bucket": bucket, "start": "1970-01-01T00:00:00Z", "limit": 100_000},
            )
        assert reply.status_code == 200, reply.text
        return {f"{s['source']}/{s['field']}": s["points"] for s in reply.json()["series"]}


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    made = Broker(tmp_path / "broker").start()
    yield made
    made.stop()


@pytest.fixture
def sensorbase(tmp_path: Path, broker: Broker) -> Iterator[Sensorbase]:
    yield from _sensorbase(tmp_path, broker, {})


@pytest.fixture(params=["sqlite", "postgres"])
def sensorbase_on_both(
    request: pytest.FixtureRequest, tmp_path: Path, broker: Broker
) -> Iterator[Sensorbase]:
    """A `sensorbase` on the embedded SQLite store, then on a fresh PostgreSQL database."""
    if request.param == "sqlite":
        yield from _sensorbase(tmp_path, broker, {})
        return
    from tests.pg import temporary_database

    with temporary_database() as url:
        yield from _sensorbase(tmp_path, broker, {"SENSORBASE_DATABASE_URL": url})


def _sensorbase(tmp_path: Path, broker: Broker, more: dict[str, str]) -> Iterator[Sensorbase]:
    env = broker.settings_env() | {"SENSORBASE_MQTT_TIME_PRECISION": "s"} | more
    server = start_server(tmp_path, env=env)
    found = KEY_PATTERN.search(server.stderr())
    assert found is not None, server.stderr()
    made = Sensorbase(tmp_path, broker, server, found.group(1), env)
    with made.http() as client:
        assert client.post("/v1/buckets", json={"key": "farm"}).status_code == 201
    yield made
    made.server.stop()


@dataclass
class Device:
    """A paho client publishing with a key: username its id, password the whole key."""

    client: paho.Client
    connected: threading.Event = field(default_factory=threading.Event)
    disconnected: threading.Event = field(default_factory=threading.Event)
    refused: list[Any] = field(default_factory=list)
    acks: dict[int, Any] = field(default_factory=dict)  # message id -> the PUBACK's reason

    def publish(self, topic: str, payload: bytes | str | float, timeout_s: float = 5) -> Any:
        """Publish at QoS 1 and wait for the broker's PUBACK: its reason code."""
        info = self.client.publish(topic, payload, qos=1)
        info.wait_for_publish(timeout_s)
        return wait_for(lambda: self.acks.get(info.mid), lambda r: r is not None)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def device(
    broker: Broker, key: str, client_id: str = "", inflight: int = 20, **kwargs: Any
) -> Device:
    key_id = key.split("_")[1]
    client = paho.Client(
        CallbackAPIVersion.VERSION2, client_id=client_id, protocol=paho.MQTTv5, **kwargs
    )
    client.max_inflight_messages_set(inflight)  # (paho's default is 20)
    client.username_pw_set(key_id, key)
    made = Device(client)

    def connected(*args: Any) -> None:
        reason = args[3]
        if reason.is_failure:
            made.refused.append(reason)
        made.connected.set()

    def published(_: Any, __: Any, mid: int, reason: Any, ___: Any) -> None:
        made.acks[mid] = reason

    client.on_connect = connected
    client.on_publish = published
    client.on_disconnect = lambda *_: made.disconnected.set()
    client.connect("127.0.0.1", broker.port)
    client.loop_start()
    assert made.connected.wait(5)
    return made


def wait_for(fetch: Any, done: Any = bool, timeout_s: float = 10) -> Any:
    """Poll `fetch()` until `done(what it returned)` (its value), or fail."""
    deadline = time.monotonic() + timeout_s
    while True:
        found = fetch()
        if done(found):
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout_s} s (last: {found!r})")
        time.sleep(0.05)
