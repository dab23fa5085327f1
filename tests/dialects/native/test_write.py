"""POST /v1/write over HTTP: formats, every bad point listed, atomic or partial, upserts, limits."""

from __future__ import annotations

import gzip
import json
from typing import Any

import httpx
import pytest

from tests.conftest import Org

T0 = "2026-11-21T10:00:00Z"


async def points(client: httpx.AsyncClient, org: Org, **params: Any) -> list[dict[str, Any]]:
    reply = await client.get(
        "/v1/query", params={"bucket": org.bucket, **params}, headers=org.headers
    )
    assert reply.status_code == 200, reply.text
    return [
        {"source": s["source"], "field": s["field"], **p}
        for s in reply.json()["series"]
        for p in s["points"]
    ]


async def test_array_body_with_defaults_from_the_query_string(
    client: httpx.AsyncClient, org: Org
) -> None:
    body = [
        {"field": "temperature", "value": 21, "time": T0},
        {"field": "temperature", "value": 21.25, "time": "2026-11-21T11:00:00+01:00"},
    ]
    reply = await client.post(
        "/v1/write",
        params={"bucket": org.bucket, "source": "dev-1"},
        json=body,
        headers=org.headers,
    )
    assert reply.status_code == 200, reply.text
    found = await points(client, org)
    # 11:00+01:00 is 10:00Z: the same (series, time), so the second replaced the first.
    assert found == [
        {
            "source": "dev-1",
            "field": "temperature",
            "time": "2026-11-21T10:00:00.000000Z",
            "value": 21.25,
        }
    ]


async def test_ndjson_gzip_epoch_precision_and_extras(client: httpx.AsyncClient, org: Org) -> None:
    lines = [
        {
            "source": "gps-1",
            "field": "speed",
            "value": 3.5,
            "time": 1795254000,
            "latitude": 48.85,
            "longitude": 2.35,
            "meta": {"fix": "3d"},
        },
        {"source": "gps-1", "field": "speed", "value": 4.0, "time": 1795254001},
    ]
    body = gzip.compress("\n".join(json.dumps(x) for x in lines).encode())
    reply = await client.post(
        "/v1/write",
        params={"bucket": org.bucket, "precision": "s"},
        content=body,
        headers={**org.headers, "Content-Type": "application/x-ndjson", "Content-Encoding": "gzip"},
    )
    assert reply.status_code == 200, reply.text
    assert reply.json() == {"written": 2, "series": 1}
    found = await points(client, org, source="gps-1")
    assert found == [
        {
            "source": "gps-1",
            "field": "speed",
            "time": "2026-11-21T09:40:00.000000Z",
            "value": 3.5,
            "latitude": 48.85,
            "longitude": 2.35,
            "meta": {"fix": "3d"},
        },
        {"source": "gps-1", "field": "speed", "time": "2026-11-21T09:40:01.000000Z", "value": 4.0},
    ]


async def test_fields_object_writes_one_series_per_field(
    client: httpx.AsyncClient, org: Org
) -> None:
    body = {
        "bucket": org.bucket,
        "source": "esp",
        "points": [{"fields": {"t": 1.5, "h": 40}, "time": T0}],
    }
    reply = await client.post("/v1/write", json=body, headers=org.headers)
    assert reply.json() == {"written": 2, "series": 2}
    found = await points(client, org)
    assert {(p["field"], p["value"]) for p in found} == {("t", 1.5), ("h", 40.0)}


@pytest.mark.parametrize(
    ("point", "field", "reason"),
    [
        ({"field": "t", "value": "21.5", "time": T0}, "value", "not a string"),
        ({"field": "t", "value": True, "time": T0}, "value", "must be a number"),
        ({"field": "t", "time": T0}, "value", "required"),
        ({"value": 1, "time": T0}, "field", "required"),
        ({"field": "t", "value": 1, "time": "2026-11-21T10:00:00"}, "time", "no time zone"),
        ({"field": "t", "value": 1, "time": "yesterday"}, "time", "not an ISO 8601"),
        ({"field": "t", "value": 1, "time": 1795254000}, "time", "precision"),
        ({"field": "t", "value": 1, "time": "1960-01-01T00:00:00Z"}, "time", "before"),
        ({"field": "t", "value": 1, "time": "2999-01-01T00:00:00Z"}, "time", "future"),
        ({"field": "t", "value": 1, "time": T0, "colour": "red"}, "colour", "not a known name"),
    ],
)
async def test_a_bad_point_is_named_and_nothing_is_stored(
    client: httpx.AsyncClient, org: Org, point: dict[str, Any], field: str | None, reason: str
) -> None:
    good = {"field": "t", "value": 1.0, "time": T0}
    body = {"bucket": org.bucket, "source": "s", "points": [good, point]}
    reply = await client.post("/v1/write", json=body, headers=org.headers)
    assert reply.status_code == 400, reply.text
    assert reply.headers["content-type"] == "application/problem+json"
    problem = reply.json()
    assert problem["status"] == 400 and problem["title"] == "Invalid input"
    [error] = problem["errors"]
    assert error["index"] == 1
    assert error.get("field") == field
    assert reason in error["reason"]
    assert await points(client, org) == []


async def test_every_bad_name_of_one_point_is_listed(client: httpx.AsyncClient, org: Org) -> None:
    point = {
        "value": "21.5",
        "fields": {"ok": 1, "humidity": "40"},
        "time": [T0],
        "colour": "red",
    }
    body = {"bucket": org.bucket, "source": "s", "points": [{"field": "t", "value": 1}, point]}
    reply = await client.post("/v1/write", json=body, headers=org.headers)
    assert reply.status_code == 400, reply.text
    named = {(e["index"], e["field"]): e["reason"] for e in reply.json()["errors"]}
    assert set(named) == {(1, "value"), (1, "fields.humidity"), (1, "time"), (1, "colour")}
    assert "not a string" in named[(1, "value")] and "not a string" in named[(1, "fields.humidity")]
    assert named[(1, "colour")] == "is not a known name"
    assert await points(client, org) == []


async def test_a_number_out_of_float_range_is_refused(client: httpx.AsyncClient, org: Org) -> None:
    body = b'[{"bucket": "farm", "source": "s", "field": "t", "value": 1e400, "time": 1}]'
    reply = await client.post(
        "/v1/write",
        params={"precision": "s"},
        content=body,
        headers={**org.headers, "Content-Type": "application/json"},
    )
    assert reply.status_code == 400
    assert reply.json()["errors"] == [
        {"index": 0, "field": "value", "reason": "must be a finite number"}
    ]


async def test_every_bad_point_is_listed(client: httpx.AsyncClient, org: Org) -> None:
    body = {
        "bucket": org.bucket,
        "source": "s",
        "points": [
            {"field": "t", "value": "1", "time": T0},
            {"field": "t", "value": 2, "time": T0},
            {"field": "t", "value": 3},
            {"field": "t", "time": T0},
            {"field": "t", "value": 5, "time": "nope"},
        ],
    }
    reply = await client.post("/v1/write", json=body, headers=org.headers)
    assert reply.status_code == 400
    errors = reply.json()["errors"]
    assert [(e["index"], e["field"]) for e in errors] == [(0, "value"), (3, "value"), (4, "time")]
    assert reply.json()["detail"].startswith("3 problems")


async def test_partial_stores_the_good_points_and_lists_the_bad(
    client: httpx.AsyncClient, org: Org
) -> None:
    body = {
        "bucket": org.bucket,
        "source": "s",
        "points": [
            {"field": "t", "value": 1, "time": T0},
            {"field": "t", "value": 2, "time": "1900-01-01T00:00:00Z"},
            {"field": "t", "value": 3, "time": "2026-11-21T10:00:01Z"},
        ],
    }
    reply = await client.post(
        "/v1/write", params={"partial": "true"}, json=body, headers=org.headers
    )
    assert reply.status_code == 200, reply.text
    assert reply.json()["written"] == 2
    assert [(e["index"], e["field"]) for e in reply.json()["rejected"]] == [(1, "time")]
    assert [p["value"] for p in await points(client, org)] == [1.0, 3.0]


async def test_partial_covers_every_kind_of_problem(client: httpx.AsyncClient, org: Org) -> None:
    await client.post(
        f"/v1/buckets/{org.bucket}/sources",
        json={"key": "strict", "schema": {"t": {}}},
        headers=org.headers,
    )
    body = {
        "bucket": org.bucket,
        "points": [
            {"source": "s", "field": "t", "value": "hot", "time": T0},
            {"source": "s", "fields": {"a": 1, "b": 2}, "time": "2999-01-01T00:00:00Z"},
            {"source": "s", "field": "t", "value": 3, "time": "not a time"},
            {"source": "strict", "fields": {"t": 4, "x": 5}, "time": T0},
            {"source": "s", "fields": {"a": 6, "b": 7}, "time": T0},
        ],
    }
    reply = await client.post("/v1/write", json=body, headers=org.headers)
    assert reply.status_code == 400
    assert [(e["index"], e["field"]) for e in reply.json()["errors"]] == [
        (0, "value"),
        (1, "time"),
        (2, "time"),
        (3, "x"),
    ]
    assert await points(client, org) == []
    reply = await client.post(
        "/v1/write", params={"partial": "true"}, json=body, headers=org.headers
    )
    assert reply.status_code == 200, reply.text
    assert [(e["index"], e["field"]) for e in reply.json()["rejected"]] == [
        (0, "value"),
        (1, "time"),
        (2, "time"),
        (3, "x"),
    ]
    # Item 3's declared field is stored; its undeclared one is not.
    assert reply.json()["written"] == 3
    assert sorted((p["source"], p["field"], p["value"]) for p in await points(client, org)) == [
        ("s", "a", 6.0),
        ("s", "b", 7.0),
        ("strict", "t", 4.0),
    ]


async def test_a_retried_batch_never_duplicates(client: httpx.AsyncClient, org: Org) -> None:
    body = {
        "bucket": org.bucket,
        "source": "s",
        "points": [{"field": "t", "value": i, "time": f"2026-11-21T10:00:0{i}Z"} for i in range(5)],
    }
    for _ in range(3):
        assert (await client.post("/v1/write", json=body, headers=org.headers)).status_code == 200
    assert len(await points(client, org)) == 5


async def test_unknown_bucket_is_404(client: httpx.AsyncClient, org: Org) -> None:
    body = {"bucket": "nope", "source": "s", "points": [{"field": "t", "value": 1, "time": T0}]}
    reply = await client.post("/v1/write", json=body, headers=org.headers)
    assert reply.status_code == 404
    assert reply.json()["detail"] == "bucket 'nope' not found"


async def test_declared_schema_refuses_other_fields(client: httpx.AsyncClient, org: Org) -> None:
    reply = await client.post(
        f"/v1/buckets/{org.bucket}/sources",
        json={
            "key": "strict",
            "schema": {"temperature": {"unit": "°C"}, "label": {"type": "string"}},
        },
        headers=org.headers,
    )
    assert reply.status_code == 201, reply.text
    body = {
        "bucket": org.bucket,
        "source": "strict",
        "points": [
            {"field": "temperature", "value": 20, "time": T0},
            {"field": "humidity", "value": 50, "time": T0},
            {"field": "label", "value": 1, "time": T0},
        ],
    }
    reply = await client.post("/v1/write", json=body, headers=org.headers)
    assert reply.status_code == 400
    errors = reply.json()["errors"]
    assert [(e["index"], e["field"]) for e in errors] == [(1, "humidity"), (2, "label")]
    assert "not declared" in errors[0]["reason"]
    assert await points(client, org) == []
    body["points"] = body["points"][:1]
    assert (await client.post("/v1/write", json=body, headers=org.headers)).status_code == 200
    reply = await client.get("/v1/query", params={"bucket": org.bucket}, headers=org.headers)
    assert reply.json()["series"][0]["unit"] == "°C"


async def test_invalid_json_and_wrong_shapes(client: httpx.AsyncClient, org: Org) -> None:
    for content, needle in [
        (b"{not json", "not valid JSON"),
        (b'"a string"', "list of points"),
        (b'{"points": 3}', "list of points"),
        (b'{"points": [], "extra": 1}', "unknown top-level"),
    ]:
        reply = await client.post(
            "/v1/write",
            content=content,
            headers={**org.headers, "Content-Type": "application/json"},
        )
        assert reply.status_code == 400, content
        assert needle in json.dumps(reply.json()), reply.json()


async def test_body_and_point_limits(services: Any, client: httpx.AsyncClient, org: Org) -> None:
    services.settings.max_body_bytes = 1000
    big = {
        "bucket": org.bucket,
        "source": "s",
        "points": [{"field": "t", "value": i, "time": T0} for i in range(100)],
    }
    reply = await client.post("/v1/write", json=big, headers=org.headers)
    assert reply.status_code == 413
    assert "limit is 1000" in reply.json()["detail"]
    bomb = gzip.compress(b"[" + b" " * 100_000 + b"]")
    reply = await client.post(
        "/v1/write",
        content=bomb,
        headers={**org.headers, "Content-Encoding": "gzip", "Content-Type": "application/json"},
    )
    assert reply.status_code == 413
    services.settings.max_body_bytes = 10_000_000
    services.settings.max_points_per_request = 10
    reply = await client.post("/v1/write", json=big, headers=org.headers)
    assert reply.status_code == 413
    assert "100 points" in reply.json()["detail"]


async def test_a_body_sent_in_pieces_is_read_whole_and_limited(
    services: Any, client: httpx.AsyncClient, org: Org
) -> None:
    """A streamed body reaches the app as several ASGI messages (the lane's one-message
    shortcut does not apply): all are read, and their sum is held to the limit."""
    body = json.dumps(
        [{"source": "s", "field": "t", "value": i, "time": 1795254000 + i} for i in range(50)]
    ).encode()

    async def pieces() -> Any:
        for start in range(0, len(body), 100):
            yield body[start : start + 100]

    url = f"/v1/write?bucket={org.bucket}&precision=s"
    headers = {**org.headers, "Content-Type": "application/json"}
    reply = await client.post(url, content=pieces(), headers=headers)
    assert reply.status_code == 200, reply.text
    assert reply.json() == {"written": 50, "series": 1}
    services.settings.max_body_bytes = len(body) - 1
    reply = await client.post(url, content=pieces(), headers=headers)
    assert reply.status_code == 413
    assert f"limit of {len(body) - 1} bytes" in reply.json()["detail"]
