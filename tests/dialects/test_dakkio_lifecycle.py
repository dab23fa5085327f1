"""dakkio's bucket and data-source lifecycle over HTTP: update (PATCH and PUT) and delete, the
archived status (refused by every write route, still read), a JWT on the admin routes, and
tenancy from outside."""

from __future__ import annotations

from typing import Any

import httpx

from tests.conftest import Org, auth, make_org

POINT_TIME = "2024-01-15T10:30:00Z"
INPUT = "sen00000000a1"


def xkey(key: str) -> dict[str, str]:
    return {"X-API-Key": key, "Content-Type": "application/json"}


async def _bucket(client: httpx.AsyncClient, org: Org, name: str = "Home") -> dict[str, Any]:
    reply = await client.post(
        "/api/buckets", json={"name": name, "description": "Sensors"}, headers=xkey(org.admin)
    )
    assert reply.status_code == 201, reply.text
    return dict(reply.json()["bucket"])


async def _source(client: httpx.AsyncClient, org: Org, bucket: str) -> dict[str, Any]:
    reply = await client.post(
        f"/api/buckets/{bucket}/sources",
        json={"name": "Living room", "schema": {"temperature": {"type": "number", "unit": "C"}}},
        headers=xkey(org.admin),
    )
    assert reply.status_code == 201, reply.text
    return dict(reply.json()["dataSource"])


def _point(bucket: str, source: str, value: float = 22.5) -> dict[str, Any]:
    return {
        "bucketId": bucket,
        "dataSourceId": source,
        "timestamp": POINT_TIME,
        "values": {"temperature": value},
    }


async def test_a_bucket_is_renamed_described_and_deleted(
    client: httpx.AsyncClient, org: Org
) -> None:
    bucket = await _bucket(client, org)
    other = await _bucket(client, org, "Office")
    reply = await client.patch(
        f"/api/buckets/{bucket['_id']}",
        json={"name": "Home (old)", "description": "Moved out"},
        headers=xkey(org.admin),
    )
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["message"] == "Bucket updated successfully"
    assert body["bucket"]["name"] == "Home (old)"
    assert body["bucket"]["description"] == "Moved out"
    assert body["bucket"]["status"] == "active"
    # PUT changes only what it names, as PATCH; names stay unique in the organisation.
    reply = await client.put(
        f"/api/buckets/{bucket['_id']}", json={"name": "Office"}, headers=xkey(org.admin)
    )
    assert reply.status_code == 409, reply.text
    assert reply.json() == {
        "error": "Conflict",
        "message": "Bucket with this name already exists",
    }
    reply = await client.get(f"/api/buckets/{bucket['_id']}", headers=xkey(org.admin))
    assert reply.json()["bucket"]["name"] == "Home (old)"

    reply = await client.delete(f"/api/buckets/{other['_id']}", headers=xkey(org.admin))
    assert reply.status_code == 200, reply.text
    assert reply.json() == {"message": "Bucket deleted successfully"}
    reply = await client.get(f"/api/buckets/{other['_id']}", headers=xkey(org.admin))
    assert reply.status_code == 404
    assert reply.json() == {"error": "Not Found", "message": "Bucket not found"}


async def test_bucket_changes_are_validated_every_problem_named(
    client: httpx.AsyncClient, org: Org
) -> None:
    bucket = await _bucket(client, org)
    reply = await client.patch(
        f"/api/buckets/{bucket['_id']}",
        json={"name": "", "status": "frozen", "retentionDays": 0},
        headers=xkey(org.admin),
    )
    assert reply.status_code == 400, reply.text
    paths = {tuple(d["path"]): d["message"] for d in reply.json()["details"]}
    assert set(paths) == {("body", "name"), ("body", "status"), ("body", "retentionDays")}
    assert "'active' | 'archived'" in paths[("body", "status")]
    assert "between 1 and 3650" in paths[("body", "retentionDays")]
    reply = await client.get(f"/api/buckets/{bucket['_id']}", headers=xkey(org.admin))
    assert reply.json()["bucket"]["name"] == "Home"  # nothing changed


async def test_an_archived_bucket_refuses_every_write_and_still_answers_reads(
    client: httpx.AsyncClient, org: Org
) -> None:
    bucket = (await _bucket(client, org))["_id"]
    source = (await _source(client, org, bucket))["_id"]
    reply = await client.post("/api/data", json=_point(bucket, source), headers=xkey(org.admin))
    assert reply.status_code == 201, reply.text  # (its series id is now cached)
    input_source = {"key": INPUT, "schema": {"value": {"type": "number"}}}
    reply = await client.post(
        f"/v1/buckets/{bucket}/sources", json=input_source, headers=org.headers
    )
    assert reply.status_code == 201, reply.text  # a Datacooee input

    reply = await client.patch(
        f"/api/buckets/{bucket}", json={"status": "archived"}, headers=xkey(org.admin)
    )
    assert reply.status_code == 200, reply.text
    assert reply.json()["bucket"]["status"] == "archived"

    refused = await client.post(
        "/api/data", json=_point(bucket, source, 30), headers=xkey(org.admin)
    )
    assert refused.status_code == 409, refused.text
    assert refused.json()["error"] == "Conflict"
    assert f"bucket '{bucket}' is archived" in refused.json()["message"]
    batch = {"bucketId": bucket, "dataPoints": [_point(bucket, source, 31)]}
    assert (
        await client.post("/api/data/batch", json=batch, headers=xkey(org.admin))
    ).status_code == 409
    # Other dialects' writes meet the same check: the native API, DiagRAMS, Databoom.
    native = {"bucket": bucket, "points": [{"source": source, "field": "temperature", "value": 1}]}
    reply = await client.post("/v1/write", json=native, headers=org.headers)
    assert reply.status_code == 409 and "archived" in reply.text, reply.text
    reply = await client.post(
        f"/v0/organisations/{org.key}/data/{bucket}",
        json=[{"sensorId": source, "date": "2024-01-15T10:31:00.000Z", "value": 1}],
        headers=org.headers,
    )
    assert reply.status_code == 409 and "archived" in reply.text, reply.text
    reply = await client.post(
        "/v1/signals/push",
        json={"device": source, "signals": [{"name": "temperature", "value": 1}]},
        headers=org.headers,
    )
    assert reply.status_code == 409 and "archived" in reply.text, reply.text
    reply = await client.post(
        f"/api/v2/write?org={org.key}&bucket={bucket}",
        content=b"weather,station=n temperature=1",
        headers={"Authorization": f"Token {org.admin}"},
    )
    assert reply.status_code == 409 and "archived" in reply.text, reply.text
    upload = {
        "data": {
            "type": "SensorData",
            "id": "null",
            "attributes": {"value": "12.5", "timestamp": "2024-01-15T10:31:00Z"},
            "relationships": {"sensor": {"data": {"type": "Sensor", "id": INPUT}}},
        }
    }
    reply = await client.post(
        f"/api/external/v1/inputs/{INPUT}/inputdata/",
        json=upload,
        headers={
            "organization-id": org.key,
            "organization-api-key": org.admin,
            "content-type": "application/vnd.api+json",
        },
    )
    assert reply.status_code == 409 and "archived" in reply.text, reply.text

    # Reads still answer, with the one point written before.
    query = {"bucketId": bucket, "dataSourceId": source, "filters": {}}
    reply = await client.post("/api/data/query", json=query, headers=xkey(org.admin))
    assert reply.status_code == 200, reply.text
    assert [r["values"] for r in reply.json()["data"]] == [{"temperature": 22.5}]
    reply = await client.get(f"/v1/buckets/{bucket}", headers=org.headers)
    assert reply.json()["status"] == "archived"

    # Active again (through the native API): writes are taken again.
    reply = await client.patch(
        f"/v1/buckets/{bucket}", json={"status": "active"}, headers=org.headers
    )
    assert reply.status_code == 200 and reply.json()["status"] == "active", reply.text
    reply = await client.post("/api/data", json=_point(bucket, source, 30), headers=xkey(org.admin))
    assert reply.status_code == 201, reply.text


async def test_data_sources_are_read_changed_and_deleted(
    client: httpx.AsyncClient, org: Org
) -> None:
    bucket = (await _bucket(client, org))["_id"]
    source = await _source(client, org, bucket)
    url = f"/api/buckets/{bucket}/sources/{source['_id']}"
    reply = await client.get(url, headers=xkey(org.admin))
    assert reply.status_code == 200, reply.text
    assert reply.json()["dataSource"] == source
    reply = await client.patch(
        url,
        json={
            "name": "Kitchen",
            "type": "manual",
            "downsampling": False,
            "schema": {"temperature": "number", "humidity": "number"},
        },
        headers=xkey(org.admin),
    )
    assert reply.status_code == 200, reply.text
    changed = reply.json()["dataSource"]
    assert (changed["name"], changed["type"], changed["downsampling"]) == (
        "Kitchen",
        "manual",
        False,
    )
    assert set(changed["schema"]) == {"temperature", "humidity"}
    # The new schema is the one writes meet.
    point = _point(bucket, source["_id"])
    point["values"]["humidity"] = 50
    assert (await client.post("/api/data", json=point, headers=xkey(org.admin))).status_code == 201
    reply = await client.put(url, json={"downsampling": "no"}, headers=xkey(org.admin))
    assert reply.status_code == 400
    assert reply.json()["details"] == [
        {"path": ["body", "downsampling"], "message": "Expected boolean, received string"}
    ]
    reply = await client.delete(url, headers=xkey(org.admin))
    assert reply.status_code == 200, reply.text
    assert reply.json() == {"message": "Data source deleted successfully"}
    reply = await client.get(url, headers=xkey(org.admin))
    assert reply.status_code == 404
    assert reply.json()["message"] == "Data source not found"


async def test_permissions_and_tenancy(client: httpx.AsyncClient, org: Org, other_org: Org) -> None:
    bucket = (await _bucket(client, org))["_id"]
    source = (await _source(client, org, bucket))["_id"]
    writer = (
        await client.post(
            f"/api/buckets/{bucket}/keys",
            json={"name": "w", "type": "write"},
            headers=xkey(org.admin),
        )
    ).json()["key"]
    patch = {"status": "archived"}
    # A write key may change its bucket's data sources, not the bucket; nor delete either.
    reply = await client.patch(f"/api/buckets/{bucket}", json=patch, headers=xkey(writer))
    assert reply.status_code == 403, reply.text
    assert reply.json()["message"].startswith("Insufficient permissions. Required: admin")
    source_url = f"/api/buckets/{bucket}/sources/{source}"
    assert (
        await client.patch(source_url, json={"name": "x"}, headers=xkey(writer))
    ).status_code == 200
    assert (await client.delete(source_url, headers=xkey(writer))).status_code == 403
    # Another organisation's admin finds nothing to change or delete, as if it did not exist.
    for method, url in [
        ("PATCH", f"/api/buckets/{bucket}"),
        ("PUT", f"/api/buckets/{bucket}"),
        ("DELETE", f"/api/buckets/{bucket}"),
        ("GET", source_url),
        ("PATCH", source_url),
        ("DELETE", source_url),
    ]:
        body = patch if method in ("PATCH", "PUT") else None
        reply = await client.request(method, url, json=body, headers=xkey(other_org.admin))
        assert reply.status_code == 404, (method, url, reply.text)
        assert reply.json()["error"] == "Not Found"
    reply = await client.get(f"/api/buckets/{bucket}", headers=xkey(org.admin))
    assert reply.json()["bucket"]["status"] == "active"
    reply = await client.get(source_url, headers=xkey(org.admin))
    assert reply.status_code == 200


async def test_admin_routes_take_a_jwt_bearer(
    client: httpx.AsyncClient, org: Org, other_org: Org
) -> None:
    key_id, secret = org.admin.removeprefix("sb_").split("_", 1)
    reply = await client.post(
        "/v1/auth/token", data={"grant_type": "client_credentials"}, auth=(key_id, secret)
    )
    assert reply.status_code == 200, reply.text
    jwt = reply.json()["access_token"]
    reply = await client.post("/api/buckets", json={"name": "Via JWT"}, headers=auth(jwt))
    assert reply.status_code == 201, reply.text
    bucket = reply.json()["bucket"]["_id"]
    reply = await client.get("/api/buckets", headers=auth(jwt))
    assert [b["name"] for b in reply.json()["buckets"]] == [org.bucket, "Via JWT"]
    reply = await client.patch(
        f"/api/buckets/{bucket}", json={"status": "archived"}, headers=auth(jwt)
    )
    assert reply.status_code == 200, reply.text
    query = {"bucketId": bucket, "filters": {}}
    assert (await client.post("/api/data/query", json=query, headers=auth(jwt))).status_code == 200
    # The ingest routes take X-API-Key only, as dakkio's.
    reply = await client.post("/api/data", json=_point(bucket, "s"), headers=auth(jwt))
    assert reply.status_code == 401
    # A forged or foreign token opens nothing.
    reply = await client.get("/api/buckets", headers=auth(jwt[:-4] + "AAAA"))
    assert reply.status_code == 401
    assert reply.json() == {"error": "Unauthorized", "message": "Invalid or missing API key"}
    other_id, other_secret = other_org.admin.removeprefix("sb_").split("_", 1)
    reply = await client.post(
        "/v1/auth/token", data={"grant_type": "client_credentials"}, auth=(other_id, other_secret)
    )
    other_jwt = reply.json()["access_token"]
    reply = await client.get(f"/api/buckets/{bucket}", headers=auth(other_jwt))
    assert reply.status_code == 404


async def test_another_org_cannot_archive_by_guessing(
    client: httpx.AsyncClient, admin_key: str
) -> None:
    one = await make_org(client, admin_key, "one", "shared-name")
    two = await make_org(client, admin_key, "two", "shared-name")
    reply = await client.patch(
        "/v1/buckets/shared-name", json={"status": "archived"}, headers=one.headers
    )
    assert reply.status_code == 200, reply.text
    native = {"bucket": "shared-name", "points": [{"source": "s", "field": "f", "value": 1}]}
    assert (await client.post("/v1/write", json=native, headers=two.headers)).status_code == 200
    assert (await client.post("/v1/write", json=native, headers=one.headers)).status_code == 409
