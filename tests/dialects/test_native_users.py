"""Native user routes: `/v1/users` (organisation admin), `/v1/orgs/{org}/users` (server admin)."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import Org, auth


async def test_create_list_delete(client: httpx.AsyncClient, org: Org, other_org: Org) -> None:
    reply = await client.post(
        "/v1/users",
        json={"email": "dana@example.com", "password": "hunter22", "role": "writer"},
        headers=org.headers,
    )
    assert reply.status_code == 201, reply.text
    created = reply.json()
    assert created["email"] == "dana@example.com" and created["role"] == "writer"
    assert "password" not in str(created)

    listed = await client.get("/v1/users", headers=org.headers)
    assert [u["email"] for u in listed.json()["users"]] == ["dana@example.com"]
    assert (await client.get("/v1/users", headers=other_org.headers)).json() == {"users": []}

    # Emails are unique across the server: sign-in names only the email.
    reply = await client.post(
        "/v1/users",
        json={"email": "DANA@example.com", "password": "whatever1"},
        headers=other_org.headers,
    )
    assert reply.status_code == 409

    for who in ("dana@example.com", str(created["id"])):
        reply = await client.delete(f"/v1/users/{who}", headers=other_org.headers)
        assert reply.status_code == 404
    reply = await client.delete(f"/v1/users/{created['id']}", headers=org.headers)
    assert reply.status_code == 204
    assert (await client.get("/v1/users", headers=org.headers)).json() == {"users": []}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"email": "not-an-email", "password": "long enough"}, "email"),
        ({"email": "e@example.com", "password": "short"}, "password"),
        ({"email": "e@example.com", "password": "long enough", "role": "owner"}, "role"),
    ],
)
async def test_bad_user(
    client: httpx.AsyncClient, org: Org, body: dict[str, str], field: str
) -> None:
    reply = await client.post("/v1/users", json=body, headers=org.headers)
    assert reply.status_code == 400, reply.text
    assert [e["field"] for e in reply.json()["errors"]] == [field]


async def test_only_admins_manage_users(client: httpx.AsyncClient, org: Org) -> None:
    writer = await org.new_key(client, ["data:write", "data:read"])
    headers = auth(writer["key"])
    assert (await client.get("/v1/users", headers=headers)).status_code == 403
    body = {"email": "eve@example.com", "password": "long enough", "role": "admin"}
    assert (await client.post("/v1/users", json=body, headers=headers)).status_code == 403


async def test_server_admin_creates_in_an_organisation(
    client: httpx.AsyncClient, org: Org, admin_key: str
) -> None:
    body = {"email": "frank@example.com", "password": "long enough", "role": "admin"}
    reply = await client.post(f"/v1/orgs/{org.key}/users", json=body, headers=auth(admin_key))
    assert reply.status_code == 201, reply.text
    listed = await client.get("/v1/users", headers=org.headers)
    assert [u["email"] for u in listed.json()["users"]] == ["frank@example.com"]
    reply = await client.post(f"/v1/orgs/{org.key}/users", json=body, headers=org.headers)
    assert reply.status_code == 403
    reply = await client.post("/v1/orgs/nowhere/users", json=body, headers=auth(admin_key))
    assert reply.status_code == 404


async def test_openapi_lists_the_routes(client: httpx.AsyncClient) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]
    assert {"post", "patch"} <= set(paths["/restapi/datasource/insert"])
    assert "post" in paths["/restapi/login"] and "post" in paths["/restapi/refresh-token"]
    assert {"get", "post"} <= set(paths["/v1/users"])
    assert "delete" in paths["/v1/users/{user}"]
