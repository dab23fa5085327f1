"""The brute-force limits over HTTP (auth/failures.py), on an injected clock: Madevo's sign-in,
the OAuth2 token routes (client credentials and refresh tokens), and wrong keys on routes of
FastAPI, of the fast lane and of a vendor's own key header, each from client addresses of its
own. The counts live in memory, not in storage: these run on SQLite only."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import httpx
import jwt
import pytest

from sensorbase.auth import failures
from sensorbase.services import Services
from tests.conftest import Org, app_for, auth

pytestmark = pytest.mark.parametrize("backend", ["sqlite"])

PASSWORD = "correct horse"
T0 = "2026-11-21T10:00:00Z"
From = Callable[[str], AbstractAsyncContextManager[httpx.AsyncClient]]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(services: Services) -> Clock:
    made = Clock()
    services.failures.clock = made
    return made


@pytest.fixture
def at(services: Services) -> From:
    """A client of the same server whose requests come from `address`."""

    @asynccontextmanager
    async def client_at(address: str) -> AsyncIterator[httpx.AsyncClient]:
        # the app of `client`: one app and its services, reached from another address
        transport = httpx.ASGITransport(app=app_for(services), client=(address, 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://sensorbase") as c:
            yield c

    return client_at


async def user(client: httpx.AsyncClient, org: Org, email: str) -> None:
    body = {"email": email, "password": PASSWORD, "role": "writer"}
    reply = await client.post("/v1/users", json=body, headers=org.headers)
    assert reply.status_code == 201, reply.text


async def login(client: httpx.AsyncClient, email: str, password: str) -> httpx.Response:
    return await client.post("/restapi/login", json={"email": email, "password": password})


async def test_sign_in_is_refused_while_blocked_even_with_the_right_password(
    client: httpx.AsyncClient, org: Org, clock: Clock
) -> None:
    """Issue 19: 60 wrong passwords were all refused with 401, and then the right one worked."""
    await user(client, org, "ada@example.com")
    statuses = [
        (await login(client, "ada@example.com", f"guess {i}")).status_code for i in range(60)
    ]
    free = failures.PAIR.free + 1  # the last of them starts the first block
    assert statuses == [401] * free + [429] * (60 - free)
    reply = await login(client, "ada@example.com", PASSWORD)
    assert reply.status_code == 429 and reply.headers["retry-after"] == "1"
    assert reply.json()["error"] == "rate_limited" and "sign-in" in reply.json()["message"]
    clock.now += 1
    assert (await login(client, "ada@example.com", PASSWORD)).status_code == 200
    # A success clears the pair: a typo now is one of five again, not a longer block.
    assert (await login(client, "ada@example.com", "typo")).status_code == 401
    assert (await login(client, "ada@example.com", PASSWORD)).status_code == 200


async def test_blocks_grow_and_are_capped(
    client: httpx.AsyncClient, org: Org, clock: Clock
) -> None:
    await user(client, org, "ada@example.com")
    for i in range(failures.PAIR.free):
        await login(client, "ada@example.com", f"guess {i}")
    waits = []
    for i in range(13):  # a guess each time the block ends
        assert (await login(client, "ada@example.com", f"again {i}")).status_code == 401
        refused = await login(client, "ada@example.com", PASSWORD)
        assert refused.status_code == 429
        waits.append(int(refused.headers["retry-after"]))
        clock.now += waits[-1]
    assert waits == [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 900, 900, 900]


async def test_an_attacker_elsewhere_locks_an_account_out_only_briefly(
    client: httpx.AsyncClient, org: Org, clock: Clock, at: From
) -> None:
    await user(client, org, "ada@example.com")
    async with at("10.0.0.9") as home:
        assert (await login(home, "ada@example.com", PASSWORD)).status_code == 200
    for i in range(failures.ACCOUNT.free + 1):  # one guess from each of many addresses
        async with at(f"198.51.100.{i}") as attacker:
            assert (await login(attacker, "ada@example.com", "guess")).status_code == 401
    async with at("192.0.2.200") as elsewhere:
        reply = await login(elsewhere, "ada@example.com", PASSWORD)
        assert reply.status_code == 429
        assert int(reply.headers["retry-after"]) <= failures.ACCOUNT.max_block_s
    async with at("10.0.0.9") as home:  # where ada signed in before, she still does
        assert (await login(home, "ada@example.com", PASSWORD)).status_code == 200


async def test_one_address_spraying_many_accounts_is_blocked(
    client: httpx.AsyncClient, org: Org, clock: Clock, at: From
) -> None:
    await user(client, org, "ada@example.com")
    async with at("203.0.113.9") as sprayer:
        for i in range(failures.SIGN_IN_ADDRESS.free + 1):
            assert (await login(sprayer, f"user{i}@example.com", "123456")).status_code == 401
        assert (await login(sprayer, "ada@example.com", PASSWORD)).status_code == 429
    async with at("203.0.113.10") as other:
        assert (await login(other, "ada@example.com", PASSWORD)).status_code == 200


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


@pytest.mark.parametrize("path", ["/v1/auth/token", "/v0/oauth2/token"])
async def test_client_secrets_are_limited_on_the_token_routes(
    client: httpx.AsyncClient, org: Org, clock: Clock, path: str
) -> None:
    """Issue 19: /v0/oauth2/token took 60 wrong secrets in 1.5 s."""
    key = await org.new_key(client, ["data:read"])
    grant = {"grant_type": "client_credentials"}
    for i in range(failures.PAIR.free + 1):
        reply = await client.post(path, headers=basic(key["id"], f"wrong{i}"), data=grant)
        assert reply.status_code == 401 and reply.json()["error"] == "invalid_client"
    reply = await client.post(path, headers=basic(key["id"], key["secret"]), data=grant)
    assert reply.status_code == 429 and reply.headers["retry-after"] == "1"
    assert reply.json()["error"] == "slow_down"
    clock.now += 1
    reply = await client.post(path, headers=basic(key["id"], key["secret"]), data=grant)
    assert reply.status_code == 200, reply.text


async def test_refresh_tokens_are_limited_per_address(
    client: httpx.AsyncClient, org: Org, clock: Clock, at: From
) -> None:
    key = await org.new_key(client, ["data:read"])
    grant = {"grant_type": "client_credentials"}
    reply = await client.post("/v1/auth/token", headers=basic(key["id"], key["secret"]), data=grant)
    refresh = {"grant_type": "refresh_token", "refresh_token": reply.json()["refresh_token"]}
    async with at("203.0.113.9") as guesser:
        for i in range(failures.SIGN_IN_ADDRESS.free + 1):
            wrong = {**refresh, "refresh_token": f"guess{i}"}
            reply = await guesser.post("/v1/auth/token", data=wrong)
            assert reply.status_code == 401 and reply.json()["error"] == "invalid_grant"
        reply = await guesser.post("/v1/auth/token", data=refresh)
        assert reply.status_code == 429
    assert (await client.post("/v1/auth/token", data=refresh)).status_code == 200


def point(bucket: str) -> dict[str, Any]:
    return {"bucket": bucket, "source": "s", "points": [{"field": "t", "value": 1, "time": T0}]}


async def test_wrong_keys_are_counted_per_address_and_right_keys_still_pass(
    client: httpx.AsyncClient, org: Org, clock: Clock, at: From
) -> None:
    """Issue 19: wrong API keys were never slowed. Three routes, three ways in: FastAPI's
    (/v1/buckets), the fast lane's (POST /v1/write) and dakkio's own header (X-API-Key)."""
    wrong = auth(org.admin.rsplit("_", 1)[0] + "_" + "x" * 32)
    attempts = [
        lambda c, h: c.get("/v1/buckets", headers=h),
        lambda c, h: c.post("/v1/write", json=point(org.bucket), headers=h),
        lambda c, h: c.get("/api/buckets", headers={"X-API-Key": h["Authorization"][7:]}),
    ]
    async with at("203.0.113.9") as flood:
        statuses = []
        for i in range(60):
            statuses.append((await attempts[i % 3](flood, wrong)).status_code)
        free = failures.KEY_ADDRESS.free + 1
        assert statuses == [401] * free + [429] * (60 - free)
        for attempt in attempts:
            refused = await attempt(flood, wrong)
            assert refused.status_code == 429 and refused.headers["retry-after"] == "1"
            # The address is often many devices: the right key of another still passes.
            assert (await attempt(flood, org.headers)).status_code in (200, 201)
    async with at("203.0.113.10") as other:
        assert (await other.get("/v1/buckets", headers=wrong)).status_code == 401


async def test_issued_credentials_that_ended_are_not_counted(
    services: Services, client: httpx.AsyncClient, org: Org, clock: Clock
) -> None:
    """A revoked key or an expired token was issued: its holder is stale, not guessing."""
    key = await org.new_key(client, ["data:read"])
    assert (await client.delete(f"/v1/keys/{key['id']}", headers=org.headers)).status_code == 204
    expired = jwt.encode(
        {"sub": key["id"], "exp": 1, "typ": "at"}, services.tokens._secret, algorithm="HS256"
    )
    for _ in range(2 * failures.KEY_ADDRESS.free):
        for stale in (key["key"], expired):
            assert (await client.get("/v1/buckets", headers=auth(stale))).status_code == 401
