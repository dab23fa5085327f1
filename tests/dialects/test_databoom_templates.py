"""Databoom past its seed, over HTTP: the template push (a device made from a template on first
contact), signals created with `POST /v1/signals/` and validated, the Read / Publish / Create
permissions, signal status, and tenancy from outside."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from sensorbase.dialects.databoom import templates
from tests.conftest import Org, auth

PROCESSED = {"message": "ALL_INFO_PROCESSED"}
SAMPLE = templates.TEMPLATE_SAMPLE  # the body of the module's docstring, as VENDOR-NOTES gives it


@pytest.fixture
async def template(client: httpx.AsyncClient, org: Org) -> str:
    """Template 'thermo': a source flagged as template, with one ACTIVE signal."""
    reply = await client.post(
        f"/v1/buckets/{org.bucket}/sources",
        json={"key": "thermo", "name": "Thermometer", "meta": {"template": True, "site": "n"}},
        headers=org.headers,
    )
    assert reply.status_code == 201, reply.text
    signal = {
        "device": "thermo",
        "type": "number",
        "signal_token": "temperature",
        "description": "Air temperature",
        "status": "ACTIVE",
        "unit_readable": "°C",
    }
    reply = await client.post("/v1/signals/", json=signal, headers=org.headers)
    assert reply.status_code == 201, reply.text
    return "thermo"


async def _key(client: httpx.AsyncClient, org: Org, *scopes: str) -> str:
    return str((await org.new_key(client, list(scopes)))["key"])


async def _device(client: httpx.AsyncClient, org: Org, key: str) -> dict[str, Any] | None:
    reply = await client.get(f"/v1/buckets/{org.bucket}/sources/{key}", headers=org.headers)
    return dict(reply.json()) if reply.status_code == 200 else None


async def _signals(client: httpx.AsyncClient, key: str, **params: str) -> dict[str, Any]:
    reply = await client.get("/v1/signals", params=params, headers=auth(key))
    assert reply.status_code == 200, reply.text
    return {f"{s['device_token']}/{s['signal_token']}": s for s in reply.json()["data"]}


def test_the_module_docstring_carries_the_sample() -> None:
    doc = templates.__doc__ or ""
    assert '"template": "thermo"' in doc and '"type": "data"' in doc
    assert SAMPLE["message"][0]["signals"] == [{"name": "temperature", "value": 21.5}]


async def test_a_template_push_makes_the_device_on_first_contact(
    client: httpx.AsyncClient, org: Org, template: str
) -> None:
    creator = await _key(client, org, "data:write", "catalog:write")
    reply = await client.post("/v1/signals/push/AB12CD", json=SAMPLE, headers=auth(creator))
    assert reply.status_code == 200, reply.text
    assert reply.json() == PROCESSED
    device = await _device(client, org, "thermo-AB12CD")
    assert device is not None
    assert device["meta"] == {"template": False, "from_template": "thermo", "site": "n"}
    [field] = device["fields"]
    assert (field["field"], field["unit"], field["meta"]["status"]) == (
        "temperature",
        "°C",
        "ACTIVE",
    )
    reply = await client.get(
        "/v1/query",
        params={"bucket": org.bucket, "source": "thermo-AB12CD"},
        headers=org.headers,
    )
    [series] = reply.json()["series"]
    assert [(p["time"], p["value"]) for p in series["points"]] == [
        ("2024-03-01T10:00:00.000000Z", 21.5)
    ]

    # Later pushes need Publish only; a signal new to the device starts INIT. Several messages
    # (history form too) are one write.
    publisher = await _key(client, org, "data:write")
    body = {
        "type": "data",
        "message": [
            {
                "template": "thermo",
                "date": "2024-03-01T11:00:00Z",
                "signals": [{"name": "rh", "value": 40}],
            },
            {
                "template": "thermo",
                "signals": {
                    "temperature": {"history": [{"date": "03/01/2024 12:00", "value": 22}]}
                },
            },
        ],
    }
    reply = await client.post("/v1/signals/push/AB12CD", json=body, headers=auth(publisher))
    assert reply.status_code == 200, reply.text
    signals = await _signals(client, org.admin)
    assert signals["thermo-AB12CD/rh"]["status"] == "INIT"
    assert signals["thermo-AB12CD/temperature"]["status"] == "ACTIVE"
    assert set(await _signals(client, org.admin, status="INIT")) == {"thermo-AB12CD/rh"}

    # A new device needs Create: Publish alone is refused, and nothing is made.
    reply = await client.post("/v1/signals/push/ZZ99", json=SAMPLE, headers=auth(publisher))
    assert reply.status_code == 403, reply.text
    assert reply.json() == {
        "message": "this token lacks the Create permission (Sensorbase scope 'catalog:write')"
    }
    assert await _device(client, org, "thermo-ZZ99") is None
    reader = await _key(client, org, "data:read")
    reply = await client.post("/v1/signals/push/AB12CD", json=SAMPLE, headers=auth(reader))
    assert reply.status_code == 403
    assert "Publish permission" in reply.json()["message"]


async def test_template_push_refusals_name_every_problem(
    client: httpx.AsyncClient, org: Org, template: str
) -> None:
    reply = await client.post(
        "/v1/signals/push/U1", json={"type": "event", "message": []}, headers=org.headers
    )
    assert reply.status_code == 400
    fields = {e["field"] for e in reply.json()["errors"]}
    assert fields == {"type", "message"}
    body = {
        "type": "data",
        "message": [
            {"template": "thermo", "signals": [{"name": "t", "value": 1}]},
            {"template": "thermo", "date": "not a date", "signals": [{"name": "t", "value": "x"}]},
            {"signals": []},
        ],
    }
    reply = await client.post("/v1/signals/push/U1", json=body, headers=org.headers)
    assert reply.status_code == 400, reply.text
    fields = {e["field"] for e in reply.json()["errors"]}
    assert fields == {
        "message[1], date",
        "message[1], signal 't' (signals[0]), value",
        "message[2], template",
    }
    assert await _device(client, org, "thermo-U1") is None
    # Refused by the write path (a date before 1970): the device is not made either.
    old = {
        "type": "data",
        "message": [
            {
                "template": "thermo",
                "date": "1960-01-01T00:00:00Z",
                "signals": [{"name": "t", "value": 1}],
            }
        ],
    }
    reply = await client.post("/v1/signals/push/U1", json=old, headers=org.headers)
    assert reply.status_code == 400, reply.text
    assert reply.json()["errors"][0]["field"].startswith("message[0], signal 't'")
    assert await _device(client, org, "thermo-U1") is None
    # A template that does not exist, or a device that is no template.
    for name in ("nothing", org.bucket):
        bad = {
            "type": "data",
            "message": [{"template": name, "signals": [{"name": "t", "value": 1}]}],
        }
        reply = await client.post("/v1/signals/push/U1", json=bad, headers=org.headers)
        assert reply.status_code == 404, reply.text
    await client.post(
        f"/v1/buckets/{org.bucket}/sources", json={"key": "plain"}, headers=org.headers
    )
    bad = {
        "type": "data",
        "message": [{"template": "plain", "signals": [{"name": "t", "value": 1}]}],
    }
    reply = await client.post("/v1/signals/push/U1", json=bad, headers=org.headers)
    assert reply.status_code == 404
    assert "template 'plain' not found" in reply.json()["message"]


async def test_another_organisation_cannot_use_or_see_a_template(
    client: httpx.AsyncClient, org: Org, other_org: Org, template: str
) -> None:
    reply = await client.post("/v1/signals/push/X1", json=SAMPLE, headers=other_org.headers)
    assert reply.status_code == 404
    assert await _device(client, org, "thermo-X1") is None
    # Its own template of the same token makes its own device, in its own bucket.
    await client.post(
        f"/v1/buckets/{other_org.bucket}/sources",
        json={"key": "thermo", "meta": {"template": True}},
        headers=other_org.headers,
    )
    reply = await client.post("/v1/signals/push/X1", json=SAMPLE, headers=other_org.headers)
    assert reply.status_code == 200, reply.text
    assert await _device(client, org, "thermo-X1") is None
    assert set(await _signals(client, other_org.admin)) == {"thermo-X1/temperature"}
    assert "thermo-X1/temperature" not in await _signals(client, org.admin)


async def test_signals_are_created_validated_and_permissioned(
    client: httpx.AsyncClient, org: Org, other_org: Org
) -> None:
    await client.post(
        f"/v1/buckets/{org.bucket}/sources", json={"key": "6541469"}, headers=org.headers
    )
    body = {
        "device": "6541469",
        "type": "number",
        "signal_token": "humidity",
        "description": "RH",
        "unit_readable": "%",
    }
    creator = await _key(client, org, "catalog:write", "data:read")
    reply = await client.post("/v1/signals/", json=body, headers=auth(creator))
    assert reply.status_code == 201, reply.text
    made = reply.json()
    assert (made["device_token"], made["signal_token"], made["unit"]) == (
        "6541469",
        "humidity",
        "%",
    )
    assert (made["description"], made["type"], made["status"]) == ("RH", "number", "INIT")
    reply = await client.post("/v1/signals", json=body, headers=auth(creator))
    assert reply.status_code == 409, reply.text

    # Validation: INIT to ACTIVE.
    reply = await client.patch(
        f"/v1/signals/{made['_id']}", json={"status": "ACTIVE"}, headers=auth(creator)
    )
    assert reply.status_code == 200, reply.text
    assert reply.json()["status"] == "ACTIVE"
    assert (await _signals(client, org.admin))["6541469/humidity"]["status"] == "ACTIVE"
    reply = await client.patch(
        f"/v1/signals/{made['_id']}", json={"status": "DONE"}, headers=auth(creator)
    )
    assert reply.status_code == 400 and reply.json()["errors"] == [
        {"field": "status", "reason": "must be INIT or ACTIVE"}
    ]

    # Every bad field named; an unknown device is 404.
    reply = await client.post(
        "/v1/signals/", json={"signal_token": "a/b", "status": "x"}, headers=org.headers
    )
    assert reply.status_code == 400
    assert {e["field"] for e in reply.json()["errors"]} == {"device", "signal_token", "status"}
    reply = await client.post("/v1/signals/", json={**body, "device": "nope"}, headers=org.headers)
    assert reply.status_code == 404

    # Publish or Read alone may not create or validate; another organisation sees nothing.
    for scopes in (["data:write"], ["data:read"]):
        key = await _key(client, org, *scopes)
        reply = await client.post(
            "/v1/signals/", json={**body, "signal_token": "x"}, headers=auth(key)
        )
        assert reply.status_code == 403 and "Create permission" in reply.json()["message"]
        reply = await client.patch(
            f"/v1/signals/{made['_id']}", json={"status": "INIT"}, headers=auth(key)
        )
        assert reply.status_code == 403
    reply = await client.post(
        "/v1/signals/", json={**body, "signal_token": "x"}, headers=other_org.headers
    )
    assert reply.status_code == 404
    reply = await client.patch(
        f"/v1/signals/{made['_id']}", json={"status": "INIT"}, headers=other_org.headers
    )
    assert reply.status_code == 404
    assert await _signals(client, other_org.admin) == {}
