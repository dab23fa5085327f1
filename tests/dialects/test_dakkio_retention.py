"""dakkio's `retentionDays` on its bucket routes: the bucket's retention (docs/lifecycle.md)."""

from __future__ import annotations

import httpx

from tests.conftest import Org


def xkey(token: str) -> dict[str, str]:
    return {"X-API-Key": token}


async def test_retention_days_is_the_buckets_retention(client: httpx.AsyncClient, org: Org) -> None:
    admin = xkey(org.admin)
    made = await client.post(
        "/api/buckets", json={"name": "Plant", "retentionDays": 30}, headers=admin
    )
    assert made.status_code == 201, made.text
    bucket = made.json()["bucket"]
    assert bucket["retentionDays"] == 30
    native = (await client.get(f"/v1/buckets/{bucket['_id']}", headers=org.headers)).json()
    assert native["retention"] == "30d"
    changed = await client.patch(
        f"/api/buckets/{bucket['_id']}", json={"retentionDays": 365}, headers=admin
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["bucket"]["retentionDays"] == 365
    assert (await client.get(f"/v1/buckets/{bucket['_id']}", headers=org.headers)).json()[
        "retention"
    ] == "365d"
    kept = await client.patch(f"/api/buckets/{bucket['_id']}", json={}, headers=admin)
    assert kept.json()["bucket"]["retentionDays"] == 365
    forever = await client.patch(
        f"/api/buckets/{bucket['_id']}", json={"retentionDays": None}, headers=admin
    )
    assert forever.json()["bucket"]["retentionDays"] is None
    for bad, message in (
        (0, "Number must be between 1 and 3650"),
        ("30", "Expected number, received string"),
    ):
        refused = await client.post(
            "/api/buckets", json={"name": "Other", "retentionDays": bad}, headers=admin
        )
        assert refused.status_code == 400
        assert refused.json()["details"] == [
            {"path": ["body", "retentionDays"], "message": message}
        ]
    listed = (await client.get("/api/buckets", headers=admin)).json()["buckets"]
    assert [b["name"] for b in listed] == ["farm", "Plant"]
