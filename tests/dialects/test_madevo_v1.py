"""Madevo's /api/v1 generation over HTTP, as its documentation's examples drive it: login,
refresh (the token in header and body), logout; data sources (plain create, get, list by page,
rename, delete, detect-timeformat, schema summary, distinct metadata); the strings-only insert
with partial success; plot; a CSV and a ZIP upload imported in the background. Both backends.
The WebSocket stream and the streamed upload's memory run against a real server
(test_madevo_v1_live.py)."""

from __future__ import annotations

import asyncio
import io
import os
import time
import zipfile
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from sensorbase.api.app import build_app
from sensorbase.auth.keys import Principal
from sensorbase.dialects.madevo.v1.config import IMPORT_KEY
from sensorbase.services import Services
from sensorbase.settings import Settings
from sensorbase.storage import open_store
from sensorbase.times import format_us, now_us
from tests.conftest import Org, auth

V1 = "/api/v1"
SECURE = f"{V1}/secure"
INSERT = f"{SECURE}/datasource/insert"


async def user(client: httpx.AsyncClient, org: Org, email: str, role: str = "admin") -> str:
    """A user of `org` signed in through /api/v1/login: their token."""
    body = {"email": email, "password": "correct horse", "role": role}
    reply = await client.post("/v1/users", json=body, headers=org.headers)
    assert reply.status_code == 201, reply.text
    reply = await client.post(f"{V1}/login", json={"email": email, "password": "correct horse"})
    assert reply.status_code == 200, reply.text
    found = reply.json()
    assert found["error"] is False and found["message"] == "login successful"
    assert found["user"]["email"] == email and found["user"]["role"] == role
    return str(found["token"])


async def plain(
    client: httpx.AsyncClient, token: str, name: str = "greenhouse", **config: Any
) -> dict[str, Any]:
    body = {"name": name, "timefield": "ts", "metafield": "sensor", **config}
    reply = await client.post(f"{SECURE}/datasources/plain", json=body, headers=auth(token))
    assert reply.status_code == 200, reply.text
    assert reply.json()["error"] is False
    return dict(reply.json()["data"])


async def plotted(
    client: httpx.AsyncClient, token: str, source: str, asset: str, value: str, **more: Any
) -> dict[str, Any]:
    body = {"datasource_id": source, "asset": asset, "value": value, **more}
    reply = await client.post(f"{SECURE}/data/plot", json=body, headers=auth(token))
    assert reply.status_code == 200, reply.text
    return dict(reply.json())


async def test_login_refresh_logout(
    client: httpx.AsyncClient, org: Org, services: Services
) -> None:
    token = await user(client, org, "ada@example.com")
    assert (await client.get(f"{SECURE}/datasources", headers=auth(token))).status_code == 200

    # The token in the header and in the body, the same one.
    refresh = f"{V1}/refresh-token"
    reply = await client.post(refresh, json={"token": token}, headers=auth(token))
    assert reply.status_code == 200, reply.text
    assert reply.json()["error"] is False
    fresh = reply.json()["token"]
    for headers, body in (
        ({}, {"token": token}),
        (auth(token), {}),
        (auth(token), {"token": fresh}),
    ):
        reply = await client.post(refresh, json=body, headers=headers)
        assert reply.status_code == 401, reply.text
        assert reply.json()["error"] is True

    # An expired access token is refused, and refreshed while its session lasts.
    found = services.store.reader().get_user("ada@example.com")
    assert found is not None
    expired = services.tokens.session_token(found, -60)
    reply = await client.get(f"{SECURE}/datasources", headers=auth(expired))
    assert reply.status_code == 401 and "expired" in reply.json()["message"]
    reply = await client.post(refresh, json={"token": expired}, headers=auth(expired))
    assert reply.status_code == 200, reply.text
    renewed = reply.json()["token"]
    assert (await client.get(f"{SECURE}/datasources", headers=auth(renewed))).status_code == 200
    # A session older than 7 days is over.
    old = services.tokens.session_token(found, -60, now_us() // 1_000_000 - 8 * 86_400)
    reply = await client.post(refresh, json={"token": old}, headers=auth(old))
    assert reply.status_code == 401 and "session has ended" in reply.json()["message"]

    # Logout ends every token of the user, and their refresh.
    reply = await client.post(f"{SECURE}/logout", headers=auth(renewed))
    assert reply.json() == {"error": False, "message": "logout successful"}
    for gone in (token, fresh, renewed):
        reply = await client.get(f"{SECURE}/datasources", headers=auth(gone))
        assert reply.status_code == 401, reply.text
    reply = await client.post(refresh, json={"token": renewed}, headers=auth(renewed))
    assert reply.status_code == 401

    reply = await client.post(f"{V1}/login", json={"email": "ada@example.com", "password": "no"})
    assert reply.status_code == 401 and reply.json()["error"] is True
    assert (await client.get(f"{SECURE}/datasources")).status_code == 401


@pytest.fixture
async def node_b(settings: Settings, services: Services) -> AsyncIterator[httpx.AsyncClient]:
    """A second node on the same store (the same SQLite file, or PostgreSQL database)."""
    other = Services(settings, open_store(settings))
    assert other.start() is None  # (the first node bootstrapped)
    transport = httpx.ASGITransport(app=build_app(other, manage_lifecycle=False))
    async with httpx.AsyncClient(transport=transport, base_url="http://node-b") as client:
        yield client
    other.stop()


async def test_logout_on_one_node_ends_the_token_on_another(
    client: httpx.AsyncClient, node_b: httpx.AsyncClient, org: Org
) -> None:
    token = await user(client, org, "ada@example.com")
    assert (await node_b.get(f"{SECURE}/datasources", headers=auth(token))).status_code == 200
    reply = await node_b.post(f"{SECURE}/logout", headers=auth(token))
    assert reply.status_code == 200, reply.text
    assert (await client.get(f"{SECURE}/datasources", headers=auth(token))).status_code == 401
    reply = await client.post(f"{V1}/refresh-token", json={"token": token}, headers=auth(token))
    assert reply.status_code == 401


async def test_data_sources(client: httpx.AsyncClient, org: Org) -> None:
    token = await user(client, org, "ada@example.com")
    made = await plain(client, token, timeformat="%Y-%m-%d %H:%M:%S")
    assert made["name"] == "greenhouse" and made["timefield"] == "ts"
    assert made["metafield"] == "sensor" and made["timeformat"] == "%Y-%m-%d %H:%M:%S"
    reply = await client.get(f"{SECURE}/datasource", params={"id": made["id"]}, headers=auth(token))
    assert reply.status_code == 200 and reply.json()["data"]["id"] == made["id"]

    # 20 a page (the org's own bucket "farm" counts too).
    for n in range(20):
        await plain(client, token, f"source {n}")
    first = (await client.get(f"{SECURE}/datasources?page=1", headers=auth(token))).json()
    second = (await client.get(f"{SECURE}/datasources?page=2", headers=auth(token))).json()
    assert len(first["data"]) == 20 and len(second["data"]) == 2
    assert first["total"] == 22 and first["pages"] == 2
    reply = await client.get(f"{SECURE}/datasources?page=0", headers=auth(token))
    assert reply.status_code == 400

    body = {"id": made["id"], "name": "glasshouse"}
    reply = await client.patch(f"{SECURE}/datasource", json=body, headers=auth(token))
    assert reply.status_code == 200 and reply.json()["data"]["name"] == "glasshouse"
    reply = await client.get(f"{SECURE}/datasource?id={made['id']}", headers=auth(token))
    assert reply.json()["data"]["name"] == "glasshouse"

    # Every problem of a create named; a writer may not create.
    reply = await client.post(
        f"{SECURE}/datasources/plain", json={"timeformat": "yyyy"}, headers=auth(token)
    )
    assert reply.status_code == 400
    named = {d["column"] for d in reply.json()["details"]}
    assert named == {"name", "timefield", "timeformat"}
    for empty in ("", False, 0):  # refused, not taken for the default
        reply = await client.post(
            f"{SECURE}/datasources/plain",
            json={"name": "e", "timefield": "ts", "timeformat": empty},
            headers=auth(token),
        )
        assert reply.status_code == 400, empty
        assert [d["column"] for d in reply.json()["details"]] == ["timeformat"]
    assert (await plain(client, token, "nulled", timeformat=None))["timeformat"] == "ISO8601"
    writer = await user(client, org, "bob@example.com", "writer")
    reply = await client.post(
        f"{SECURE}/datasources/plain", json={"name": "x", "timefield": "ts"}, headers=auth(writer)
    )
    assert reply.status_code == 403

    reply = await client.delete(f"{SECURE}/datasource?id={made['id']}", headers=auth(token))
    assert reply.json() == {"error": False, "message": "datasource deleted"}
    reply = await client.get(f"{SECURE}/datasource?id={made['id']}", headers=auth(token))
    assert reply.status_code == 404 and reply.json()["error"] is True


async def test_insert_partial_success_and_plot(client: httpx.AsyncClient, org: Org) -> None:
    token = await user(client, org, "ada@example.com")
    source = (await plain(client, token, timeformat="%Y-%m-%d %H:%M:%S"))["id"]
    rows = [
        {"ts": "2025-01-01 10:00:00", "sensor": "S1", "temperature": "21.5", "zone": "A"},
        {"ts": "", "sensor": "S1", "temperature": "22"},
        {"ts": "2025-01-01 11:00:00", "sensor": "S2", "temperature": "19"},
        {"ts": "2025-01-01T12:00:00Z", "sensor": "S1", "temperature": "23"},
        {"ts": "2025-01-01 12:00:00", "temperature": "23"},
        {"ts": "2025-01-01 13:00:00", "sensor": "S1", "temperature": 24},
        {"ts": "2025-01-01 14:00:00", "sensor": "S1", "temperature": "warm"},
    ]
    body = {"datasource_id": source, "data": rows}
    reply = await client.patch(INSERT, json=body, headers=auth(token))
    assert reply.status_code == 200, reply.text
    found = reply.json()
    assert found["error"] is True and found["inserted_rows"] == 2
    assert found["message"] == (
        "inserted 2 rows, skipped 5 rows: time field is empty at index 1; "
        "time field '2025-01-01T12:00:00Z' does not match timeformat '%Y-%m-%d %H:%M:%S' at "
        "index 3; meta field is empty at index 4; value of 'temperature' is not a string at "
        "index 5; column 'temperature' is a number column (a column keeps its type): send a "
        'number or a numeric string; got "warm" at index 6'
    )
    assert [s["index"] for s in found["skipped"]] == [1, 3, 4, 5, 6]

    # The documented success, then a row the second insert replaces (same sensor and time).
    again = [{"ts": "2025-01-01 10:00:00", "sensor": "S1", "temperature": "20.5"}]
    reply = await client.patch(
        INSERT, json={"datasource_id": source, "data": again}, headers=auth(token)
    )
    assert reply.json() == {"error": False, "message": "datasource updated", "inserted_rows": 1}

    plot = await plotted(client, token, source, "S1", "temperature", **{
        "from": "2025-01-01T00:00:00Z", "to": "2025-01-02T00:00:00Z"})  # fmt: skip
    assert plot == {
        "error": False,
        "data": [{"time": "2025-01-01T10:00:00.000000Z", "value": 20.5}],
        "total": 1,
    }
    window = {"from": "2025-01-01T10:30:00Z", "to": "2025-01-01T11:00:00Z"}
    assert (await plotted(client, token, source, "S2", "temperature", **window))["total"] == 1
    assert (await plotted(client, token, source, "S3", "temperature"))["data"] == []

    # Nothing valid: nothing stored, 422 in the same words; over 1000 rows: 413.
    bad = {"datasource_id": source, "data": [{"ts": "", "sensor": "S1"}]}
    reply = await client.patch(INSERT, json=bad, headers=auth(token))
    assert reply.status_code == 422
    assert (
        reply.json()["message"] == "inserted 0 rows, skipped 1 rows: time field is empty at index 0"
    )
    many = {"datasource_id": source, "data": [rows[0]] * 1001}
    assert (await client.patch(INSERT, json=many, headers=auth(token))).status_code == 413

    reply = await client.post(
        f"{SECURE}/datasource/distinct-metadata", json={"datasource_id": source},
        headers=auth(token),
    )  # fmt: skip
    assert reply.json()["data"] == ["S1", "S2"]
    reply = await client.get(
        f"{SECURE}/datasource/store-ds-schema-summary?id={source}", headers=auth(token)
    )
    [summary] = reply.json()["data"]
    assert summary["columns"] == [
        {"name": "ts", "type": "time"},
        {"name": "sensor", "type": "meta"},
        {"name": "temperature", "type": "number"},
        {"name": "zone", "type": "string"},
    ]


async def test_auth_and_tenancy(client: httpx.AsyncClient, org: Org, other_org: Org) -> None:
    token = await user(client, org, "ada@example.com")
    source = (await plain(client, token))["id"]
    rows = [{"ts": "2025-01-01T10:00:00Z", "sensor": "S1", "temperature": "21.5"}]
    reply = await client.patch(INSERT, json={"datasource_id": source, "data": rows})
    assert reply.status_code == 401
    reply = await client.patch(
        INSERT, json={"datasource_id": source, "data": rows}, headers=auth("forged.jwt.token")
    )
    assert reply.status_code == 401
    reader = await user(client, org, "rita@example.com", "reader")
    reply = await client.patch(
        INSERT, json={"datasource_id": source, "data": rows}, headers=auth(reader)
    )
    assert reply.status_code == 403
    assert (await plotted(client, reader, source, "S1", "temperature"))["data"] == []

    # Another organisation's user: the data source does not exist for them, whatever the route.
    stranger = await user(client, other_org, "eve@example.com")
    checks = [
        client.get(f"{SECURE}/datasource?id={source}", headers=auth(stranger)),
        client.patch(INSERT, json={"datasource_id": source, "data": rows}, headers=auth(stranger)),
        client.post(
            f"{SECURE}/data/plot",
            json={"datasource_id": source, "asset": "S1", "value": "temperature"},
            headers=auth(stranger),
        ),
        client.patch(
            f"{SECURE}/datasource", json={"id": source, "name": "mine"}, headers=auth(stranger)
        ),
        client.delete(f"{SECURE}/datasource?id={source}", headers=auth(stranger)),
        client.post(
            f"{SECURE}/datasource/distinct-metadata",
            json={"datasource_id": source},
            headers=auth(stranger),
        ),
    ]
    for reply in await asyncio.gather(*checks):
        assert reply.status_code == 404, reply.text
    listed = (await client.get(f"{SECURE}/datasources", headers=auth(stranger))).json()
    assert source not in [d["id"] for d in listed["data"]]
    reply = await client.get(f"{SECURE}/datasource?id={source}", headers=auth(token))
    assert reply.json()["data"]["name"] == "greenhouse"  # not renamed, not deleted


async def test_detect_timeformat(client: httpx.AsyncClient, org: Org) -> None:
    token = await user(client, org, "ada@example.com")
    detect = f"{SECURE}/datasource/detect-timeformat"
    cases = {
        "2025-01-01T10:00:00Z": "ISO8601",
        "2025-01-01 10:00:00": "%Y-%m-%d %H:%M:%S",
        "31/01/2025 10:00:00": "%d/%m/%Y %H:%M:%S",
        "1735725600": "unix",
        "1735725600000": "unix_ms",
    }
    for value, expected in cases.items():
        reply = await client.post(detect, json={"values": [value]}, headers=auth(token))
        assert reply.json()["timeformat"] == expected, value
    reply = await client.post(detect, json={"values": ["soon"]}, headers=auth(token))
    assert reply.json()["error"] is True


async def wait_imported(client: httpx.AsyncClient, token: str, source: str) -> dict[str, Any]:
    for _ in range(200):
        reply = await client.get(f"{SECURE}/datasource?id={source}", headers=auth(token))
        progress = reply.json()["data"]["import"]
        if progress["status"] in ("done", "failed"):
            return dict(progress)
        await asyncio.sleep(0.05)
    raise AssertionError(f"the import did not end: {progress}")


@pytest.mark.parametrize("packed", [False, True], ids=["csv", "zip"])
async def test_upload_and_import(client: httpx.AsyncClient, org: Org, packed: bool) -> None:
    token = await user(client, org, "ada@example.com")
    lines = ["time,device,temperature,zone"]
    lines += [f"2025-01-01 10:{m:02d}:00,D{m % 3},{20 + m / 10},north" for m in range(60)]
    lines.insert(5, ",D1,20,north")  # no time: skipped, named by its data row
    payload = ("\n".join(lines) + "\n").encode()
    name = "readings.csv"
    if packed:
        packed_file = io.BytesIO()
        with zipfile.ZipFile(packed_file, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr(name, payload)
        payload, name = packed_file.getvalue(), "readings.zip"
    reply = await client.post(
        f"{SECURE}/datasource/upload", files={"file": (name, payload)}, headers=auth(token)
    )
    assert reply.status_code == 200, reply.text
    uploaded = reply.json()
    assert uploaded["columns"] == [
        {"name": "time", "type": "time", "timeformat": "%Y-%m-%d %H:%M:%S"},
        {"name": "device", "type": "string"},
        {"name": "temperature", "type": "number"},
        {"name": "zone", "type": "string"},
    ]
    assert uploaded["sample"][0] == {
        "time": "2025-01-01 10:00:00", "device": "D0", "temperature": "20.0", "zone": "north"
    }  # fmt: skip
    assert len(uploaded["sample"]) == 10

    body = {
        "upload_id": uploaded["upload_id"],
        "name": "readings",
        "timefield": "time",
        "metafield": "device",
        "timeformat": "%Y-%m-%d %H:%M:%S",
    }
    reply = await client.put(f"{SECURE}/datasource", json=body, headers=auth(token))
    assert reply.status_code == 200, reply.text
    source = reply.json()["data"]["id"]
    progress = await wait_imported(client, token, source)
    assert progress["status"] == "done", progress
    assert progress["rows_inserted"] == 60 and progress["rows_skipped"] == 1
    assert progress["skipped"] == [{"row": 5, "reason": "time field is empty"}]
    assert progress["bytes_read"] == progress["bytes_total"]
    plot = await plotted(client, token, source, "D1", "temperature")
    assert plot["total"] == 20 and plot["data"][0] == {
        "time": "2025-01-01T10:01:00.000000Z", "value": 20.1
    }  # fmt: skip

    # The upload is gone once imported; another org never sees one.
    reply = await client.put(f"{SECURE}/datasource", json=body, headers=auth(token))
    assert reply.status_code == 404


async def test_an_import_whose_node_stopped_says_so(
    client: httpx.AsyncClient, org: Org, services: Services
) -> None:
    token = await user(client, org, "ada@example.com")
    payload = b"time,device,temperature\n2025-01-01 10:00:00,D0,20.5\n"
    reply = await client.post(
        f"{SECURE}/datasource/upload", files={"file": ("r.csv", payload)}, headers=auth(token)
    )
    assert reply.status_code == 200, reply.text
    body = {"upload_id": reply.json()["upload_id"], "name": "readings", "timefield": "time",
            "metafield": "device", "timeformat": "%Y-%m-%d %H:%M:%S"}  # fmt: skip
    reply = await client.put(f"{SECURE}/datasource", json=body, headers=auth(token))
    assert reply.status_code == 200, reply.text
    source = reply.json()["data"]["id"]
    assert (await wait_imported(client, token, source))["status"] == "done"
    # As a node that stopped mid-import left it: "running", its last progress saved long ago.
    found = services.store.reader().get_org(org.key)
    assert found is not None
    admin = Principal("k", found.id, ("admin",), None, False)

    async def left_running(seconds_ago: int) -> dict[str, Any]:
        saved = format_us(now_us() - seconds_ago * 1_000_000)
        progress = {"status": "running", "rows_inserted": 30, "rows_skipped": 0,
                    "started_at": saved, "updated_at": saved}  # fmt: skip
        await services.catalog.buckets.change_meta(
            admin, source, lambda b: {**b.meta, IMPORT_KEY: progress}
        )
        reply = await client.get(f"{SECURE}/datasource?id={source}", headers=auth(token))
        return dict(reply.json()["data"]["import"])

    assert (await left_running(10))["status"] == "running"  # still moving, maybe elsewhere
    stopped = await left_running(6 * 60)
    assert stopped["status"] == "failed"
    assert "interrupted" in stopped["error"] and "after 30 rows" in stopped["error"]


async def test_upload_refusals(
    client: httpx.AsyncClient, org: Org, other_org: Org, services: Services
) -> None:
    token = await user(client, org, "ada@example.com")
    upload = f"{SECURE}/datasource/upload"
    reply = await client.post(upload, content=b"a,b\n1,2\n", headers=auth(token))
    assert reply.status_code == 415
    reply = await client.post(
        upload, content=b"ts,v\n2025-01-01T00:00:00Z,1\n",
        headers={**auth(token), "Content-Type": "text/csv"},
    )  # fmt: skip
    assert reply.status_code == 200, reply.text
    upload_id = reply.json()["upload_id"]
    stranger = await user(client, other_org, "eve@example.com")
    body = {"upload_id": upload_id, "name": "theirs", "timefield": "ts"}
    reply = await client.put(f"{SECURE}/datasource", json=body, headers=auth(stranger))
    assert reply.status_code == 404
    body = {"upload_id": upload_id, "name": "mine", "timefield": "time"}
    reply = await client.put(f"{SECURE}/datasource", json=body, headers=auth(token))
    assert reply.status_code == 400 and reply.json()["details"][0]["column"] == "timefield"

    # An upload left unused for a day is removed at the organisation's next upload.
    [left] = (services.settings.data_dir / "madevo-uploads").glob(f"*/{upload_id}")
    two_days_ago = time.time() - 2 * 86_400
    os.utime(left, (two_days_ago, two_days_ago))
    reply = await client.post(upload, files={"file": ("b.csv", b"ts,v\n")}, headers=auth(token))
    assert reply.status_code == 200, reply.text
    body = {"upload_id": upload_id, "name": "mine", "timefield": "ts"}
    reply = await client.put(f"{SECURE}/datasource", json=body, headers=auth(token))
    assert reply.status_code == 404 and not left.exists()
