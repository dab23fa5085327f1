"""The Madevo dialect over HTTP: inserts of both record forms, the data source's schema, timestamps,
tenancy, limits, login and token refresh; accepted rows are read back through the native API."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest

import sensorbase.dialects.madevo as madevo
from tests.conftest import Org, auth, make_org

INSERT = "/restapi/datasource/insert"


def sample() -> dict[str, Any]:
    """The vendor's sample request, taken from the dialect's docstring."""
    doc = madevo.__doc__ or ""
    start = doc.index("\n    {\n") + 1
    end = doc.index("\n    }\n", start) + 6
    return dict(json.loads(doc[start:end]))


async def datasource(
    client: httpx.AsyncClient, org: Org, key: str = "67890", meta: dict[str, Any] | None = None
) -> None:
    body = {"key": key, "name": f"Madevo data source {key}", "meta": meta or {}}
    reply = await client.post("/v1/buckets", json=body, headers=org.headers)
    assert reply.status_code == 201, reply.text


async def writer(client: httpx.AsyncClient, org: Org) -> dict[str, str]:
    key = await org.new_key(client, ["data:write", "data:read"])
    return auth(key["key"])


async def points(
    client: httpx.AsyncClient, org: Org, bucket: str, source: str, field: str
) -> list[dict[str, Any]]:
    reply = await client.get(
        "/v1/query",
        params={"bucket": bucket, "source": source, "field": field},
        headers=org.headers,
    )
    if reply.status_code == 404 and reply.json()["detail"].startswith("no series"):
        return []
    assert reply.status_code == 200, reply.text
    series = reply.json()["series"]
    return list(series[0]["points"]) if series else []


async def schema(client: httpx.AsyncClient, org: Org, key: str = "67890") -> Any:
    reply = await client.get(f"/v1/buckets/{key}", headers=org.headers)
    assert reply.status_code == 200, reply.text
    return reply.json()["meta"].get("madevo")


async def test_vendor_sample(client: httpx.AsyncClient, org: Org) -> None:
    await datasource(client, org)
    reply = await client.post(INSERT, json=sample(), headers=await writer(client, org))
    assert reply.status_code == 200, reply.text
    assert reply.json() == {"message": "Data successfully inserted", "count": 1}
    # No entity column: the points belong to the source named after the data source.
    assert await points(client, org, "67890", "67890", "temperature") == [
        {"time": "2025-01-01T12:00:00.000000Z", "value": 22.5}
    ]
    assert await schema(client, org) == {
        "entity": None,
        "columns": {"metric": "string", "value": "number"},
        "inferred": True,
    }


async def test_narrow_records_with_entities_and_numeric_strings(
    client: httpx.AsyncClient, org: Org
) -> None:
    await datasource(client, org)
    body = {
        "datasource_id": "67890",
        "data": [
            {
                "timestamp": "2025-01-01T10:00:00+00:00",
                "entity_id": "pump-1",
                "metric_name": "pressure",
                "value": "2.5",
                "site": "north",
            },
            {
                "timestamp": "2025-01-01T10:00:00+00:00",
                "entity_id": "pump-2",
                "metric_name": "pressure",
                "value": 3,
            },
            {
                "timestamp": "2025-01-01T11:00:00+0100",
                "entity_id": "pump-1",
                "metric_name": "flow",
                "value": "-1.5e1",
                "site": "north",
            },
        ],
    }
    reply = await client.post(INSERT, json=body, headers=await writer(client, org))
    assert reply.status_code == 200, reply.text
    assert reply.json()["count"] == 3
    assert await points(client, org, "67890", "pump-1", "pressure") == [
        {"time": "2025-01-01T10:00:00.000000Z", "value": 2.5, "meta": {"site": "north"}}
    ]
    assert await points(client, org, "67890", "pump-2", "pressure") == [
        {"time": "2025-01-01T10:00:00.000000Z", "value": 3.0}
    ]
    assert await points(client, org, "67890", "pump-1", "flow") == [
        {"time": "2025-01-01T10:00:00.000000Z", "value": -15.0, "meta": {"site": "north"}}
    ]
    assert (await schema(client, org))["entity"] == "entity_id"


async def test_wide_records_by_patch(client: httpx.AsyncClient, org: Org) -> None:
    await datasource(client, org, "greenhouse")
    body = {
        "datasource_id": "greenhouse",
        "data": [
            {
                "timestamp": "2024-01-01T10:00:00Z",
                "sensor_id": "S1",
                "temperature": 21.5,
                "humidity": "40",
                "zone": "A",
            },
            {
                "timestamp": "2024-01-01T10:00:00Z",
                "sensor_id": "S2",
                "temperature": "19.25",
                "humidity": None,
                "zone": "B",
            },
        ],
    }
    reply = await client.patch(INSERT, json=body, headers=await writer(client, org))
    assert reply.status_code == 200, reply.text
    assert reply.json() == {"message": "Data successfully inserted", "count": 2}
    assert await points(client, org, "greenhouse", "S1", "humidity") == [
        {"time": "2024-01-01T10:00:00.000000Z", "value": 40.0, "meta": {"zone": "A"}}
    ]
    assert await points(client, org, "greenhouse", "S2", "temperature") == [
        {"time": "2024-01-01T10:00:00.000000Z", "value": 19.25, "meta": {"zone": "B"}}
    ]
    assert await points(client, org, "greenhouse", "S2", "humidity") == []
    assert await schema(client, org, "greenhouse") == {
        "entity": "sensor_id",
        "columns": {"temperature": "number", "humidity": "number", "zone": "string"},
        "inferred": True,
    }


async def test_batch_of_bare_values(client: httpx.AsyncClient, org: Org) -> None:
    """The document's batch example: `{timestamp, value}` records, a wide column 'value'."""
    await datasource(client, org)
    body = {
        "datasource_id": 67890,  # a number is read as the same id
        "data": [
            {"timestamp": "2025-01-01T10:00:00Z", "value": 21.2},
            {"timestamp": "2025-01-01T11:00:00Z", "value": 21.9},
            {"timestamp": "2025-01-01T12:00:00Z", "value": 22.5},
        ],
    }
    reply = await client.post(INSERT, json=body, headers=await writer(client, org))
    assert reply.status_code == 200, reply.text
    assert [p["value"] for p in await points(client, org, "67890", "67890", "value")] == [
        21.2,
        21.9,
        22.5,
    ]


async def test_schema_drift_is_refused_and_stores_nothing(
    client: httpx.AsyncClient, org: Org
) -> None:
    await datasource(client, org, "plant")
    headers = await writer(client, org)
    first = {
        "datasource_id": "plant",
        "data": [
            {"timestamp": "2024-01-01T10:00:00Z", "sensor_id": "S1", "temperature": 20, "zone": "A"}
        ],
    }
    assert (await client.post(INSERT, json=first, headers=headers)).status_code == 200
    before = await schema(client, org, "plant")
    drift = {
        "datasource_id": "plant",
        "data": [
            {
                "timestamp": "2024-01-01T11:00:00Z",
                "sensor_id": "S1",
                "temperature": 21,
                "zone": "A",
                "pressure": 1.5,
            },
            {
                "timestamp": "2024-01-01T12:00:00Z",
                "sensor_id": "S1",
                "temperature": "hot",
                "zone": "A",
            },
            {"timestamp": "2024-01-01T13:00:00Z", "sensor_id": "S1", "temperature": 22, "zone": 7},
        ],
    }
    reply = await client.post(INSERT, json=drift, headers=headers)
    assert reply.status_code == 422, reply.text
    body = reply.json()
    assert body["error"] == "validation_error"
    assert body["message"].startswith("2 problems; first: row 1, column 'temperature'")
    assert [(d["row"], d["column"]) for d in body["details"]] == [
        (1, "temperature"),
        (2, "zone"),
    ]
    assert 'got "hot"' in body["details"][0]["reason"]
    assert "string column" in body["details"][1]["reason"]
    # Nothing from the refused request: neither row 0's points nor its new column.
    assert len(await points(client, org, "plant", "S1", "temperature")) == 1
    assert await points(client, org, "plant", "S1", "pressure") == []
    assert await schema(client, org, "plant") == before


async def test_one_schema_per_request(client: httpx.AsyncClient, org: Org) -> None:
    await datasource(client, org)
    body = {
        "datasource_id": "67890",
        "data": [
            {"timestamp": "2025-01-01T10:00:00Z", "metric": "temperature", "value": 1},
            {"timestamp": "2025-01-01T10:00:00Z", "temperature": 1},
            {"timestamp": "2025-01-01T10:00:00Z", "level": 3},
            {"timestamp": "2025-01-01T11:00:00Z", "level": "high"},
            "not a record",
        ],
    }
    reply = await client.post(INSERT, json=body, headers=await writer(client, org))
    assert reply.status_code == 422, reply.text
    details = reply.json()["details"]
    assert [(d["row"], d.get("column")) for d in details] == [
        (1, None),
        (2, None),
        (3, None),
        (4, None),
    ]
    assert "one schema" in details[0]["reason"]
    assert await schema(client, org) is None


async def test_column_mixing_numbers_and_text_in_one_request(
    client: httpx.AsyncClient, org: Org
) -> None:
    await datasource(client, org)
    body = {
        "datasource_id": "67890",
        "data": [
            {"timestamp": "2025-01-01T10:00:00Z", "level": 3},
            {"timestamp": "2025-01-01T11:00:00Z", "level": "high"},
            {"timestamp": "2025-01-01T12:00:00Z", "level": True},
        ],
    }
    reply = await client.post(INSERT, json=body, headers=await writer(client, org))
    assert reply.status_code == 422, reply.text
    assert [(d["row"], d["column"]) for d in reply.json()["details"]] == [
        (1, "level"),
        (2, "level"),
    ]


async def test_declared_schema(client: httpx.AsyncClient, org: Org) -> None:
    declared = {
        "madevo": {"entity": "device_id", "columns": {"temperature": "number", "room": "string"}}
    }
    await datasource(client, org, "building", declared)
    headers = await writer(client, org)
    ok = {
        "datasource_id": "building",
        "data": [
            {
                "timestamp": "2024-05-01T08:00:00-02:00",
                "device_id": 42,
                "temperature": "23.5",
                "room": "101",
            }
        ],
    }
    reply = await client.post(INSERT, json=ok, headers=headers)
    assert reply.status_code == 200, reply.text
    # 'room' is declared a string: "101" is a dimension, not a metric.
    assert await points(client, org, "building", "42", "temperature") == [
        {"time": "2024-05-01T10:00:00.000000Z", "value": 23.5, "meta": {"room": "101"}}
    ]
    assert await points(client, org, "building", "42", "room") == []
    extra = {
        "datasource_id": "building",
        "data": [
            {"timestamp": "2024-05-01T09:00:00Z", "device_id": "D1", "temperature": 1, "co2": 400}
        ],
    }
    reply = await client.post(INSERT, json=extra, headers=headers)
    assert reply.status_code == 422, reply.text
    [detail] = reply.json()["details"]
    assert detail["column"] == "co2"
    assert "declared: room, temperature" in detail["reason"]
    assert await schema(client, org, "building") == declared["madevo"]


async def test_naive_and_bad_timestamps(client: httpx.AsyncClient, org: Org) -> None:
    await datasource(client, org)
    body = {
        "datasource_id": "67890",
        "data": [
            {"timestamp": "2025-01-01T10:00:00Z", "metric": "temperature", "value": 20},
            {"timestamp": "2025-01-01T10:00:00", "metric": "temperature", "value": 21},
            {"timestamp": "yesterday", "metric": "temperature", "value": 22},
            {"timestamp": 1735725600, "metric": "temperature", "value": 23},
            {"metric": "temperature", "value": 24},
        ],
    }
    reply = await client.post(INSERT, json=body, headers=await writer(client, org))
    assert reply.status_code == 422, reply.text
    assert reply.json()["error"] == "validation_error"
    assert reply.json()["message"] == "Invalid timestamp format"
    details = reply.json()["details"]
    assert [(d["row"], d["column"]) for d in details] == [
        (1, "timestamp"),
        (2, "timestamp"),
        (3, "timestamp"),
        (4, "timestamp"),
    ]
    assert "no time zone" in details[0]["reason"]
    assert await points(client, org, "67890", "67890", "temperature") == []


async def test_time_outside_the_accepted_window(client: httpx.AsyncClient, org: Org) -> None:
    await datasource(client, org)
    body = {
        "datasource_id": "67890",
        "data": [{"timestamp": "1960-01-01T00:00:00Z", "temperature": 1, "humidity": 2}],
    }
    reply = await client.post(INSERT, json=body, headers=await writer(client, org))
    assert reply.status_code == 422, reply.text
    [detail] = reply.json()["details"]
    assert (detail["row"], detail["column"]) == (0, "timestamp")
    assert "before" in detail["reason"]


async def test_another_organisations_datasource(
    client: httpx.AsyncClient, org: Org, other_org: Org
) -> None:
    await datasource(client, other_org, "secret-ds")
    headers = await writer(client, org)
    body = {"datasource_id": "secret-ds", "data": sample()["data"]}
    theirs = await client.post(INSERT, json=body, headers=headers)
    missing = await client.post(
        INSERT, json={**body, "datasource_id": "no-such-ds"}, headers=headers
    )
    assert theirs.status_code == missing.status_code == 404
    assert theirs.json() == {"error": "not_found", "message": "data source 'secret-ds' not found"}
    assert missing.json()["message"] == "data source 'no-such-ds' not found"
    assert await points(client, other_org, "secret-ds", "secret-ds", "temperature") == []


async def test_credentials_and_scopes(client: httpx.AsyncClient, org: Org) -> None:
    await datasource(client, org)
    reply = await client.post(INSERT, json=sample())
    assert reply.status_code == 401
    assert reply.json()["error"] == "unauthorized"
    assert reply.headers["www-authenticate"] == "Bearer"
    reply = await client.post(INSERT, json=sample(), headers=auth("not-a-token"))
    assert reply.status_code == 401
    reader = await org.new_key(client, ["data:read"])
    reply = await client.post(INSERT, json=sample(), headers=auth(reader["key"]))
    assert reply.status_code == 403
    assert reply.json()["error"] == "forbidden"
    # A key limited to another bucket may not write here.
    limited = await org.new_key(client, ["data:write"], bucket=org.bucket)
    reply = await client.post(INSERT, json=sample(), headers=auth(limited["key"]))
    assert reply.status_code == 403


@pytest.mark.parametrize(
    ("body", "column"),
    [
        (b"{not json", None),
        (b"[]", None),
        (b'{"data": []}', "datasource_id"),
        (b'{"datasource_id": "67890"}', "data"),
        (b'{"datasource_id": "67890", "data": {}}', "data"),
        (b'{"datasource_id": ["x"], "data": [{}]}', "datasource_id"),
    ],
)
async def test_malformed_bodies(
    client: httpx.AsyncClient, org: Org, body: bytes, column: str | None
) -> None:
    headers = {**await writer(client, org), "Content-Type": "application/json"}
    reply = await client.post(INSERT, content=body, headers=headers)
    assert reply.status_code == 400, reply.text
    assert reply.json()["error"] == "validation_error"
    columns = [d.get("column") for d in reply.json().get("details", [])]
    assert column in columns if column else not any(columns)


async def test_record_limit(client: httpx.AsyncClient, org: Org) -> None:
    await datasource(client, org)
    data = [
        {"timestamp": f"2025-01-01T00:{i // 60:02d}:{i % 60:02d}Z", "value": i} for i in range(1001)
    ]
    headers = await writer(client, org)
    reply = await client.post(
        INSERT, json={"datasource_id": "67890", "data": data}, headers=headers
    )
    assert reply.status_code == 413, reply.text
    assert reply.json()["error"] == "payload_too_large"
    assert "limit is 1000" in reply.json()["message"]
    reply = await client.post(
        INSERT, json={"datasource_id": "67890", "data": data[:1000]}, headers=headers
    )
    assert reply.status_code == 200, reply.text
    assert reply.json()["count"] == 1000
    assert len(await points(client, org, "67890", "67890", "value")) == 1000


async def test_login_insert_refresh(client: httpx.AsyncClient, org: Org) -> None:
    await datasource(client, org)
    reply = await client.post(
        "/v1/users",
        json={"email": "Ada@Example.com", "password": "correct horse", "role": "writer"},
        headers=org.headers,
    )
    assert reply.status_code == 201, reply.text
    reply = await client.post(
        "/restapi/login", json={"email": "ada@example.com", "password": "correct horse"}
    )
    assert reply.status_code == 200, reply.text
    token = reply.json()["token"]
    reply = await client.post(INSERT, json=sample(), headers=auth(token))
    assert reply.status_code == 200, reply.text

    reply = await client.post("/restapi/refresh-token", headers=auth(token))
    assert reply.status_code == 200, reply.text
    fresh = reply.json()["token"]
    assert fresh != token
    body = {
        "datasource_id": "67890",
        "data": [{"timestamp": "2025-01-01T13:00:00Z", "metric": "temperature", "value": 23}],
    }
    reply = await client.post(INSERT, json=body, headers=auth(fresh))
    assert reply.status_code == 200, reply.text
    assert len(await points(client, org, "67890", "67890", "temperature")) == 2

    # The user token is a native credential too, acting with the role's scopes.
    reply = await client.get("/v1/whoami", headers=auth(fresh))
    assert reply.status_code == 200, reply.text
    assert reply.json()["organisation"] == "acme"
    assert reply.json()["scopes"] == ["data:write", "data:read"]


async def test_login_failures(client: httpx.AsyncClient, org: Org) -> None:
    await client.post(
        "/v1/users",
        json={"email": "bob@example.com", "password": "s3cret-pass", "role": "reader"},
        headers=org.headers,
    )
    wrong = await client.post(
        "/restapi/login", json={"email": "bob@example.com", "password": "guess"}
    )
    unknown = await client.post(
        "/restapi/login", json={"email": "nobody@example.com", "password": "guess"}
    )
    assert wrong.status_code == unknown.status_code == 401
    assert (
        wrong.json()
        == unknown.json()
        == {
            "error": "unauthorized",
            "message": "wrong email or password",
        }
    )
    reply = await client.post("/restapi/login", json={"email": "bob@example.com"})
    assert reply.status_code == 400
    assert [d["column"] for d in reply.json()["details"]] == ["password"]
    reply = await client.post("/restapi/refresh-token")
    assert reply.status_code == 401
    reply = await client.post("/restapi/refresh-token", headers=auth("garbage"))
    assert reply.status_code == 401

    # A reader signs in but may not insert.
    await datasource(client, org)
    reply = await client.post(
        "/restapi/login",
        data={"email": "bob@example.com", "password": "s3cret-pass"},  # a form works too
    )
    assert reply.status_code == 200, reply.text
    reply = await client.post(INSERT, json=sample(), headers=auth(reply.json()["token"]))
    assert reply.status_code == 403


async def test_deleted_user_token_stops_working(
    client: httpx.AsyncClient, org: Org, admin_key: str
) -> None:
    other = await make_org(client, admin_key, "initech", "lab")
    reply = await client.post(
        "/v1/users",
        json={"email": "carol@example.com", "password": "long enough", "role": "admin"},
        headers=other.headers,
    )
    user_id = reply.json()["id"]
    reply = await client.post(
        "/restapi/login", json={"email": "carol@example.com", "password": "long enough"}
    )
    token = reply.json()["token"]
    assert (await client.get("/v1/users", headers=auth(token))).status_code == 200
    # Another organisation's admin cannot see or delete carol.
    reply = await client.delete(f"/v1/users/{user_id}", headers=org.headers)
    assert reply.status_code == 404
    reply = await client.delete("/v1/users/carol@example.com", headers=other.headers)
    assert reply.status_code == 204
    reply = await client.post("/restapi/refresh-token", headers=auth(token))
    assert reply.status_code == 401
    assert reply.json()["error"] == "unauthorized"


async def test_api_key_refresh_gives_an_access_token(client: httpx.AsyncClient, org: Org) -> None:
    await datasource(client, org)
    key = await org.new_key(client, ["data:write"])
    reply = await client.post("/restapi/refresh-token", headers=auth(key["key"]))
    assert reply.status_code == 200, reply.text
    reply = await client.post(INSERT, json=sample(), headers=auth(reply.json()["token"]))
    assert reply.status_code == 200, reply.text


async def test_values_that_are_not_numbers_or_strings(client: httpx.AsyncClient, org: Org) -> None:
    await datasource(client, org)
    body = {
        "datasource_id": "67890",
        "data": [
            {"timestamp": "2025-01-01T10:00:00Z", "sensor_id": True, "temperature": 1},
            {"timestamp": "2025-01-01T11:00:00Z", "sensor_id": "S1", "": 2, "ok": 1},
            {"timestamp": "2025-01-01T12:00:00Z", "sensor_id": "S1", "zone": "A"},
            {"timestamp": "2025-01-01T13:00:00Z", "sensor_id": "S1", "temperature": [1]},
        ],
    }
    reply = await client.post(INSERT, json=body, headers=await writer(client, org))
    assert reply.status_code == 422, reply.text
    assert [(d["row"], d.get("column")) for d in reply.json()["details"]] == [
        (0, "sensor_id"),
        (1, ""),
        (2, None),
        (3, "temperature"),
    ]
    assert "holds no metric" in reply.json()["details"][2]["reason"]
    assert await schema(client, org) is None


async def test_concurrent_first_inserts_agree_on_one_schema(
    client: httpx.AsyncClient, org: Org
) -> None:
    """Two first inserts that type a column differently: one wins, the other stores nothing."""
    await datasource(client, org)
    headers = await writer(client, org)

    def body(zone: Any, hour: int) -> dict[str, Any]:
        return {
            "datasource_id": "67890",
            "data": [{"timestamp": f"2025-01-01T{hour:02d}:00:00Z", "level": 1, "zone": zone}],
        }

    replies = await asyncio.gather(
        client.post(INSERT, json=body("A", 1), headers=headers),
        client.post(INSERT, json=body(5, 2), headers=headers),
    )
    statuses = sorted(r.status_code for r in replies)
    assert statuses[0] == 200 and statuses[1] in (409, 422), [r.text for r in replies]
    stored = await points(client, org, "67890", "67890", "level")
    assert len(stored) == 1
    won_with_text = replies[0].status_code == 200
    assert (await schema(client, org))["columns"]["zone"] == (
        "string" if won_with_text else "number"
    )
    assert stored[0]["time"].startswith("2025-01-01T01" if won_with_text else "2025-01-01T02")
