"""Keys, scopes, bucket-limited keys, revocation, OAuth2 tokens and rate limits, over HTTP."""

from __future__ import annotations

import base64
from typing import Any

import httpx
import jwt
import pytest

from tests.conftest import Org, auth

T0 = "2026-11-21T10:00:00Z"


def point(bucket: str) -> dict[str, Any]:
    return {"bucket": bucket, "source": "s", "points": [{"field": "t", "value": 1, "time": T0}]}


async def test_missing_and_wrong_credentials_are_401(client: httpx.AsyncClient, org: Org) -> None:
    for headers in [
        {},
        auth("sb_kdeadbeef_wrong"),
        auth("not-a-token"),
        {"Authorization": "Basic abc"},
    ]:
        reply = await client.get("/v1/buckets", headers=headers)
        assert reply.status_code == 401
        assert reply.headers["www-authenticate"] == "Bearer"
        assert reply.json()["title"] == "Unauthorized"
    wrong_secret = org.admin.rsplit("_", 1)[0] + "_" + "x" * 32
    assert (await client.get("/v1/buckets", headers=auth(wrong_secret))).status_code == 401


async def test_scopes(client: httpx.AsyncClient, org: Org) -> None:
    reader = (await org.new_key(client, ["data:read"]))["key"]
    writer = (await org.new_key(client, ["data:write"]))["key"]
    assert (
        await client.post("/v1/write", json=point(org.bucket), headers=auth(reader))
    ).status_code == 403
    assert (
        await client.post("/v1/write", json=point(org.bucket), headers=auth(writer))
    ).status_code == 200
    assert (await client.get("/v1/query", headers=auth(writer))).status_code == 403
    assert (await client.get("/v1/query", headers=auth(reader))).status_code == 200
    for key in (reader, writer):
        assert (
            await client.post("/v1/buckets", json={"key": "x"}, headers=auth(key))
        ).status_code == 403
        assert (await client.get("/v1/keys", headers=auth(key))).status_code == 403


async def test_bucket_limited_key(client: httpx.AsyncClient, org: Org) -> None:
    assert (
        await client.post("/v1/buckets", json={"key": "other"}, headers=org.headers)
    ).status_code == 201
    limited = (await org.new_key(client, ["data:write", "data:read"], bucket=org.bucket))["key"]
    assert (
        await client.post("/v1/write", json=point(org.bucket), headers=auth(limited))
    ).status_code == 200
    reply = await client.post("/v1/write", json=point("other"), headers=auth(limited))
    assert reply.status_code == 403
    assert (
        await client.get("/v1/query", params={"bucket": "other"}, headers=auth(limited))
    ).status_code == 403
    listed = await client.get("/v1/buckets", headers=auth(limited))
    assert [b["key"] for b in listed.json()["buckets"]] == [org.bucket]
    # Without a bucket parameter the query stays inside the key's bucket.
    await client.post("/v1/write", json=point("other"), headers=org.headers)
    reply = await client.get("/v1/query", headers=auth(limited))
    assert {s["bucket"] for s in reply.json()["series"]} == {org.bucket}


async def test_a_revoked_key_is_refused_on_the_next_request(
    client: httpx.AsyncClient, org: Org
) -> None:
    made = await org.new_key(client, ["data:write"])
    assert made["key"].startswith("sb_") and made["secret"] in made["key"]
    assert (
        await client.post("/v1/write", json=point(org.bucket), headers=auth(made["key"]))
    ).status_code == 200
    assert (await client.delete(f"/v1/keys/{made['id']}", headers=org.headers)).status_code == 204
    assert (
        await client.post("/v1/write", json=point(org.bucket), headers=auth(made["key"]))
    ).status_code == 401
    listed = (await client.get("/v1/keys", headers=org.headers)).json()["keys"]
    assert [k["revoked"] is not None for k in listed if k["id"] == made["id"]] == [True]
    assert "secret" not in str(listed) and made["secret"] not in str(listed)


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


@pytest.mark.parametrize("as_json", [False, True])
async def test_client_credentials_then_refresh(
    client: httpx.AsyncClient, org: Org, as_json: bool
) -> None:
    made = await org.new_key(client, ["data:write", "data:read"])
    body = {"grant_type": "client_credentials"}
    kwargs: dict[str, Any] = {"json": body} if as_json else {"data": body}
    reply = await client.post("/v1/auth/token", headers=basic(made["id"], made["secret"]), **kwargs)
    assert reply.status_code == 200, reply.text
    tokens = reply.json()
    assert tokens["token_type"] == "bearer" and tokens["expires_in"] == 172800
    assert tokens["expiration_date"].endswith("Z")
    access = tokens["access_token"]
    assert (
        await client.post("/v1/write", json=point(org.bucket), headers=auth(access))
    ).status_code == 200
    reply = await client.post(
        "/v1/auth/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": tokens["refresh_token"],
            "scope": "data",
        },
    )
    assert reply.status_code == 200, reply.text
    assert (
        await client.get("/v1/query", headers=auth(reply.json()["access_token"]))
    ).status_code == 200
    # A refresh token is single-use.
    again = await client.post(
        "/v1/auth/token",
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
    )
    assert again.status_code == 401 and again.json()["error"] == "invalid_grant"
    # Revoking the key ends its tokens.
    await client.delete(f"/v1/keys/{made['id']}", headers=org.headers)
    assert (await client.get("/v1/query", headers=auth(access))).status_code == 401


async def test_token_errors_take_the_oauth2_shape(client: httpx.AsyncClient, org: Org) -> None:
    made = await org.new_key(client, ["data:write"])
    reply = await client.post(
        "/v1/auth/token",
        headers=basic(made["id"], "wrong"),
        data={"grant_type": "client_credentials"},
    )
    assert reply.status_code == 401
    assert reply.json()["error"] == "invalid_client"
    reply = await client.post("/v1/auth/token", data={"grant_type": "client_credentials"})
    assert reply.status_code == 401 and reply.json()["error"] == "invalid_client"
    reply = await client.post(
        "/v1/auth/token", headers=basic(made["id"], made["secret"]), data={"grant_type": "password"}
    )
    assert reply.status_code == 400 and reply.json()["error"] == "unsupported_grant_type"


async def test_expired_and_forged_access_tokens(
    services: Any, client: httpx.AsyncClient, org: Org
) -> None:
    made = await org.new_key(client, ["data:read"])
    expired = jwt.encode(
        {"sub": made["id"], "exp": 1, "typ": "at"}, services.tokens._secret, algorithm="HS256"
    )
    reply = await client.get("/v1/query", headers=auth(expired))
    assert reply.status_code == 401 and "expired" in reply.json()["detail"]
    forged = jwt.encode(
        {"sub": made["id"], "exp": 2**40, "typ": "at"},
        "a guessed secret of at least 32 bytes",
        algorithm="HS256",
    )
    assert (await client.get("/v1/query", headers=auth(forged))).status_code == 401


async def test_rate_limit_headers_and_429(
    services: Any, client: httpx.AsyncClient, org: Org
) -> None:
    from sensorbase.auth.ratelimit import RateLimiter

    services.rate = RateLimiter("3/minute")
    replies = [await client.get("/v1/buckets", headers=org.headers) for _ in range(4)]
    assert [r.status_code for r in replies] == [200, 200, 200, 429]
    assert [r.headers["x-ratelimit-remaining"] for r in replies] == ["2", "1", "0", "0"]
    assert all(r.headers["x-ratelimit-limit"] == "3" for r in replies)
    limited = replies[-1]
    assert 1 <= int(limited.headers["retry-after"]) <= 60
    assert int(limited.headers["x-ratelimit-reset"]) > 1_700_000_000
    assert limited.json()["status"] == 429


async def test_deleting_an_organisation_or_bucket_ends_its_keys_at_once(
    client: httpx.AsyncClient, admin_key: str, org: Org
) -> None:
    limited = (await org.new_key(client, ["data:read"], bucket=org.bucket))["key"]
    assert (await client.get("/v1/buckets", headers=auth(limited))).status_code == 200
    assert (
        await client.delete(f"/v1/buckets/{org.bucket}", headers=org.headers)
    ).status_code == 204
    assert (await client.get("/v1/buckets", headers=auth(limited))).status_code == 401
    assert (await client.get("/v1/buckets", headers=org.headers)).status_code == 200
    assert (await client.delete(f"/v1/orgs/{org.key}", headers=auth(admin_key))).status_code == 204
    assert (await client.get("/v1/buckets", headers=org.headers)).status_code == 401
