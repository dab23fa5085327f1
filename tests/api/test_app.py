"""The app as an operator sees it: health, metrics, OpenAPI, the one error shape, overload."""

from __future__ import annotations

from typing import Any

import httpx

from tests.conftest import Org

T0 = "2026-11-21T10:00:00Z"


async def test_healthz(client: httpx.AsyncClient) -> None:
    reply = await client.get("/healthz")
    assert reply.status_code == 200
    assert reply.json()["status"] == "ok"


async def test_metrics_count_points_and_requests(
    client: httpx.AsyncClient, org: Org, backend: str
) -> None:
    body = {"bucket": org.bucket, "source": "s", "points": [{"field": "t", "value": 1, "time": T0}]}
    await client.post("/v1/write", json=body, headers=org.headers)
    text = (await client.get("/metrics")).text
    assert "sensorbase_points_written_total" in text
    assert 'sensorbase_requests_total{dialect="native",status="200"}' in text
    assert "sensorbase_ingest_queue 0.0" in text
    metrics = {
        line.split()[0]: float(line.split()[1])
        for line in text.splitlines()
        if line.startswith("sensorbase_") and "{" not in line
    }
    assert metrics["sensorbase_write_jobs_total"] >= metrics["sensorbase_commits_total"] >= 1
    assert metrics["sensorbase_commit_seconds_total"] > 0
    assert metrics["sensorbase_commit_gather_seconds_total"] >= 0
    assert metrics["sensorbase_storage_bytes"] > 0
    if backend == "sqlite":  # the point waits in the write log until a fold is due
        assert metrics["sensorbase_sqlite_log_points"] == 1
        assert metrics["sensorbase_sqlite_log_rows"] == 1


async def test_openapi_documents_every_route(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    paths = spec["paths"]
    for path in [
        "/v1/write",
        "/v1/query",
        "/v1/buckets",
        "/v1/buckets/{bucket}/sources",
        "/v1/keys",
        "/v1/orgs",
        "/v1/auth/token",
        "/healthz",
        "/metrics",
    ]:
        assert path in paths, path
    assert "requestBody" in paths["/v1/write"]["post"]
    assert (await client.get("/docs")).status_code == 200


async def test_problem_details_shape_is_pinned(client: httpx.AsyncClient, org: Org) -> None:
    reply = await client.post(
        "/v1/write",
        json=[{"bucket": org.bucket, "field": "t", "value": "1", "time": T0}],
        headers=org.headers,
    )
    assert reply.headers["content-type"] == "application/problem+json"
    reason = 'must be a JSON number, not a string (send 21.5, not "21.5")'
    assert reply.json() == {
        "type": "https://sensorbase.dev/problems/invalid",
        "title": "Invalid input",
        "status": 400,
        "detail": f"item 0, field 'value': {reason}",
        "errors": [{"index": 0, "field": "value", "reason": reason}],
    }


async def test_unknown_route_is_a_problem_404(client: httpx.AsyncClient) -> None:
    reply = await client.get("/v1/nothing-here")
    assert reply.status_code == 404
    assert reply.json()["title"] == "Not found"


async def test_a_full_ingest_queue_answers_503_with_retry_after(
    services: Any, client: httpx.AsyncClient, org: Org
) -> None:
    size = services.committer.queue_size
    services.committer.queue_size = 0  # as full as it gets (the bound: tests/ingest)
    body = {"bucket": org.bucket, "source": "s", "points": [{"field": "t", "value": 1, "time": T0}]}
    reply = await client.post("/v1/write", json=body, headers=org.headers)
    assert reply.status_code == 503
    assert reply.headers["retry-after"] == "1"
    assert "too many writes" in reply.json()["detail"]
    services.committer.queue_size = size
    assert (await client.post("/v1/write", json=body, headers=org.headers)).status_code == 200
