"""What every reply carries, what a wrong method gets, /metrics behind a key, and the bounds
of names and integers on the catalog routes."""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from sensorbase.api.app import build_app
from sensorbase.services import Services
from sensorbase.settings import Settings
from sensorbase.storage import open_store
from tests.conftest import Org, app_for, auth

SAFE = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "content-security-policy": "frame-ancestors 'none'",
    "cache-control": "no-store",
}


def _safe(reply: httpx.Response) -> dict[str, str | None]:
    return {name: reply.headers.get(name) for name in SAFE}


async def test_every_reply_carries_the_safety_headers(client: httpx.AsyncClient, org: Org) -> None:
    point = [{"bucket": org.bucket, "source": "s", "field": "t", "value": 1}]
    replies = [
        await client.get("/v1/buckets", headers=org.headers),  # FastAPI route
        await client.post("/v1/write", json=point, headers=org.headers),  # fast lane
        await client.post("/v1/write", json=[{"value": "x"}], headers=org.headers),  # lane error
        await client.get("/v1/buckets"),  # 401
        await client.get("/no/such/route"),  # 404
        await client.get("/healthz"),
    ]
    for reply in replies:
        assert _safe(reply) == SAFE, (reply.request.url, reply.status_code)


async def test_a_wrong_method_is_405_listing_every_method_the_path_takes(
    client: httpx.AsyncClient, org: Org
) -> None:
    reply = await client.put("/v1/buckets", headers=org.headers)
    assert reply.status_code == 405
    assert reply.headers["allow"] == "GET, POST"
    problem = reply.json()
    assert problem["type"].endswith("/method_not_allowed")
    assert problem["title"] == "Method not allowed"


@pytest.fixture
def keyed_metrics(settings: Settings) -> Iterator[Services]:
    locked = settings.model_copy(update={"metrics_require_key": True})
    svc = Services(locked, open_store(locked))
    svc.bootstrap_key = svc.start()  # type: ignore[attr-defined]
    yield svc
    svc.stop()


async def test_metrics_can_require_a_server_administrators_key(keyed_metrics: Services) -> None:
    app = build_app(keyed_metrics, manage_lifecycle=False)
    admin = keyed_metrics.bootstrap_key.token  # type: ignore[attr-defined]
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://sensorbase"
    ) as client:
        assert (await client.get("/metrics")).status_code == 401
        reply = await client.post("/v1/orgs", json={"key": "acme"}, headers=auth(admin))
        reply = await client.post(
            "/v1/orgs/acme/keys", json={"name": "a", "scopes": ["admin"]}, headers=auth(admin)
        )
        org_admin = reply.json()["key"]
        assert (await client.get("/metrics", headers=auth(org_admin))).status_code == 403
        reply = await client.get("/metrics", headers=auth(admin))
        assert reply.status_code == 200
        assert "sensorbase_points_written" in reply.text


async def test_metrics_are_open_by_default(client: httpx.AsyncClient) -> None:
    assert (await client.get("/metrics")).status_code == 200


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"key": "a\x00b"}, "key"),
        ({"key": "a\x07b"}, "key"),
        ({"key": "k" * 201}, "key"),
        ({"key": "ok", "name": "n\x00"}, "name"),
        ({"key": "ok", "description": "d\x00"}, "description"),
        ({"key": "ok", "meta": {"blob": "x" * 70_000}}, "meta"),
    ],
)
async def test_catalog_names_obey_the_limits(
    client: httpx.AsyncClient, org: Org, body: dict[str, object], field: str
) -> None:
    reply = await client.post("/v1/buckets", json=body, headers=org.headers)
    assert reply.status_code == 400, reply.text
    assert [e["field"] for e in reply.json()["errors"]] == [field]
    listed = await client.get("/v1/buckets", headers=org.headers)
    assert [b["key"] for b in listed.json()["buckets"]] == [org.bucket]


@pytest.mark.parametrize(
    "path",
    [
        "/v1/buckets?offset=32589158477190044729",
        "/v1/buckets/farm/sources?offset=1000000001",
        "/api/buckets?offset=32589158477190044729",
        "/v1/groups/99999999999999999999",
        "/v1/query?cursor=WzFlNDAwLCAwXQ",  # base64 of [1e400, 0]
    ],
)
async def test_unbounded_integers_are_refused_not_a_500(
    client: httpx.AsyncClient, org: Org, path: str
) -> None:
    headers = {**org.headers, "X-API-Key": org.admin}
    reply = await client.get(path, headers=headers)
    assert 400 <= reply.status_code < 500, reply.text


def _routes(routes: list[Any]) -> Iterator[APIRoute]:
    for route in routes:
        if hasattr(route, "original_router"):  # an included router (FastAPI >= 0.160)
            yield from _routes(route.original_router.routes)
        elif isinstance(route, APIRoute):
            yield route


def _blocking(dependant: Dependant) -> Iterator[str]:
    for dep in dependant.dependencies:
        call = dep.call
        fn = call if inspect.isfunction(call) else getattr(call, "__call__", call)  # noqa: B004
        if not inspect.iscoroutinefunction(fn):
            yield f"{getattr(call, '__module__', '?')}.{getattr(call, '__qualname__', call)}"
        yield from _blocking(dep)


def test_every_route_and_dependency_runs_on_the_event_loop(services: Services) -> None:
    """FastAPI runs a plain function (an endpoint or a dependency) on its thread pool: a hop
    per request each way, and under a saturating ingest each hop waits for the event loop
    between two writes' work (a one-series read took ~16 ms in the app for ~3 ms of reading,
    benchmarks/README.md). Storage is read on the pool once per request, by the service."""
    app = app_for(services)
    blocking = {
        f"{','.join(sorted(route.methods))} {route.path}: {name}"
        for route in _routes(app.routes)
        for name in (
            *_blocking(route.dependant),
            *([] if inspect.iscoroutinefunction(route.endpoint) else [route.endpoint.__name__]),
        )
    }
    assert not blocking, sorted(blocking)[:20]
