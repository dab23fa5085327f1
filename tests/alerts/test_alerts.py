"""Alerts end to end through the HTTP API, on every backend: rules fire on the write path and
on the timer, deliveries reach a real HTTP receiver (which fails the first ones), signed, with
ids a receiver can drop duplicates by; history and the delivery log read back; tenancy."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest

from sensorbase.services import Services
from tests.alerts.receiver import Receiver, receiver
from tests.conftest import Org, auth

SECRET = "s3cret-for-tests"


async def write(client: httpx.AsyncClient, org: Org, source: str, field: str, value: float) -> None:
    body = {"bucket": org.bucket, "source": source, "points": [{"field": field, "value": value}]}
    reply = await client.post("/v1/write", json=body, headers=org.headers)
    assert reply.status_code in (200, 204), reply.text


async def until(check: Any, timeout_s: float = 15.0) -> Any:
    """Poll `check()` (a coroutine function) until it returns something true."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = await check()
        if found:
            return found
        await asyncio.sleep(0.05)
    raise AssertionError("not within the time allowed")


async def hook(client: httpx.AsyncClient, org: Org, url: str, events: list[str]) -> dict[str, Any]:
    body = {"url": url, "events": events, "secret": SECRET}
    reply = await client.post("/v1/webhooks", json=body, headers=org.headers)
    assert reply.status_code == 201, reply.text
    return dict(reply.json())


async def rule(client: httpx.AsyncClient, org: Org, **given: Any) -> dict[str, Any]:
    body = {"bucket": org.bucket, "name": "warm", "source": "fr-1", "field": "t", **given}
    reply = await client.post("/v1/alerts", json=body, headers=org.headers)
    assert reply.status_code == 201, reply.text
    return dict(reply.json())


async def test_fires_delivers_signed_and_resolves(
    client: httpx.AsyncClient, org: Org, engine: Services
) -> None:
    with receiver(fail_first=2) as got:
        await hook(client, org, got.url, ["alert.triggered", "alert.resolved"])
        made = await rule(client, org, op=">", threshold=30, cooldown_s=0)
        await write(client, org, "fr-1", "t", 20.0)
        await write(client, org, "fr-1", "t", 35.0)
        [fired] = await asyncio.to_thread(got.wait, 1)
        assert len(got.attempts) == 3  # two refused, then accepted: the same delivery
        assert {a.headers["x-sensorbase-delivery"] for a in got.attempts} == {fired.json["id"]}
        assert fired.signed_by(SECRET)
        assert not fired.signed_by("another secret")
        body = fired.json
        assert body["event"] == "alert.triggered"
        assert body["alert"]["id"] == made["key"]
        assert body["alert"]["state"] == "firing"
        assert body["series"] == {"bucket": org.bucket, "source": "fr-1", "field": "t"}
        assert body["value"] == 35.0

        await write(client, org, "fr-1", "t", 36.0)  # still firing: nothing new
        await write(client, org, "fr-1", "t", 10.0)
        delivered = await asyncio.to_thread(got.wait, 2)
        assert delivered[1].json["event"] == "alert.resolved"
        assert len(got.unique()) == 2

    reply = await client.get(f"/v1/alerts/{made['key']}/events", headers=org.headers)
    moves = [(e["from"], e["to"]) for e in reply.json()["events"]]
    assert moves == [("firing", "resolved"), ("ok", "firing")]
    reply = await client.get("/v1/deliveries", headers=org.headers)
    log = reply.json()["deliveries"]
    assert [d["status"] for d in log] == ["delivered", "delivered"]
    assert sorted(d["attempts"] for d in log) == [1, 3]
    reply = await client.get(f"/v1/alerts/{made['key']}", headers=org.headers)
    [state] = reply.json()["states"]
    assert state["state"] == "resolved" and state["series"]["source"] == "fr-1"


async def test_pattern_window_and_held_rules(
    client: httpx.AsyncClient, org: Org, engine: Services
) -> None:
    with receiver() as got:
        await hook(client, org, got.url, ["alert.triggered"])
        # Every fr-* source's t: the average over a minute above 30, held for 0.5 s.
        await rule(
            client, org, source="fr-*", op=">", threshold=30, aggregate="avg", window_s=60,
            for_s=1,
        )  # fmt: skip
        await write(client, org, "fr-2", "t", 40.0)
        await write(client, org, "fr-2", "t", 10.0)  # average 25: not breaking
        await write(client, org, "other", "t", 99.0)  # not matched
        await asyncio.sleep(0.5)
        assert got.accepted == []
        await write(client, org, "fr-2", "t", 70.0)  # average 40: pending, then firing
        [fired] = await asyncio.to_thread(got.wait, 1)
        assert fired.json["series"]["source"] == "fr-2"
        assert fired.json["value"] == pytest.approx(40.0)
        await asyncio.sleep(0.5)
        assert len(got.accepted) == 1


async def test_no_data_fires_on_the_timer_and_a_point_resolves_it(
    client: httpx.AsyncClient, org: Org, engine: Services
) -> None:
    with receiver() as got:
        await hook(client, org, got.url, ["alert.triggered", "alert.resolved"])
        await write(client, org, "fr-1", "t", 1.0)
        await rule(client, org, no_data_s=1, cooldown_s=0)
        [quiet] = await asyncio.to_thread(got.wait, 1)
        assert quiet.json["alert"]["condition"] == "no data for 1s"
        await write(client, org, "fr-1", "t", 2.0)
        delivered = await asyncio.to_thread(got.wait, 2)
        assert delivered[1].json["event"] == "alert.resolved"


async def test_data_received_and_bucket_updated(
    client: httpx.AsyncClient, org: Org, engine: Services
) -> None:
    with receiver() as got:
        await hook(client, org, got.url, ["data.received", "bucket.updated"])
        await write(client, org, "fr-1", "t", 1.0)
        [received] = await asyncio.to_thread(got.wait, 1)
        assert received.json["event"] == "data.received"
        assert received.json["bucket"] == org.bucket
        assert received.json["points"] == 1
        assert received.json["sources"] == ["fr-1"]
        body = {"description": "north field"}
        reply = await client.patch(f"/v1/buckets/{org.bucket}", json=body, headers=org.headers)
        assert reply.status_code == 200, reply.text
        reply = await client.delete(f"/v1/buckets/{org.bucket}", headers=org.headers)
        assert reply.status_code == 204, reply.text
        changes = [r.json for r in (await asyncio.to_thread(got.wait, 3))[1:]]
        assert {(c["event"], c["bucket"], c["change"]) for c in changes} == {
            ("bucket.updated", org.bucket, "updated"),
            ("bucket.updated", org.bucket, "deleted"),
        }


async def test_bucket_updated_is_sent_at_once_not_on_the_timer(
    client: httpx.AsyncClient, org: Org, services: Services
) -> None:
    # With an hour between the deliverer's own looks, only the poke after the bucket change's
    # commit can deliver within the receiver's wait.
    services.settings.alerts_check_s = 3600.0
    await services.start_background()
    try:
        with receiver() as got:
            await hook(client, org, got.url, ["bucket.updated"])
            body = {"description": "south field"}
            reply = await client.patch(f"/v1/buckets/{org.bucket}", json=body, headers=org.headers)
            assert reply.status_code == 200, reply.text
            [changed] = await asyncio.to_thread(got.wait, 1)
            assert (changed.json["event"], changed.json["change"]) == ("bucket.updated", "updated")
    finally:
        await services.stop_background()


async def test_tenancy(
    client: httpx.AsyncClient, org: Org, other_org: Org, engine: Services
) -> None:
    with receiver() as got:
        await hook(client, org, got.url, ["alert.triggered", "data.received"])
        made = await rule(client, org, source="*", field="*", op=">", threshold=0)
        # The other organisation writes the same names (its bucket named like ours, too).
        reply = await client.post(
            "/v1/buckets", json={"key": org.bucket}, headers=other_org.headers
        )
        assert reply.status_code == 201
        twin = Org(other_org.key, other_org.admin, org.bucket)
        await write(client, twin, "fr-1", "t", 100.0)
        await write(client, other_org, "fr-1", "t", 100.0)
        await asyncio.sleep(1.0)
        assert got.attempts == []
        # Its key cannot see, read the history of, or delete our rule, nor see our webhooks.
        for path in (f"/v1/alerts/{made['key']}", f"/v1/alerts/{made['key']}/events"):
            assert (await client.get(path, headers=other_org.headers)).status_code == 404
        reply = await client.delete(f"/v1/alerts/{made['key']}", headers=other_org.headers)
        assert reply.status_code == 404
        assert (await client.get("/v1/alerts", headers=other_org.headers)).json() == {"alerts": []}
        reply = await client.get("/v1/webhooks", headers=other_org.headers)
        assert reply.json() == {"webhooks": []}
        # A key limited to another bucket of our organisation does not see it either.
        reply = await client.post("/v1/buckets", json={"key": "barn"}, headers=org.headers)
        assert reply.status_code == 201
        limited = await org.new_key(client, ["data:read"], bucket="barn")
        reply = await client.get(f"/v1/alerts/{made['key']}", headers=auth(limited["key"]))
        assert reply.status_code == 404
        # Our own write fires.
        await write(client, org, "fr-1", "t", 1.0)
        delivered = await asyncio.to_thread(got.wait, 2)
        assert {d.json["event"] for d in delivered} == {"alert.triggered", "data.received"}
        reply = await client.get("/v1/deliveries", headers=other_org.headers)
        assert reply.json() == {"deliveries": []}


async def test_refused_rules_and_urls(client: httpx.AsyncClient, org: Org) -> None:
    for body, field in (
        ({"url": "ftp://example.com/x", "events": ["alert.triggered"]}, "url"),
        ({"url": "http://example.com/x", "events": ["alert.sneezed"]}, "events"),
    ):
        reply = await client.post("/v1/webhooks", json=body, headers=org.headers)
        assert reply.status_code == 400, reply.text
        assert field in reply.text
    body = {"bucket": org.bucket, "name": "x", "source": "a", "field": "b", "aggregate": "avg",
            "window_s": 10**9}  # fmt: skip
    reply = await client.post("/v1/alerts", json=body, headers=org.headers)
    assert reply.status_code == 400 and "window_s" in reply.text
    body["window_s"] = 0  # an aggregate's default window: 5 minutes
    reply = await client.post("/v1/alerts", json=body, headers=org.headers)
    assert reply.status_code == 201 and reply.json()["window_s"] == 300
    body = {"bucket": "nope", "name": "x", "source": "a", "field": "b"}
    assert (await client.post("/v1/alerts", json=body, headers=org.headers)).status_code == 404
    reader = await org.new_key(client, ["data:read"])
    body = {"bucket": org.bucket, "name": "x", "source": "a", "field": "b"}
    reply = await client.post("/v1/alerts", json=body, headers=auth(reader["key"]))
    assert reply.status_code == 403


def test_private_addresses_refused_when_the_operator_says_so() -> None:
    from sensorbase.alerts.urls import url_problem

    assert url_problem("http://127.0.0.1:9/x", allow_private=True) is None
    assert "non-public" in (url_problem("http://127.0.0.1:9/x", allow_private=False) or "")
    assert "non-public" in (url_problem("http://localhost/x", allow_private=False) or "")
    assert "IPv4" in (url_problem("http://[::1]/x", allow_private=True) or "")
    assert "non-public" in (url_problem("http://10.1.2.3/x", allow_private=False) or "")
    assert "http" in (url_problem("file:///etc/passwd", allow_private=True) or "")


_ = Receiver


def test_the_documented_verification_snippet_accepts_our_signature() -> None:
    import re
    from pathlib import Path

    from sensorbase.alerts.signing import signature

    doc = (Path(__file__).parents[2] / "docs" / "alerts.md").read_text()
    code = re.search(r"```python\n(.*?)```", doc, re.S)
    assert code
    scope: dict[str, Any] = {"SECRET": SECRET}
    exec(code.group(1), scope)
    body = b'{"id": "dlv_1", "event": "alert.triggered"}'
    now = int(time.time())
    headers = {
        "X-Sensorbase-Timestamp": str(now),
        "X-Sensorbase-Signature": signature(SECRET, now, body),
        "X-Sensorbase-Delivery": "dlv_1",
    }
    assert scope["verify"](SECRET, headers, body)
    assert not scope["verify"](SECRET, headers, body + b" ")
    assert not scope["verify"]("other", headers, body)
    assert scope["handle"](headers, body) == 200
    assert scope["handle"](headers, body) == 200  # the duplicate, dropped
    assert scope["seen"] == {"dlv_1"}


async def test_a_deleted_webhook_gets_nothing_more(
    client: httpx.AsyncClient, org: Org, engine: Services
) -> None:
    with receiver(fail_first=1000) as got:
        made = await hook(client, org, got.url, ["data.received"])
        await write(client, org, "fr-1", "t", 1.0)
        await until(lambda: asyncio.sleep(0, len(got.attempts) >= 2))  # failing, retried
        reply = await client.delete(f"/v1/webhooks/{made['key']}", headers=org.headers)
        assert reply.status_code == 204
        [logged] = (await client.get("/v1/deliveries", headers=org.headers)).json()["deliveries"]
        assert (logged["status"], logged["last_error"]) == ("failed", "webhook deleted")
        assert logged["attempts"] >= 2
        tried = len(got.attempts)
        await asyncio.sleep(0.5)
        assert len(got.attempts) <= tried + 1  # (at most the attempt in flight)
