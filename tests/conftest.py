"""Fixtures: a real store (every backend), the engine's services, the ASGI app over httpx.

`backend` is parametrised over every storage backend; a test that takes `client` or `store`
runs once per backend. PostgreSQL tests create and drop their own database and skip when the
server is unreachable, except under SENSORBASE_REQUIRE_POSTGRES=1 (CI), where that fails.
"""

from __future__ import annotations

import importlib.util
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.dependencies import models as fastapi_models

from sensorbase.api.app import SensorbaseApp, build_app
from sensorbase.services import Services
from sensorbase.settings import Settings
from sensorbase.storage import open_store

BACKENDS = ["sqlite"]
if importlib.util.find_spec("sensorbase.storage.postgres") is not None:
    BACKENDS.append("postgres")


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The tests marked `slow(seconds)` first, the longest first; the rest keep their order.
    xdist hands out tests in collection order, so a long test collected late (tests/test_*.py
    come after every directory) started while the other process was finishing, and the suite
    ended with one process busy and the other idle."""

    def seconds(item: pytest.Item) -> float:
        marker = item.get_closest_marker("slow")
        return float(marker.args[0]) if marker else 0.0

    items.sort(key=seconds, reverse=True)  # stable: ties keep the collection order


@pytest.fixture(autouse=True, scope="session")
def _cheapest_password_hashes() -> Iterator[None]:
    """Users' passwords get argon2id at argon2-cffi's CHEAPEST profile (its profile for tests),
    in this process and in every server the tests start, which inherit the environment: at the
    default profile a hash or sign-in costs ~0.2 s of CPU (64 MiB, 4 lanes), ~55 s of the
    suite's CPU for the ~260 in-process tests, and ~10 s in each server of
    tests/api/test_openapi_conformance.py, whose fuzzing creates users and signs in by the
    hundred. The tests check who may sign in, not the hash's cost: tests/auth/test_passwords.py
    pins the default profile, with this variable unset."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SENSORBASE_PASSWORD_HASH_PROFILE", "cheapest")
        yield


@pytest.fixture(autouse=True)
def _forget_finished_apps() -> Iterator[None]:
    """FastAPI keeps, in bounded module-level caches, what it learnt of each route's callables
    (fastapi.dependencies.models): thousands of entries, each holding a test's app and its
    services alive. A process serves one app; a test process builds hundreds, whose millions
    of objects every full collection of the garbage collector then walked (~3.5 s each, seven
    of them a minute)."""
    yield
    for name in (
        "_is_gen_callable_cached",
        "_is_async_gen_callable_cached",
        "_is_coroutine_callable_cached",
    ):
        cached = getattr(fastapi_models, name, None)  # (absent from older FastAPI)
        if cached is not None:
            cached.cache_clear()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def settings(backend: str, tmp_path: Path) -> Iterator[Settings]:
    # fsync per commit is proven by tests/test_durability.py (default settings, a real server);
    # here it would only make every fixture slow on a busy machine.
    base = Settings(data_dir=tmp_path / "data", rate_limit="100000/second", durability="normal")
    if backend == "sqlite":
        yield base
        return
    from tests.pg import temporary_database  # the PostgreSQL backend's own helper

    with temporary_database() as url:
        yield base.model_copy(update={"database_url": url})


@pytest.fixture
def services(settings: Settings) -> Iterator[Services]:
    svc = Services(settings, open_store(settings))
    svc.bootstrap_key = svc.start()  # type: ignore[attr-defined]
    yield svc
    svc.stop()


_shared_app: list[SensorbaseApp] = []


def app_for(services: Services) -> SensorbaseApp:
    """The app, serving `services`: one per test process, since building FastAPI's routes
    (~0.1 s of CPU, with the first request's) cost more than most tests; every route reaches
    the services through `app.services` (api/app.py), so the app serves each test's own."""
    if not _shared_app:
        _shared_app.append(build_app(services, manage_lifecycle=False))
    app = _shared_app[0]
    app.services = services
    return app


@pytest.fixture
async def client(services: Services) -> AsyncIterator[httpx.AsyncClient]:
    app = app_for(services)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://sensorbase") as c:
        yield c


@pytest.fixture
def admin_key(services: Services) -> str:
    """The bootstrap key: admin of the 'default' organisation and server admin."""
    key = services.bootstrap_key  # type: ignore[attr-defined]
    assert key is not None
    return str(key.token)


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@dataclass
class Org:
    """An organisation seen from outside: its admin key and a bucket."""

    key: str
    admin: str
    bucket: str

    @property
    def headers(self) -> dict[str, str]:
        return auth(self.admin)

    async def new_key(
        self, client: httpx.AsyncClient, scopes: list[str], bucket: str | None = None
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"name": f"key-{'-'.join(scopes)}", "scopes": scopes}
        if bucket:
            body["bucket"] = bucket
        reply = await client.post("/v1/keys", json=body, headers=self.headers)
        assert reply.status_code == 201, reply.text
        return dict(reply.json())


async def make_org(client: httpx.AsyncClient, server_admin: str, key: str, bucket: str) -> Org:
    reply = await client.post("/v1/orgs", json={"key": key}, headers=auth(server_admin))
    assert reply.status_code == 201, reply.text
    reply = await client.post(
        f"/v1/orgs/{key}/keys",
        json={"name": "admin", "scopes": ["admin"]},
        headers=auth(server_admin),
    )
    assert reply.status_code == 201, reply.text
    admin = reply.json()["key"]
    reply = await client.post("/v1/buckets", json={"key": bucket}, headers=auth(admin))
    assert reply.status_code == 201, reply.text
    return Org(key, admin, bucket)


@pytest.fixture
async def org(client: httpx.AsyncClient, admin_key: str) -> Org:
    return await make_org(client, admin_key, "acme", "farm")


@pytest.fixture
async def other_org(client: httpx.AsyncClient, admin_key: str) -> Org:
    return await make_org(client, admin_key, "globex", "plant")
