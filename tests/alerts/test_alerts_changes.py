"""Changing rules and webhooks (PATCH), and the alert history's retention, through the HTTP API
on every backend with a real receiver."""

from __future__ import annotations

import asyncio

import httpx

from sensorbase.services import Services
from sensorbase.times import now_us
from tests.alerts.receiver import receiver
from tests.alerts.test_alerts import SECRET, hook, rule, until, write
from tests.conftest import Org, auth

DAY_US = 86_400 * 1_000_000


async def test_a_rule_changed_restarts_its_states_and_keeps_its_history(
    client: httpx.AsyncClient, org: Org, engine: Services
) -> None:
    with receiver() as got:
        await hook(client, org, got.url, ["alert.triggered", "alert.resolved"])
        made = await rule(client, org, op=">", threshold=30, cooldown_s=0)
        path = f"/v1/alerts/{made['key']}"
        await write(client, org, "fr-1", "t", 35.0)
        await asyncio.to_thread(got.wait, 1)
        # Not the condition: the state stays firing.
        reply = await client.patch(path, json={"name": "warmer"}, headers=org.headers)
        assert reply.status_code == 200, reply.text
        assert reply.json()["name"] == "warmer"
        assert [s["state"] for s in reply.json()["states"]] == ["firing"]
        # The condition: back to ok, then evaluated at once against the newest point (35).
        reply = await client.patch(path, json={"threshold": 40}, headers=org.headers)
        assert reply.status_code == 200, reply.text
        assert reply.json()["condition"] == "t > 40"
        assert [s["state"] for s in reply.json()["states"]] == ["ok"]
        reply = await client.patch(path, json={"op": "<"}, headers=org.headers)  # 35 < 40
        fired = await asyncio.to_thread(got.wait, 2)
        assert fired[1].json["alert"]["condition"] == "t < 40"
        assert fired[1].json["value"] == 35.0
        events = (await client.get(f"{path}/events", headers=org.headers)).json()["events"]
        assert [(e["from"], e["to"]) for e in events] == [
            ("ok", "firing"),
            ("firing", "ok"),
            ("ok", "firing"),
        ]
        assert len(got.accepted) == 2  # a restart sends nothing itself


async def test_a_rule_change_is_checked_as_a_creation_is(
    client: httpx.AsyncClient, org: Org
) -> None:
    made = await rule(client, org)
    path = f"/v1/alerts/{made['key']}"
    bad = {"op": "~", "window_s": -1, "cooldown_s": "5", "enabled": 1, "bucket": "elsewhere"}
    reply = await client.patch(path, json=bad, headers=org.headers)
    assert reply.status_code == 400, reply.text
    named = {e["field"] for e in reply.json()["errors"]}
    assert {"op", "window_s", "cooldown_s", "enabled", "bucket"} <= named, reply.text
    reply = await client.patch(path, json={"name": None, "threshold": None}, headers=org.headers)
    assert reply.status_code == 400
    assert {e["field"] for e in reply.json()["errors"]} == {"name", "threshold"}
    reply = await client.patch(path, json={"webhook_url": "ftp://x/y"}, headers=org.headers)
    assert reply.status_code == 400 and "webhook_url" in reply.text
    # An aggregate without a window gets the default; null takes it off again.
    reply = await client.patch(path, json={"aggregate": "max"}, headers=org.headers)
    assert (reply.json()["aggregate"], reply.json()["window_s"]) == ("max", 300)
    reply = await client.patch(path, json={"aggregate": None}, headers=org.headers)
    assert reply.json()["aggregate"] is None
    # Tenancy and scopes as for creating.
    assert (await client.patch("/v1/alerts/nope", json={}, headers=org.headers)).status_code == 404
    reader = await org.new_key(client, ["data:read"])
    reply = await client.patch(path, json={"name": "x"}, headers=auth(reader["key"]))
    assert reply.status_code == 403


async def test_a_webhook_changed_takes_its_pending_deliveries_along(
    client: httpx.AsyncClient, org: Org, engine: Services
) -> None:
    with receiver(fail_first=1000) as broken, receiver() as fixed:
        made = await hook(client, org, broken.url, ["data.received"])
        await write(client, org, "fr-1", "t", 1.0)
        await until(lambda: asyncio.sleep(0, len(broken.attempts) >= 1))
        body = {"url": fixed.url, "secret": "a-new-secret", "events": ["data.received"]}
        reply = await client.patch(f"/v1/webhooks/{made['key']}", json=body, headers=org.headers)
        assert reply.status_code == 200, reply.text
        assert reply.json()["url"] == fixed.url and "secret" not in reply.json()
        [moved] = await asyncio.to_thread(fixed.wait, 1)  # the retry went to the new URL
        assert moved.signed_by("a-new-secret") and not moved.signed_by(SECRET)
        bad = {"events": ["nope"], "key": "x", "url": None}
        reply = await client.patch(f"/v1/webhooks/{made['key']}", json=bad, headers=org.headers)
        assert reply.status_code == 400
        assert {e["field"] for e in reply.json()["errors"]} == {"events.0", "key", "url"}


async def test_the_history_and_finished_deliveries_are_purged_after_their_retention(
    client: httpx.AsyncClient, org: Org, engine: Services
) -> None:
    assert engine.settings.alert_history_days == 30  # the default
    with receiver(fail_first=1000) as failing, receiver() as got:
        await hook(client, org, got.url, ["alert.triggered"])
        await hook(client, org, failing.url, ["alert.triggered"])  # stays pending
        made = await rule(client, org, op=">", threshold=30, cooldown_s=0)
        await write(client, org, "fr-1", "t", 35.0)
        await asyncio.to_thread(got.wait, 1)

        async def log() -> list[str]:
            reply = await client.get("/v1/deliveries", headers=org.headers)
            return sorted(d["status"] for d in reply.json()["deliveries"])

        async def delivered() -> bool:
            return "delivered" in await log()

        await until(delivered)
        events_path = f"/v1/alerts/{made['key']}/events"
        # 29 days on: everything kept.
        done = await engine.retention.run_once(now_us() + 29 * DAY_US)
        assert (done.events, done.deliveries) == (0, 0)
        # 31 days on: the event and the delivered delivery go; the pending one stays.
        done = await engine.retention.run_once(now_us() + 31 * DAY_US)
        assert (done.events, done.deliveries) == (1, 1)
        assert (await client.get(events_path, headers=org.headers)).json()["events"] == []
        assert await log() == ["pending"]
        # The rule's state is not history: it stays.
        state = (await client.get(f"/v1/alerts/{made['key']}", headers=org.headers)).json()
        assert [s["state"] for s in state["states"]] == ["firing"]
