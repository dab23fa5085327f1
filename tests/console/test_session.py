"""Console sessions over HTTP (the ASGI app, every backend): signing in with a password or a
key, the cookie's flags, the CSRF token on state changes, signing out, a session ended by
revoking its key or deleting its user, and a second organisation's session seeing nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from sensorbase.api.app import build_app
from sensorbase.services import Services
from tests.conftest import Org

SESSION = "/console/api/session"
PASSWORD = "correct horse battery"


@pytest.fixture
async def browser(services: Services) -> AsyncIterator[httpx.AsyncClient]:
    """A second client of the same app, with its own cookie jar: a person's browser."""
    app = build_app(services, manage_lifecycle=False)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://sensorbase") as c:
        yield c


async def new_user(client: httpx.AsyncClient, org: Org, email: str, role: str = "admin") -> None:
    body = {"email": email, "password": PASSWORD, "role": role}
    reply = await client.post("/v1/users", json=body, headers=org.headers)
    assert reply.status_code == 201, reply.text


def cookie_header(reply: httpx.Response) -> str:
    [header] = [v for k, v in reply.headers.multi_items() if k.lower() == "set-cookie"]
    return header


async def test_sign_in_with_a_password(
    client: httpx.AsyncClient, browser: httpx.AsyncClient, org: Org
) -> None:
    await new_user(client, org, "ana@acme.test")
    reply = await browser.post(SESSION, json={"email": "ana@acme.test", "password": PASSWORD})
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["who"] == {
        "organisation": "acme",
        "email": "ana@acme.test",
        "key": None,
        "scopes": ["admin"],
        "bucket": None,
        "server_admin": False,
    }
    assert isinstance(body["csrf"], str) and len(body["csrf"]) >= 32
    header = cookie_header(reply)
    assert header.startswith("sb_session=")
    flags = {part.strip().lower() for part in header.split(";")[1:]}
    assert {"httponly", "samesite=strict", "path=/"} <= flags
    assert "secure" not in flags  # plain http here; see the https test
    token = header.split(";")[0].removeprefix("sb_session=")
    assert token not in reply.text  # the body never carries the credential

    again = await browser.get(SESSION)
    assert again.status_code == 200 and again.json() == body
    # The native API takes the cookie: reads need nothing more.
    reply = await browser.get("/v1/buckets")
    assert reply.status_code == 200, reply.text
    assert [b["key"] for b in reply.json()["buckets"]] == ["farm"]


async def test_sign_in_with_a_key(
    client: httpx.AsyncClient, browser: httpx.AsyncClient, org: Org
) -> None:
    made = await org.new_key(client, ["data:read"], bucket="farm")
    reply = await browser.post(SESSION, json={"key": made["key"]})
    assert reply.status_code == 200, reply.text
    who = reply.json()["who"]
    assert who == {
        "organisation": "acme",
        "email": None,
        "key": made["id"],
        "scopes": ["data:read"],
        "bucket": "farm",
        "server_admin": False,
    }
    token = cookie_header(reply).split(";")[0].removeprefix("sb_session=")
    assert made["key"] not in token and made["secret"] not in token  # an access token, not the key
    assert (await browser.get("/v1/query", params={"bucket": "farm"})).status_code == 200
    assert (await browser.get("/v1/buckets/farm")).status_code == 200


async def test_secure_over_https(services: Services, client: httpx.AsyncClient, org: Org) -> None:
    await new_user(client, org, "bo@acme.test")
    app = build_app(services, manage_lifecycle=False)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="https://sensorbase") as tls:
        reply = await tls.post(SESSION, json={"email": "bo@acme.test", "password": PASSWORD})
        assert reply.status_code == 200, reply.text
        flags = {p.strip().lower() for p in cookie_header(reply).split(";")[1:]}
        assert {"secure", "httponly", "samesite=strict"} <= flags
        assert (await tls.get(SESSION)).status_code == 200


async def test_wrong_credentials_are_401_and_set_no_cookie(
    client: httpx.AsyncClient, browser: httpx.AsyncClient, org: Org
) -> None:
    await new_user(client, org, "ana@acme.test")
    for credentials in (
        {"email": "ana@acme.test", "password": "wrong password"},
        {"email": "nobody@acme.test", "password": PASSWORD},
        {"key": "sb_k0123456789abcdef_notthesecret"},
    ):
        reply = await browser.post(SESSION, json=credentials)
        assert reply.status_code == 401, reply.text
        assert "set-cookie" not in reply.headers
    assert (await browser.get(SESSION)).status_code == 401
    assert (await browser.get("/v1/buckets")).status_code == 401
    # A cookie the server never issued is no session either.
    browser.cookies.set("sb_session", "forged.token.value")
    assert (await browser.get(SESSION)).status_code == 401
    assert (await browser.get("/v1/buckets")).status_code == 401


async def test_failed_attempts_are_limited(
    client: httpx.AsyncClient, browser: httpx.AsyncClient, org: Org
) -> None:
    await new_user(client, org, "ana@acme.test")
    wrong = {"email": "ana@acme.test", "password": "wrong password"}
    statuses = [(await browser.post(SESSION, json=wrong)).status_code for _ in range(12)]
    assert statuses[0] == 401 and statuses[-1] == 429, statuses
    # Blocked: the right password is refused too, until the limit fades.
    right = {"email": "ana@acme.test", "password": PASSWORD}
    reply = await browser.post(SESSION, json=right)
    assert reply.status_code == 429 and "retry-after" in reply.headers


async def test_malformed_sign_in_names_the_field(browser: httpx.AsyncClient) -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        ({}, "email"),
        ({"email": "a@b.test"}, "password"),
        ({"key": 12}, "key"),
    ]
    for body, field in cases:
        reply = await browser.post(SESSION, json=body)
        assert reply.status_code == 400, reply.text
        assert field in [e.get("field") for e in reply.json()["errors"]]


async def test_state_changes_need_the_csrf_token(
    client: httpx.AsyncClient, browser: httpx.AsyncClient, org: Org
) -> None:
    await new_user(client, org, "ana@acme.test")
    signed = await browser.post(SESSION, json={"email": "ana@acme.test", "password": PASSWORD})
    csrf = signed.json()["csrf"]
    create = {"key": "greenhouse"}
    for headers in ({}, {"X-CSRF-Token": "0" * len(csrf)}, {"X-CSRF-Token": csrf[:-1]}):
        reply = await browser.post("/v1/buckets", json=create, headers=headers)
        assert reply.status_code == 403, reply.text
        assert "X-CSRF-Token" in reply.json()["detail"]
    reply = await browser.delete("/v1/buckets/farm")
    assert reply.status_code == 403 and "X-CSRF-Token" in reply.json()["detail"]
    listed = await browser.get("/v1/buckets")
    assert [b["key"] for b in listed.json()["buckets"]] == ["farm"]  # nothing changed

    reply = await browser.post("/v1/buckets", json=create, headers={"X-CSRF-Token": csrf})
    assert reply.status_code == 201, reply.text
    # Another session's token is not this one's.
    other = await client.post(SESSION, json={"email": "ana@acme.test", "password": PASSWORD})
    assert other.json()["csrf"] != csrf
    reply = await browser.post(
        "/v1/buckets", json={"key": "shed"}, headers={"X-CSRF-Token": other.json()["csrf"]}
    )
    assert reply.status_code == 403
    # A request that carries its own Authorization header is judged by it alone.
    reply = await browser.post("/v1/buckets", json={"key": "shed"}, headers=org.headers)
    assert reply.status_code == 201, reply.text


async def test_writes_by_the_session_need_the_csrf_token_too(
    client: httpx.AsyncClient, browser: httpx.AsyncClient, org: Org
) -> None:
    """POST /v1/write is answered by a fast lane before FastAPI: it takes the session too."""
    await new_user(client, org, "ana@acme.test", role="writer")
    signed = await browser.post(SESSION, json={"email": "ana@acme.test", "password": PASSWORD})
    write = {"bucket": "farm", "points": [{"source": "st", "field": "t", "value": 2.5}]}
    reply = await browser.post("/v1/write", json=write)
    assert reply.status_code == 403 and "X-CSRF-Token" in reply.json()["detail"]
    reply = await browser.post("/v1/write", json=write, headers={"X-CSRF-Token": "nope"})
    assert reply.status_code == 403
    query = {"bucket": "farm", "mode": "latest"}
    assert (await browser.get("/v1/query", params=query)).json()["series"] == []
    csrf = {"X-CSRF-Token": signed.json()["csrf"]}
    reply = await browser.post("/v1/write", json=write, headers=csrf)
    assert reply.status_code == 200, reply.text
    [series] = (await browser.get("/v1/query", params=query)).json()["series"]
    assert series["points"][0]["value"] == 2.5


async def test_sign_out_clears_the_cookie(
    client: httpx.AsyncClient, browser: httpx.AsyncClient, org: Org
) -> None:
    await new_user(client, org, "ana@acme.test")
    await browser.post(SESSION, json={"email": "ana@acme.test", "password": PASSWORD})
    reply = await browser.delete(SESSION)
    assert reply.status_code == 204
    header = cookie_header(reply).lower()
    assert header.startswith('sb_session=""') or header.startswith("sb_session=;")
    assert "max-age=0" in header or "expires=" in header
    assert (await browser.get(SESSION)).status_code == 401
    assert (await browser.get("/v1/buckets")).status_code == 401


async def test_revoked_key_ends_its_session(
    client: httpx.AsyncClient, browser: httpx.AsyncClient, org: Org
) -> None:
    made = await org.new_key(client, ["data:read"])
    assert (await browser.post(SESSION, json={"key": made["key"]})).status_code == 200
    assert (await browser.get("/v1/buckets")).status_code == 200
    reply = await client.delete(f"/v1/keys/{made['id']}", headers=org.headers)
    assert reply.status_code == 204, reply.text
    assert (await browser.get("/v1/buckets")).status_code == 401
    assert (await browser.get(SESSION)).status_code == 401


async def test_deleted_user_ends_their_session(
    client: httpx.AsyncClient, browser: httpx.AsyncClient, org: Org
) -> None:
    await new_user(client, org, "ana@acme.test")
    await browser.post(SESSION, json={"email": "ana@acme.test", "password": PASSWORD})
    assert (await browser.get("/v1/buckets")).status_code == 200
    reply = await client.delete("/v1/users/ana@acme.test", headers=org.headers)
    assert reply.status_code == 204, reply.text
    assert (await browser.get("/v1/buckets")).status_code == 401
    assert (await browser.get(SESSION)).status_code == 401


async def test_a_second_organisation_sees_nothing_of_the_first(
    client: httpx.AsyncClient, browser: httpx.AsyncClient, org: Org, other_org: Org
) -> None:
    write = {"bucket": "farm", "points": [{"source": "st", "field": "t", "value": 1.0}]}
    assert (await client.post("/v1/write", json=write, headers=org.headers)).status_code == 200
    await new_user(client, other_org, "eve@globex.test")
    signed = await browser.post(SESSION, json={"email": "eve@globex.test", "password": PASSWORD})
    assert signed.json()["who"]["organisation"] == "globex"
    csrf = {"X-CSRF-Token": signed.json()["csrf"]}
    assert [b["key"] for b in (await browser.get("/v1/buckets")).json()["buckets"]] == ["plant"]
    assert (await browser.get("/v1/buckets/farm")).status_code == 404
    reply = await browser.get("/v1/query", params={"bucket": "farm"})
    assert reply.status_code == 404
    assert (await browser.get("/v1/query")).json()["series"] == []
    assert (await browser.delete("/v1/buckets/farm", headers=csrf)).status_code == 404
    reply = await browser.post("/v1/write", json=write, headers=csrf)
    assert reply.status_code == 404, reply.text
    still = await client.get("/v1/buckets/farm", headers=org.headers)
    assert still.status_code == 200
