"""`AsyncClient`: the asyncio client, the same as `Client` with a sender task for a thread.

async with AsyncClient(url, key=KEY, bucket="farm") as sb:
    await sb.write({"source": "ESP32-001", "field": "temperature", "value": 21.5})
    rows = await sb.query(source="ESP32-001", last="6h")
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any

import httpx

from sensorbase.client.core import Settings, bound_params, prepare, query_params, rejected
from sensorbase.client.errors import ClientError, RequestRefused, ServerError, TransportError
from sensorbase.client.points import Point
from sensorbase.client.queue import DiskBuffer, MemoryQueue, PointQueue
from sensorbase.client.records import AggregateRecord, Pages, Record
from sensorbase.client.sync import FlushTimeout
from sensorbase.client.transport import is_retryable, raise_for, write_body


class AsyncClient:
    """An asyncio Sensorbase client; see `Client` for what each method does. Create it inside
    a running event loop (its sender is a task of that loop)."""

    def __init__(
        self,
        url: str | None = None,
        key: str | None = None,
        bucket: str | None = None,
        *,
        on_error: Callable[[ClientError], None] | None = None,
        **options: Any,
    ) -> None:
        self.settings = Settings(url=url or "", key=key, bucket=bucket, **options)
        s = self.settings
        self._http = httpx.AsyncClient(base_url=s.url, headers=s.headers(), timeout=s.timeout_s)
        self._queue: PointQueue = (
            DiskBuffer(s.buffer_path) if s.buffer_path else MemoryQueue(s.max_pending)
        )
        self._on_error = on_error
        self._errors: list[ClientError] = []
        self._wake = asyncio.Event()
        self._stop = asyncio.Event()
        self._acked = asyncio.Event()
        self._flushing = False
        self._sender = asyncio.get_running_loop().create_task(self._run())
        if len(self._queue):
            self._wake.set()

    async def write(
        self,
        points: Point | Mapping[str, Any] | Iterable[Point | Mapping[str, Any]],
        bucket: str | None = None,
    ) -> None:
        items = prepare(points, bucket or self.settings.bucket)
        if isinstance(self._queue, DiskBuffer):  # an fsync: off the event loop
            await asyncio.to_thread(self._queue.append, items)
        else:
            self._queue.append(items)
        if len(self._queue) >= self.settings.batch_size:
            self._wake.set()

    async def write_now(
        self,
        points: Point | Mapping[str, Any] | Iterable[Point | Mapping[str, Any]],
        bucket: str | None = None,
        *,
        partial: bool = False,
    ) -> dict[str, Any]:
        items = prepare(points, bucket or self.settings.bucket)
        return await self._send(items, partial=partial)

    def pending(self) -> int:
        return len(self._queue)

    async def flush(self, timeout_s: float | None = None) -> None:
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        self._flushing = True
        try:
            while len(self._queue) and not self._stop.is_set() and not self._errors:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    raise FlushTimeout(f"{len(self._queue)} points still queued")
                self._acked.clear()
                self._wake.set()
                with contextlib.suppress(TimeoutError):
                    wait_s = 0.2 if left is None else min(0.2, left)
                    await asyncio.wait_for(self._acked.wait(), wait_s)
        finally:
            self._flushing = False
        if self._errors:
            first, self._errors = self._errors[0], []
            raise first

    async def close(self, timeout_s: float | None = 30.0) -> None:
        try:
            await self.flush(timeout_s)
        finally:
            self._stop.set()
            self._wake.set()
            self._sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sender
            await self._http.aclose()
            self._queue.close()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def query(
        self,
        bucket: str | None = None,
        source: str | Iterable[str] | None = None,
        field: str | Iterable[str] | None = None,
        *,
        start: datetime | str | None = None,
        end: datetime | str | None = None,
        last: str | None = None,
        mode: str | None = None,
        aggregate: str | Iterable[str] | None = None,
        every: str | None = None,
        tz: str | None = None,
        limit: int | None = None,
        order: str | None = None,
        fill: str | float | None = None,
        integral_unit: str | None = None,
        width: int | None = None,
    ) -> list[Record | AggregateRecord]:
        params = query_params(
            bucket or self.settings.bucket, source, field, start, end, last, mode, aggregate,
            every, tz, limit, order, fill=fill, integral_unit=integral_unit, width=width,
        )  # fmt: skip
        return (await self._pages(params)).records()

    async def query_frame(self, *args: Any, library: str | None = None, **kwargs: Any) -> Any:
        """`query()` as a polars or pandas DataFrame (`library`; default: the one installed),
        made from the reply's columns as they came."""
        params = bound_params(self.query, self.settings.bucket, args, kwargs)
        return (await self._pages(params)).frame(library)

    async def _pages(self, params: dict[str, str]) -> Pages:
        """Every page of `GET /v1/query`."""
        pages = Pages(params)
        next_page: dict[str, str] | None = pages.params
        while next_page is not None:
            next_page = pages.take(
                (await self._request("GET", "/v1/query", params=next_page)).json()
            )
        return pages

    async def _run(self) -> None:
        while not self._stop.is_set():
            woken = True
            try:
                await asyncio.wait_for(self._wake.wait(), self.settings.flush_interval_s)
            except TimeoutError:
                woken = False
            self._wake.clear()
            try:
                await self._drain(not woken or self._flushing)
            except ClientError as exc:
                self._report(exc)

    async def _drain(self, everything: bool) -> None:
        size = self.settings.batch_size
        while len(self._queue) >= (1 if everything else size) and not self._stop.is_set():
            batch = self._queue.peek(self.settings.batch_size)
            items = [item for _, item in batch]
            try:
                reply = await self._send(items, partial=self.settings.partial, forever=True)
            except RequestRefused as exc:
                self._report(exc)
            except ServerError as exc:
                self._report(exc)
                await asyncio.sleep(self.settings.retry.max_delay_s)
                return
            else:
                refused = rejected(reply, items)
                if refused is not None:
                    self._report(refused)
            self._queue.ack(batch[-1][0])
            self._acked.set()

    async def _send(
        self, items: list[dict[str, Any]], *, partial: bool, forever: bool = False
    ) -> Any:
        body = write_body(items, None, self.settings.gzip_min_bytes)
        params = {"partial": "true"} if partial else None
        response = await self._request(
            "POST", "/v1/write", content=body.content, headers=body.headers, params=params,
            forever=forever,
        )  # fmt: skip
        return response.json()

    async def _request(self, method: str, path: str, *, forever: bool = False, **kw: Any) -> Any:
        policy = self.settings.retry
        attempt = 0
        while True:
            try:
                try:
                    response = await self._http.request(method, path, **kw)
                except httpx.TransportError as exc:
                    raise TransportError(f"{method} {path}: {exc!r}") from exc
                raise_for(response.status_code, response.headers, response.content)
                return response
            except ClientError as exc:
                attempt += 1
                if not is_retryable(exc) or (not forever and attempt >= policy.attempts):
                    raise
                after = exc.retry_after_s if isinstance(exc, ServerError) else None
                await asyncio.sleep(policy.delay_s(min(attempt - 1, 30), after))

    def _report(self, exc: ClientError) -> None:
        if self._on_error is not None:
            self._on_error(exc)
        else:
            self._errors.append(exc)
