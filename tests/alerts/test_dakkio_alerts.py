"""dakkio's alerts and webhooks: created in its shapes with an X-API-Key, its plain-English
condition parsed, fired by a dakkio write, delivered signed; refusals in dakkio's error shape."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from sensorbase.dialects.dakkio.conditions import parse
from sensorbase.services import Services
from tests.alerts.receiver import receiver
from tests.conftest import Org
from tests.dialects.test_dakkio import BUCKET, SOURCE, VALIDATION, dakkio, dakkio_key, xkey

_ = dakkio  # the fixture
SECRET = "dakkio-secret-1"


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("temperature is greater than 30", ("temperature", ">", 30.0, None, 0, 0, None)),
        ("humidity < 20 for 5 minutes", ("humidity", "<", 20.0, None, 0, 300, None)),
        ("temp is at least -1.5", ("temp", ">=", -1.5, None, 0, 0, None)),
        (
            "average temperature over 10 minutes is above 8",
            ("temperature", ">", 8.0, "avg", 600, 0, None),
        ),
        ("no data received for 30 minutes", (None, ">", 0.0, None, 0, 0, 1800)),
        ("pressure is not equal to 2 for 30s", ("pressure", "!=", 2.0, None, 0, 30, None)),
    ],
)
def test_conditions(text: str, parsed: tuple[object, ...]) -> None:
    c = parse(text)
    assert (c.field, c.op, c.value, c.aggregate, c.window_s, c.for_s, c.no_data_s) == parsed


@pytest.mark.parametrize("text", ["temperature is warm", "is greater than 3", "a b > 3", ""])
def test_conditions_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse(text)


async def test_dakkio_alert_fires_and_its_webhook_is_told(
    client: httpx.AsyncClient, dakkio: Org, engine: Services
) -> None:
    headers = xkey(dakkio.admin)
    with receiver() as alert_url, receiver() as hook_url:
        body = {"bucketId": BUCKET, "url": hook_url.url, "events": ["alert.triggered"],
                "secret": SECRET}  # fmt: skip
        reply = await client.post("/api/webhooks", json=body, headers=headers)
        assert reply.status_code == 201, reply.text
        assert reply.json()["webhook"]["events"] == ["alert.triggered"]
        body = {
            "bucketId": BUCKET,
            "dataSourceId": SOURCE,
            "name": "Too hot",
            "condition": "temperature is greater than 30",
            "webhookUrl": alert_url.url,
        }
        reply = await client.post("/api/alerts", json=body, headers=headers)
        assert reply.status_code == 201, reply.text
        alert = reply.json()["alert"]
        assert alert["parsedCondition"] == {
            "field": "temperature", "operator": "greater_than", "value": 30.0
        }  # fmt: skip
        assert alert["cooldownMinutes"] == 5 and alert["status"] == "monitoring"
        secret = alert.pop("webhookSecret")

        writer = await dakkio_key(client, dakkio, "write")
        point = {"bucketId": BUCKET, "dataSourceId": SOURCE, "values": {"temperature": 31.5}}
        reply = await client.post("/api/data", json=point, headers=xkey(writer))
        assert reply.status_code == 201, reply.text
        [own] = await asyncio.to_thread(alert_url.wait, 1)
        [subscribed] = await asyncio.to_thread(hook_url.wait, 1)
        assert own.signed_by(secret) and subscribed.signed_by(SECRET)
        assert own.json["alert"]["condition"] == "temperature is greater than 30"
        assert subscribed.json["value"] == 31.5

        reply = await client.get(f"/api/alerts/{alert['_id']}", headers=headers)
        assert reply.json()["alert"]["status"] == "triggered"
        assert reply.json()["alert"]["lastTriggeredAt"] is not None
        reply = await client.get("/api/alerts", params={"bucketId": BUCKET}, headers=headers)
        assert [a["_id"] for a in reply.json()["alerts"]] == [alert["_id"]]
        reply = await client.delete(f"/api/alerts/{alert['_id']}", headers=headers)
        assert reply.json() == {"message": "Alert deleted successfully"}
        reply = await client.get(f"/api/alerts/{alert['_id']}", headers=headers)
        assert reply.status_code == 404


async def test_dakkio_refusals(client: httpx.AsyncClient, dakkio: Org) -> None:
    headers = xkey(dakkio.admin)
    body = {"bucketId": BUCKET, "dataSourceId": SOURCE, "name": "x", "condition": "t is hot",
            "cooldownMinutes": -1}  # fmt: skip
    reply = await client.post("/api/alerts", json=body, headers=headers)
    assert reply.status_code == 400
    assert reply.json()["error"] == VALIDATION["error"]
    paths = {tuple(d["path"]) for d in reply.json()["details"]}
    assert {("body", "condition"), ("body", "cooldownMinutes")} <= paths, reply.json()
    body = {"bucketId": BUCKET, "url": "gopher://x", "events": ["alert.triggered"]}
    reply = await client.post("/api/webhooks", json=body, headers=headers)
    assert reply.status_code == 400, reply.text
    reader = await dakkio_key(client, dakkio, "read")
    body = {"bucketId": BUCKET, "dataSourceId": SOURCE, "name": "x", "condition": "t > 1"}
    reply = await client.post("/api/alerts", json=body, headers=xkey(reader))
    assert reply.status_code == 403
