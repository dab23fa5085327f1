"""The running engine: one store and its write queue, and over them the three services every
front end uses (the catalog, the one write path, the one read path) and auth. Built once by
`app.py`; dialects take the services as FastAPI dependencies (`dialects.base.catalog_of`,
`ingest_of`, `query_of`)."""

from __future__ import annotations

import secrets
from typing import TypeVar

from starlette.concurrency import run_in_threadpool

from sensorbase.alerts.admin import Alerts
from sensorbase.alerts.engine import Engine
from sensorbase.auth.failures import Failures
from sensorbase.auth.keys import (
    KeyRing,
    NewKey,
    create_server_admin_key,
)
from sensorbase.auth.ratelimit import RateLimiter
from sensorbase.auth.tokens import Tokens
from sensorbase.auth.users import Passwords
from sensorbase.catalog import Catalog
from sensorbase.catalog.retention import Retention
from sensorbase.catalog.work import Work
from sensorbase.ingest.pipeline import Ingest
from sensorbase.query.service import QueryService
from sensorbase.settings import Settings
from sensorbase.storage.base import Store, WriteTx
from sensorbase.storage.write_queue import Committer

T = TypeVar("T")


class Services:
    def __init__(self, settings: Settings, store: Store) -> None:
        self.settings = settings
        self.store = store
        self.committer = Committer(
            store, queue_size=settings.ingest_queue_size, max_points=settings.commit_max_points
        )
        self.ingest = Ingest(self.committer, settings)
        self.keys = KeyRing(store.reader, settings.key_cache_s)
        self.rate = RateLimiter(settings.rate_limit)
        self.failures = Failures(wrong_keys=settings.wrong_keys_per_address)  # auth/failures.py
        self.query = QueryService(
            store.reader,
            settings.max_result_points,
            settings.default_query_limit,
            settings.max_scan_points,
            reads_on_loop=store.reads_on_loop,
        )
        work = Work(store, self.committer)
        work.on_delete(self.ingest.forget)
        self.catalog = Catalog(work, self.keys, Passwords(settings.password_hash_profile))
        self.retention = Retention(
            store,
            self.committer,
            settings.retention_every_s,
            settings.retention_batch_chunks,
            settings.alert_history_days,
        )
        # Alerts and webhooks (docs/alerts.md): told of every write by the write path.
        self.alert_engine = Engine(store, self.committer, settings)
        self.ingest.listener = self.alert_engine
        self.alerts = Alerts(self.alert_engine)
        work.on_bucket_change(self.alert_engine.bucket_changed)
        self.tokens: Tokens  # set by start(): the signing secret lives in the database

    def start(self) -> NewKey | None:
        """Open storage and the committer; on first start create the bootstrap organisation
        and its admin key, whose token is returned (to be shown once)."""
        self.store.open()
        self.committer.start()
        signing = self.committer.run_sync(
            lambda tx: tx.put_setting("token_signing_secret", secrets.token_urlsafe(48))
        )
        self.tokens = Tokens(
            self.keys,
            self.committer,
            signing,
            self.settings.access_token_ttl_s,
            self.settings.refresh_token_ttl_s,
            users=self.store.reader,
            failures=self.failures,
        )
        return self.committer.run_sync(self._bootstrap)

    def _bootstrap(self, tx: WriteTx) -> NewKey | None:
        # The first node to write the marker bootstraps; every later start (or node) does not.
        marker = secrets.token_hex(8)
        if tx.put_setting("bootstrapped", marker) != marker:
            return None
        org = tx.create_org(self.settings.bootstrap_org, self.settings.bootstrap_org)
        return create_server_admin_key(tx, org.id, "bootstrap admin")

    async def start_background(self) -> None:
        """What runs beside the requests, on the serving event loop: alert evaluation,
        webhook delivery and the retention job (docs/lifecycle.md)."""
        await self.alert_engine.start()
        self.retention.start()

    async def stop_background(self) -> None:
        await self.retention.stop()
        await self.alert_engine.stop()

    def stop(self) -> None:
        self.committer.stop()
        self.store.close()

    async def healthy(self) -> None:
        """A read through the store (raises if it cannot answer): what /healthz asks."""
        await run_in_threadpool(lambda: self.store.reader().get_setting("bootstrapped"))

    async def storage_gauges(self) -> dict[str, tuple[str, float]]:
        """The store's own state for /metrics."""
        return await run_in_threadpool(lambda: self.store.reader().storage_gauges())
