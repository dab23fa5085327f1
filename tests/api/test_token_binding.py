"""Tokens bound to the one key or user they were minted for, over HTTP on every backend: a
deleted user's token never acts as a later user, a change of role or password ends a user's
tokens, a key's tokens end with its row however it goes, tokens minted before the binding are
refused, and another node sharing the store agrees at once (users) or within the key cache."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from typing import Any

import httpx
import jwt
import pytest

from sensorbase.api.app import build_app
from sensorbase.services import Services
from sensorbase.settings import Settings
from sensorbase.storage import open_store
from tests.conftest import Org, auth

PASSWORD = "correct horse"


async def create_user(
    client: httpx.AsyncClient, org: Org, email: str, role: str, password: str = PASSWORD
) -> dict[str, Any]:
    body = {"email": email, "password": password, "role": role}
    reply = await client.post("/v1/users", json=body, headers=org.headers)
    assert reply.status_code == 201, reply.text
    return dict(reply.json())


async def sign_in(client: httpx.AsyncClient, email: str, password: str = PASSWORD) -> str:
    reply = await client.post("/restapi/login", json={"email": email, "password": password})
    assert reply.status_code == 200, reply.text
    return str(reply.json()["token"])


async def whoami(client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.get("/v1/whoami", headers=auth(token))


async def test_a_deleted_users_token_never_acts_as_the_next_user(
    client: httpx.AsyncClient, org: Org
) -> None:
    """Issue 19's escalation: eve (reader) signs in and is deleted; mallory (admin) is
    created; eve's token must not act as mallory, nor create an admin key."""
    eve = await create_user(client, org, "eve@example.com", "reader")
    token = await sign_in(client, "eve@example.com")
    assert (await whoami(client, token)).json()["scopes"] == ["data:read"]
    reply = await client.delete(f"/v1/users/{eve['id']}", headers=org.headers)
    assert reply.status_code == 204
    mallory = await create_user(client, org, "mallory@example.com", "admin")
    assert mallory["id"] > eve["id"]  # never eve's id again
    assert (await whoami(client, token)).status_code == 401
    body = {"name": "escalated", "scopes": ["admin"]}
    reply = await client.post("/v1/keys", json=body, headers=auth(token))
    assert reply.status_code == 401
    assert "escalated" not in str((await client.get("/v1/keys", headers=org.headers)).json())


async def test_a_change_of_role_or_password_ends_a_users_tokens(
    client: httpx.AsyncClient, org: Org, other_org: Org
) -> None:
    ada = await create_user(client, org, "ada@example.com", "writer")
    first = await sign_in(client, "ada@example.com")
    renewed = (await client.post("/restapi/refresh-token", headers=auth(first))).json()["token"]
    assert (await whoami(client, renewed)).status_code == 200

    reply = await client.patch(
        f"/v1/users/{ada['id']}", json={"role": "reader"}, headers=org.headers
    )
    assert reply.status_code == 200, reply.text
    assert reply.json()["role"] == "reader" and reply.json()["email"] == "ada@example.com"
    for token in (first, renewed):
        reply = await whoami(client, token)
        assert reply.status_code == 401 and "ended" in reply.json()["detail"]
    second = await sign_in(client, "ada@example.com")
    assert (await whoami(client, second)).json()["scopes"] == ["data:read"]

    body = {"password": "a new secret"}
    reply = await client.patch("/v1/users/ada@example.com", json=body, headers=org.headers)
    assert reply.status_code == 200, reply.text
    assert (await whoami(client, second)).status_code == 401
    wrong = {"email": "ada@example.com", "password": PASSWORD}
    assert (await client.post("/restapi/login", json=wrong)).status_code == 401
    third = await sign_in(client, "ada@example.com", "a new secret")
    assert (await whoami(client, third)).status_code == 200

    # Only the user's own organisation's admin changes them, and only to something.
    writer = await org.new_key(client, ["data:write", "data:read"])
    changes: list[tuple[dict[str, Any], dict[str, str], int]] = [
        ({"role": "admin"}, auth(writer["key"]), 403),
        ({"role": "admin"}, auth(third), 403),
        ({"role": "admin"}, other_org.headers, 404),
        ({}, org.headers, 400),
        ({"role": None}, org.headers, 400),
        ({"role": "owner"}, org.headers, 400),
        ({"password": "short"}, org.headers, 400),
    ]
    for body, headers, status in changes:
        reply = await client.patch(f"/v1/users/{ada['id']}", json=body, headers=headers)
        assert reply.status_code == status, (body, reply.text)
    assert (await whoami(client, third)).status_code == 200  # none of those changed ada
    reply = await client.patch("/v1/users/999999", json={"role": "admin"}, headers=org.headers)
    assert reply.status_code == 404


async def test_users_change_their_own_password_with_the_current_one(
    client: httpx.AsyncClient, org: Org
) -> None:
    await create_user(client, org, "bob@example.com", "writer")
    token = await sign_in(client, "bob@example.com")
    other = await sign_in(client, "bob@example.com")  # another device's session
    change = {"current_password": "not it", "new_password": "brand new pass"}
    reply = await client.post("/v1/users/me/password", json=change, headers=auth(token))
    assert reply.status_code == 401  # a token alone does not take the account over
    change["current_password"] = PASSWORD
    reply = await client.post("/v1/users/me/password", json=change, headers=auth(token))
    assert reply.status_code == 200, reply.text
    fresh = reply.json()["token"]
    assert reply.json()["email"] == "bob@example.com" and reply.json()["expires_in"] > 0
    for ended in (token, other):
        assert (await whoami(client, ended)).status_code == 401
    assert sorted((await whoami(client, fresh)).json()["scopes"]) == ["data:read", "data:write"]
    assert await sign_in(client, "bob@example.com", "brand new pass")
    # A key has no password to change.
    reply = await client.post("/v1/users/me/password", json=change, headers=org.headers)
    assert reply.status_code == 403


async def test_tokens_minted_before_the_binding_are_refused(
    services: Services, client: httpx.AsyncClient, org: Org
) -> None:
    user = await create_user(client, org, "old@example.com", "admin")
    made = await org.new_key(client, ["data:read"])
    secret = services.tokens._secret
    unbound = [
        {"sub": f"user:{user['id']}", "exp": 2**40, "typ": "ut"},  # no generation
        {"sub": f"user:{user['id']}", "exp": 2**40, "typ": "ut", "gen": "0" * 32},
        {"sub": made["id"], "exp": 2**40, "typ": "at"},  # no key row id
        {"sub": made["id"], "exp": 2**40, "typ": "at", "kid": 10**9},
    ]
    for claims in unbound:
        token = jwt.encode(claims, secret, algorithm="HS256")
        reply = await whoami(client, token)
        assert reply.status_code == 401, claims
        assert (await client.post("/restapi/refresh-token", headers=auth(token))).status_code == 401


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


async def exchange(client: httpx.AsyncClient, key: dict[str, Any]) -> dict[str, Any]:
    reply = await client.post(
        "/v1/auth/token",
        headers=basic(key["id"], key["secret"]),
        data={"grant_type": "client_credentials"},
    )
    assert reply.status_code == 200, reply.text
    return dict(reply.json())


@pytest.mark.parametrize("goes_with", ["bucket", "organisation", "revocation"])
async def test_a_keys_tokens_end_with_it_however_it_goes(
    client: httpx.AsyncClient, admin_key: str, org: Org, goes_with: str
) -> None:
    key = await org.new_key(client, ["data:read"], bucket=org.bucket)
    tokens = await exchange(client, key)
    renewed = (await client.post("/restapi/refresh-token", headers=auth(key["key"]))).json()
    for token in (tokens["access_token"], renewed["token"]):
        assert (await whoami(client, token)).status_code == 200
    if goes_with == "bucket":
        reply = await client.delete(f"/v1/buckets/{org.bucket}", headers=org.headers)
    elif goes_with == "organisation":
        reply = await client.delete(f"/v1/orgs/{org.key}", headers=auth(admin_key))
    else:
        reply = await client.delete(f"/v1/keys/{key['id']}", headers=org.headers)
    assert reply.status_code == 204
    for token in (key["key"], tokens["access_token"], renewed["token"]):
        assert (await whoami(client, token)).status_code == 401
    reply = await client.post(
        "/v1/auth/token",
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
    )
    assert reply.status_code == 401 and reply.json()["error"] == "invalid_grant"


@pytest.fixture
async def node_b(settings: Settings, services: Services) -> AsyncIterator[httpx.AsyncClient]:
    """A second node on the same store (the same SQLite file, or the same PostgreSQL
    database), as behind a load balancer."""
    other = Services(settings, open_store(settings))
    assert other.start() is None  # (the first node bootstrapped)
    transport = httpx.ASGITransport(app=build_app(other, manage_lifecycle=False))
    async with httpx.AsyncClient(transport=transport, base_url="http://node-b") as client:
        client.services = other  # type: ignore[attr-defined]
        yield client
    other.stop()


async def test_another_node_ends_them_at_once_or_within_the_key_cache(
    client: httpx.AsyncClient, node_b: httpx.AsyncClient, org: Org
) -> None:
    cleo = await create_user(client, org, "cleo@example.com", "writer")
    token = await sign_in(client, "cleo@example.com")
    assert (await whoami(node_b, token)).status_code == 200
    await client.patch(f"/v1/users/{cleo['id']}", json={"role": "admin"}, headers=org.headers)
    assert (await whoami(node_b, token)).status_code == 401  # users: re-read on every use
    token = await sign_in(node_b, "cleo@example.com")
    await client.delete(f"/v1/users/{cleo['id']}", headers=org.headers)
    assert (await whoami(node_b, token)).status_code == 401

    key = await org.new_key(client, ["data:read"])
    keys = node_b.services.keys  # type: ignore[attr-defined]
    now = [0.0]
    keys.clock = lambda: now[0]
    assert (await whoami(node_b, key["key"])).status_code == 200  # now in B's cache
    assert (await client.delete(f"/v1/keys/{key['id']}", headers=org.headers)).status_code == 204
    now[0] += node_b.services.settings.key_cache_s  # type: ignore[attr-defined]
    assert (await whoami(node_b, key["key"])).status_code == 401
