"""The deliverer: sends the outbox's due deliveries (storage: webhook_deliveries), records each
outcome, and retries failures with exponential backoff and jitter until `webhook_retry_for_s`
has passed since the delivery was made.

Deliveries are claimed in a transaction (on PostgreSQL with SKIP LOCKED, so that nodes sharing
the database never send one twice at once) with a lease: a node that dies between the claim
and recording the outcome leaves them due again when the lease ends, and another node, or this
one restarted, sends them. So a delivery may arrive twice (at least once), never zero times;
receivers drop duplicates by its id."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time

import httpx
from starlette.concurrency import run_in_threadpool

from sensorbase.alerts import signing
from sensorbase.alerts.urls import url_problem
from sensorbase.settings import Settings
from sensorbase.storage.alerts_queries import DeliveryRow
from sensorbase.storage.base import Store, WriteTx
from sensorbase.storage.write_queue import Committer
from sensorbase.times import now_us

# Jitter apart from the random module's shared state (an embedding application may seed it).
_jitter = random.Random()

log = logging.getLogger(__name__)
BATCH = 64  # deliveries claimed at once (sent concurrently)
US = 1_000_000
MAX_ERROR_CHARS = 500

Outcome = tuple[DeliveryRow, int | None, str | None]  # the delivery, HTTP status, error


class Deliverer:
    def __init__(self, store: Store, committer: Committer, settings: Settings) -> None:
        self.store = store
        self.committer = committer
        self.settings = settings
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._client: httpx.AsyncClient | None = None
        self._event_loop: asyncio.AbstractEventLoop | None = None
        self.sent = 0
        self.failed_attempts = 0

    @property
    def lease_us(self) -> int:
        return int((2 * self.settings.webhook_timeout_s + 1) * US)

    def start(self) -> None:
        self._event_loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self._client = httpx.AsyncClient(
            timeout=self.settings.webhook_timeout_s, follow_redirects=False
        )
        self._task = asyncio.create_task(self._loop(), name="sensorbase-webhooks")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def wake(self) -> None:
        """New deliveries were committed: look at once."""
        self._wake.set()

    def wake_after_commit(self) -> None:
        """From inside the transaction that makes deliveries, on whichever thread runs it: look
        at once. The look's claim is a later job of the same write queue, so it runs after
        this transaction has committed and finds them (a job run twice pokes twice: harmless)."""
        loop = self._event_loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._wake.set)

    async def _loop(self) -> None:
        while True:
            try:
                if await self.send_due():
                    continue
                due = await run_in_threadpool(lambda: self.store.reader().next_delivery_us())
            except asyncio.CancelledError:
                raise
            except Exception:  # the store is away: try again later, never stop delivering
                log.exception("webhook deliveries: a round failed")
                due = None
            wait = self.settings.alerts_check_s
            if due is not None:
                wait = min(wait, max(0.0, (due - now_us()) / US))
            if wait > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), wait)
            self._wake.clear()

    async def send_due(self) -> int:
        """Claim and send what is due; the number claimed."""
        claimed = await self.committer.run(
            lambda tx: tx.claim_deliveries(now_us(), self.lease_us, BATCH)
        )
        if not claimed:
            return 0
        outcomes = await asyncio.gather(*(self._send(d) for d in claimed))
        await self.committer.run(lambda tx: self._record(tx, outcomes))
        return len(claimed)

    async def _send(self, delivery: DeliveryRow) -> Outcome:
        problem = url_problem(delivery.url, allow_private=self.settings.webhook_allow_private)
        if problem is not None:
            return delivery, None, f"URL refused: {problem}"
        body = delivery.body.encode()
        timestamp = int(time.time())
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "Sensorbase-Webhooks",
            signing.DELIVERY_HEADER: delivery.id,
            signing.EVENT_HEADER: delivery.event,
            signing.TIMESTAMP_HEADER: str(timestamp),
            signing.SIGNATURE_HEADER: signing.signature(delivery.secret, timestamp, body),
        }
        assert self._client is not None
        try:
            reply = await self._client.post(delivery.url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            return delivery, None, f"{type(exc).__name__}: {exc}"[:MAX_ERROR_CHARS]
        if 200 <= reply.status_code < 300:
            return delivery, reply.status_code, None
        return delivery, reply.status_code, f"HTTP {reply.status_code}"

    def _record(self, tx: WriteTx, outcomes: list[Outcome]) -> None:
        now = now_us()
        for delivery, status, error in outcomes:
            if error is None:
                self.sent += 1
                tx.finish_delivery(
                    delivery.id,
                    status="delivered",
                    next_us=now,
                    http_status=status,
                    error=None,
                    done_us=now,
                )
                continue
            self.failed_attempts += 1
            retry_at = now + self.backoff_us(delivery.attempts)
            expired = retry_at - delivery.created_us > self.settings.webhook_retry_for_s * US
            tx.finish_delivery(
                delivery.id,
                status="failed" if expired else "pending",
                next_us=retry_at,
                http_status=status,
                error=error,
                done_us=now if expired else None,
            )

    def backoff_us(self, attempts: int) -> int:
        """The wait after the `attempts`-th failed attempt: doubling, capped, +-50% jitter (so
        that deliveries failed together do not retry together)."""
        base = self.settings.webhook_retry_base_s * 2 ** min(max(attempts - 1, 0), 40)
        delay = min(base, self.settings.webhook_retry_max_s) * _jitter.uniform(0.5, 1.5)
        return int(delay * US)
