"""Building the ASGI app. Dialects are found, not listed: every module (or package) in
`sensorbase.dialects` that offers `router()` is mounted, so a new vendor is one new module."""

from __future__ import annotations

import gc
import importlib
import logging
import pkgutil
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.core import REGISTRY, CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector, CollectorRegistry
from starlette.types import Message, Receive, Scope, Send

from sensorbase import __version__, console, dialects, mqtt
from sensorbase.api import docs, problems
from sensorbase.api.problems import PROBLEM_SCHEMA
from sensorbase.dialects.base import bearer, client_address, principal_of_credential
from sensorbase.dialects.base import services as request_services
from sensorbase.dialects.lane import SAFETY_HEADERS, Lanes
from sensorbase.errors import Forbidden
from sensorbase.services import Services

log = logging.getLogger("sensorbase")

DESCRIPTION = """
Sensorbase stores sensor time series. Write with `POST /v1/write`, read with `/v1/query`.
Authenticate with `Authorization: Bearer <API key or access token>`.
It also speaks five vendors' ingestion APIs; see the README and docs/dialects/.
"""


def dialect_modules() -> list[Any]:
    found = []
    for info in pkgutil.iter_modules(dialects.__path__):
        module = importlib.import_module(f"{dialects.__name__}.{info.name}")
        if callable(getattr(module, "router", None)):
            found.append(module)
    return found


class _EngineCollector(Collector):
    def __init__(self, app: FastAPI) -> None:
        self.app = app

    def collect(self) -> Iterable[Any]:
        svc: Services | None = getattr(self.app, "services", None)
        if svc is None:
            return
        yield GaugeMetricFamily(
            "sensorbase_ingest_queue", "Write jobs waiting for a commit", svc.committer.queued
        )
        yield CounterMetricFamily("sensorbase_commits", "Group commits done", svc.committer.commits)
        yield CounterMetricFamily(
            "sensorbase_write_jobs", "Write jobs committed", svc.committer.jobs_done
        )
        yield CounterMetricFamily(
            "sensorbase_commit_gather_seconds",
            "Time groups spent gathering jobs, from their first job to their commit",
            svc.committer.gather_s,
        )
        yield CounterMetricFamily(
            "sensorbase_commit_seconds",
            "Time spent in group commits (with waits for other processes' commits)",
            svc.committer.commit_s,
        )
        yield CounterMetricFamily(
            "sensorbase_commit_reruns",
            "Group commits run again job by job because one of their writes was refused",
            svc.committer.reruns,
        )
        yield CounterMetricFamily(
            "sensorbase_commit_contended",
            "Group commits run again because they lost to another node's transaction",
            svc.committer.contended,
        )
        yield CounterMetricFamily(
            "sensorbase_points_written", "Points acknowledged", svc.ingest.points_written
        )


class _StorageCollector(Collector):
    """The store's gauges, read for each scrape (a read like any other, off the event loop)."""

    def __init__(self, gauges: dict[str, tuple[str, float]]) -> None:
        self.gauges = gauges

    def collect(self) -> Iterable[Any]:
        for name, (help_text, value) in self.gauges.items():
            yield GaugeMetricFamily(f"sensorbase_{name}", help_text, value)


class SensorbaseApp(FastAPI):
    """FastAPI, with fast lanes: a few hot routes (`POST /v1/write`) that dialects offer with
    `fast_lanes()` are answered before FastAPI's middleware and routing (see dialects/lane.py);
    middleware added with `add_middleware` does not see them."""

    fast_lanes: Lanes
    services: Services  # what every route uses (dialects.base.services)
    mqtt: mqtt.Bridge | None  # the MQTT consumer, when SENSORBASE_MQTT_URL is set

    def openapi(self) -> dict[str, Any]:
        """FastAPI's document, each operation's credentials required together: FastAPI lists a
        route's security dependencies as alternatives, where a route that has two (Datacooee's
        ORGANIZATION-ID and ORGANIZATION-API-KEY) needs both. (An empty requirement, which a
        route adds to say its credentials are optional, stays an alternative.)"""
        if self.openapi_schema is not None:
            return self.openapi_schema
        document = super().openapi()  # (kept as self.openapi_schema: changed in place)
        for operations in document.get("paths", {}).values():
            for operation in operations.values():
                required = operation.get("security")
                if required and sum(1 for r in required if r) > 1:
                    joined = {name: s for r in required for name, s in r.items()}
                    operation["security"] = [joined, *(r for r in required if not r)]
        return document

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path = scope["path"]
            root = scope.get("root_path")
            if root and path.startswith(root):  # served under a prefix (--root-path)
                path = path[len(root) :]
            found = self.fast_lanes.find(scope["method"], path)
            if found is not None:
                lane, scope["path_params"] = found
                scope["app"] = self
                await lane(scope, receive, send)  # (a lane adds the same headers itself)
                return
            await super().__call__(scope, receive, _hardened(send))
            return
        await super().__call__(scope, receive, send)


def _hardened(send: Send) -> Send:
    """`send`, with the headers every reply carries (dialects.lane.SAFETY_HEADERS) added to a
    reply that lacks them."""

    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = list(message.get("headers", ()))
            present = {name.lower() for name, _ in headers}
            headers += [(n, v) for n, v in SAFETY_HEADERS if n not in present]
            message = {**message, "headers": headers}
        await send(message)

    return sending


def build_app(services: Services, *, manage_lifecycle: bool = True) -> SensorbaseApp:
    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if manage_lifecycle:
            key = services.start()
            if key is not None:
                log.warning(
                    "First start: organisation '%s' and its admin key were created. "
                    "This key is shown once:\n\n    %s\n",
                    services.settings.bootstrap_org,
                    key.token,
                    # `sensorbase serve` prints the record carrying these as a banner.
                    extra={
                        "bootstrap_key": key.token,
                        "bootstrap_org": services.settings.bootstrap_org,
                    },
                )
            # What exists now (modules, the app, its routes) lives as long as the process:
            # kept out of the collector's sight, it is not traversed again and again by the
            # collections that a request's short-lived objects trigger (~8% of a one-point
            # write's CPU, measured with perf).
            gc.collect()
            gc.freeze()
            await services.start_background()
            if services.settings.mqtt_url:
                bridge = sensorbase_app.mqtt = mqtt.Bridge(services)
                await bridge.start()
        yield
        if manage_lifecycle:
            if sensorbase_app.mqtt is not None:
                await sensorbase_app.mqtt.stop()
            await services.stop_background()
            services.stop()

    app = sensorbase_app = SensorbaseApp(
        title="Sensorbase",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,  # served offline by api/docs.py
        redoc_url=None,
    )
    docs.install(app, "Sensorbase")
    # Every route finds the services through the app (`app.services`), none through this
    # function's closure, so that an app serves whichever services it is given.
    app.services = services
    app.mqtt = None
    app.fast_lanes = Lanes()
    for module in dialect_modules():
        app.include_router(module.router())
        if callable(getattr(module, "fast_lanes", None)):
            app.fast_lanes.update(module.fast_lanes())
    app.include_router(console.router())

    app.include_router(mqtt.router)

    # The app's own figures in a registry of its own: in the process-wide REGISTRY (which
    # keeps the process's and the login gate's) the first app built would hold them, and
    # every later one in the process (tests) would show its figures and keep it alive.
    engine = CollectorRegistry(auto_describe=False)
    engine.register(_EngineCollector(app))

    @app.get("/healthz", tags=["operations"], summary="Liveness and storage check")
    async def healthz(request: Request) -> dict[str, Any]:
        svc = request_services(request)
        await svc.healthy()
        return {"status": "ok", "version": __version__, "queued_writes": svc.committer.queued}

    @app.get(
        "/metrics",
        tags=["operations"],
        summary="Prometheus metrics",
        response_class=PlainTextResponse,  # the text exposition format, as the reply says
        responses={
            200: {"content": {"text/plain": {"schema": {"type": "string"}}}},
            401: {
                "description": "With SENSORBASE_METRICS_REQUIRE_KEY: no key",
                "content": {"application/problem+json": {"schema": PROBLEM_SCHEMA}},
            },
            403: {
                "description": "With SENSORBASE_METRICS_REQUIRE_KEY: not a server admin key",
                "content": {"application/problem+json": {"schema": PROBLEM_SCHEMA}},
            },
        },
    )
    async def metrics(request: Request) -> Response:
        svc = request_services(request)
        if svc.settings.metrics_require_key:
            # The server's own figures: a server administrator's key (Prometheus sends it with
            # `authorization: {credentials: ...}` in its scrape config).
            principal, _ = principal_of_credential(
                svc, bearer(request), lambda: client_address(request)
            )
            if not principal.server_admin:
                raise Forbidden("only a server administrator's key may read /metrics")
        gauges = await svc.storage_gauges()
        storage = CollectorRegistry(auto_describe=False)
        storage.register(_StorageCollector(gauges))
        text = generate_latest(REGISTRY) + generate_latest(engine) + generate_latest(storage)
        return Response(text, media_type=CONTENT_TYPE_LATEST)

    problems.install(app)
    return app
