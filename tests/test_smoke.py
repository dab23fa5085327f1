from __future__ import annotations

import httpx

from tests.conftest import Org


async def test_write_then_query(client: httpx.AsyncClient, org: Org) -> None:
    body = {
        "bucket": org.bucket,
        "points": [
            {
                "source": "ESP32-001",
                "field": "temperature",
                "value": 21.5,
                "time": "2026-11-21T10:00:00Z",
            },
            {
                "source": "ESP32-001",
                "fields": {"temperature": 21.7, "humidity": 40.0},
                "time": "2026-11-21T10:00:10+00:00",
            },
        ],
    }
    reply = await client.post("/v1/write", json=body, headers=org.headers)
    assert reply.status_code == 200, reply.text
    assert reply.json() == {"written": 3, "series": 2}
    reply = await client.get(
        "/v1/query", params={"bucket": org.bucket, "field": "temperature"}, headers=org.headers
    )
    assert reply.status_code == 200, reply.text
    [series] = reply.json()["series"]
    assert series["points"] == [
        {"time": "2026-11-21T10:00:00.000000Z", "value": 21.5},
        {"time": "2026-11-21T10:00:10.000000Z", "value": 21.7},
    ]
