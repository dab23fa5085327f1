"""Deliveries survive the sudden death of a real `sensorbase serve` (SIGKILL), and nodes
sharing one PostgreSQL database fire a rule once."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.alerts.receiver import receiver
from tests.live import KEY_PATTERN, Server, start_server

SECRET = "s3cret-for-tests"
FAST = {
    "SENSORBASE_ALERTS_CHECK_S": "0.2",
    "SENSORBASE_WEBHOOK_TIMEOUT_S": "2",
    "SENSORBASE_WEBHOOK_RETRY_MAX_S": "1",
}


def key_of(server: Server) -> str:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        found = KEY_PATTERN.search(server.stderr())
        if found:
            return found.group(1)
        time.sleep(0.05)
    raise AssertionError(server.stderr())


def setup(url: str, key: str, hook_url: str) -> None:
    headers = {"Authorization": f"Bearer {key}"}
    for path, body in (
        ("/v1/buckets", {"key": "farm"}),
        ("/v1/webhooks", {"url": hook_url, "events": ["alert.triggered"], "secret": SECRET}),
        (
            "/v1/alerts",
            {"bucket": "farm", "name": "warm", "source": "*", "field": "t", "threshold": 30},
        ),
    ):
        reply = httpx.post(url + path, json=body, headers=headers)
        assert reply.status_code == 201, reply.text


def write(url: str, key: str, source: str, value: float) -> None:
    body: dict[str, Any] = {
        "bucket": "farm",
        "source": source,
        "points": [{"field": "t", "value": value}],
    }
    reply = httpx.post(f"{url}/v1/write", json=body, headers={"Authorization": f"Bearer {key}"})
    assert reply.status_code in (200, 204), reply.text


def kill(server: Server) -> None:
    server.process.kill()  # SIGKILL: no shutdown, no flush
    server.process.wait()


@pytest.mark.slow(10)
def test_delivered_after_sigkill(tmp_path: Path) -> None:
    # Retries wait ~2 s: the server is killed while the failed first attempt waits for its retry.
    env = {**FAST, "SENSORBASE_WEBHOOK_RETRY_BASE_S": "2"}
    with receiver(fail_first=1) as got:
        server = start_server(tmp_path, env=env)
        try:
            key = key_of(server)
            setup(server.url, key, got.url)
            write(server.url, key, "fr-1", 35.0)
            deadline = time.monotonic() + 10
            while not got.attempts and time.monotonic() < deadline:
                time.sleep(0.01)
            assert len(got.attempts) == 1 and got.accepted == []
            kill(server)
            server = start_server(tmp_path, env=env)
            [first] = got.wait(1)
            assert (
                first.headers["x-sensorbase-delivery"]
                == got.attempts[0].headers["x-sensorbase-delivery"]
            )
            assert first.signed_by(SECRET)
            assert first.json["series"]["source"] == "fr-1"

            # Killed at once after the acknowledgement: whether or not the transition had
            # committed, the restarted server delivers (its start-up pass evaluates every rule).
            write(server.url, key, "fr-2", 36.0)
            kill(server)
            server = start_server(tmp_path, env=env)
            got.wait(2)
            sources = {r.json["series"]["source"] for r in got.unique().values()}
            assert sources == {"fr-1", "fr-2"}
        finally:
            server.stop()


@pytest.mark.slow(10)
def test_two_nodes_on_postgresql_fire_once(tmp_path: Path) -> None:
    from tests.pg import temporary_database

    with temporary_database() as url, receiver() as got:
        env = {**FAST, "SENSORBASE_DATABASE_URL": url, "SENSORBASE_WEBHOOK_RETRY_BASE_S": "0.1"}
        (tmp_path / "a").mkdir()
        (tmp_path / "b").mkdir()
        first = start_server(tmp_path / "a", env=env)
        second = start_server(tmp_path / "b", env=env)
        try:
            key = key_of(first)
            setup(first.url, key, got.url)
            time.sleep(0.6)  # the second node reloads the rules within alerts_check_s
            for value in (35.0, 36.0, 37.0):  # each node observes breaking points
                write(first.url, key, "fr-1", value)
                write(second.url, key, "fr-1", value + 0.5)
            got.wait(1)
            time.sleep(1.0)  # time for a second (wrong) firing to arrive
            assert len(got.attempts) == 1, [a.json for a in got.attempts]
        finally:
            first.stop()
            second.stop()
