"""A key of one organisation can neither read, write nor detect another's data.

For every route that names a bucket, source or key, organisation A asking about B's object gets
exactly the reply it gets for an object that does not exist at all."""

from __future__ import annotations

from typing import Any

import httpx

from tests.conftest import Org

T0 = "2026-11-21T10:00:00Z"


async def seed(client: httpx.AsyncClient, org: Org) -> str:
    body = {
        "bucket": org.bucket,
        "source": "secret-sensor",
        "points": [{"field": "t", "value": 42, "time": T0}],
    }
    reply = await client.post("/v1/write", json=body, headers=org.headers)
    assert reply.status_code == 200
    made = await org.new_key(client, ["data:read"], bucket=org.bucket)
    return str(made["id"])


def routes(bucket: str, key_id: str) -> list[tuple[str, str, dict[str, Any] | None]]:
    return [
        ("GET", f"/v1/buckets/{bucket}", None),
        ("DELETE", f"/v1/buckets/{bucket}", None),
        ("GET", f"/v1/buckets/{bucket}/sources", None),
        ("POST", f"/v1/buckets/{bucket}/sources", {"key": "x"}),
        ("GET", f"/v1/buckets/{bucket}/sources/secret-sensor", None),
        ("DELETE", f"/v1/buckets/{bucket}/sources/secret-sensor", None),
        ("GET", f"/v1/query?bucket={bucket}", None),
        ("POST", "/v1/query", {"bucket": bucket}),
        (
            "POST",
            "/v1/write",
            {
                "bucket": bucket,
                "source": "secret-sensor",
                "points": [{"field": "t", "value": 1, "time": T0}],
            },
        ),
        ("DELETE", f"/v1/keys/{key_id}", None),
    ]


def scrub(body: dict[str, Any], *names: str) -> str:
    text = str(body)
    for name in names:
        text = text.replace(name, "<name>")
    return text


async def test_another_organisations_objects_look_absent(
    client: httpx.AsyncClient, org: Org, other_org: Org
) -> None:
    key_id = await seed(client, other_org)
    real = routes(other_org.bucket, key_id)
    fake = routes("no-such-bucket", "kdoesnotexist00")
    for (method, path, body), (_, fake_path, fake_body) in zip(real, fake, strict=True):
        theirs = await client.request(method, path, json=body, headers=org.headers)
        absent = await client.request(method, fake_path, json=fake_body, headers=org.headers)
        assert theirs.status_code in (401, 403, 404), (method, path, theirs.text)
        assert theirs.status_code == absent.status_code, (method, path)
        assert scrub(theirs.json(), other_org.bucket, key_id) == scrub(
            absent.json(), "no-such-bucket", "kdoesnotexist00"
        ), (method, path)
    # Nothing of B changed, and B's data is still only B's.
    reply = await client.get(
        "/v1/query", params={"bucket": other_org.bucket}, headers=other_org.headers
    )
    assert [p["value"] for p in reply.json()["series"][0]["points"]] == [42.0]
    mine = await client.get("/v1/query", headers=org.headers)
    assert mine.json()["series"] == []
    listed = await client.get("/v1/buckets", headers=org.headers)
    assert [b["key"] for b in listed.json()["buckets"]] == [org.bucket]
    keys = await client.get("/v1/keys", headers=org.headers)
    assert key_id not in str(keys.json())


async def test_same_bucket_names_in_two_organisations_stay_apart(
    client: httpx.AsyncClient, admin_key: str
) -> None:
    from tests.conftest import make_org

    a = await make_org(client, admin_key, "a", "shared-name")
    b = await make_org(client, admin_key, "b", "shared-name")
    for org, value in ((a, 1), (b, 2)):
        body = {
            "bucket": "shared-name",
            "source": "dev",
            "points": [{"field": "t", "value": value, "time": T0}],
        }
        assert (await client.post("/v1/write", json=body, headers=org.headers)).status_code == 200
    for org, value in ((a, 1.0), (b, 2.0)):
        reply = await client.get("/v1/query", params={"bucket": "shared-name"}, headers=org.headers)
        assert [p["value"] for p in reply.json()["series"][0]["points"]] == [value]


async def test_organisation_admin_cannot_manage_organisations(
    client: httpx.AsyncClient, org: Org, other_org: Org
) -> None:
    for method, path, body in [
        ("GET", "/v1/orgs", None),
        ("POST", "/v1/orgs", {"key": "mine"}),
        ("DELETE", f"/v1/orgs/{other_org.key}", None),
        ("POST", f"/v1/orgs/{other_org.key}/keys", {"name": "x", "scopes": ["admin"]}),
    ]:
        reply = await client.request(method, path, json=body, headers=org.headers)
        assert reply.status_code == 403, (method, path)
