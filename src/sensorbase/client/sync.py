"""`Client`: the blocking client, with a background thread that sends what `write()` queued.

    with Client("http://gateway-host:8000", key=KEY, bucket="farm", buffer_path="sb.sqlite") as sb:
        sb.write({"source": "ESP32-001", "field": "temperature", "value": 21.5})
        rows = sb.query(source="ESP32-001", last="6h")

`write()` only queues (in memory, or committed to `buffer_path`); the sender sends a batch when
`batch_size` points wait or every `flush_interval_s`, retrying until the server takes it. A
point leaves the queue only once the server acknowledged it. `flush()` waits for the queue to
empty and raises what the server refused since the last call.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any

import httpx

from sensorbase.client.core import Settings, bound_params, prepare, query_params, rejected
from sensorbase.client.errors import (
    ClientError,
    RequestRefused,
    ServerError,
    TransportError,
)
from sensorbase.client.points import Point
from sensorbase.client.queue import DiskBuffer, MemoryQueue, PointQueue
from sensorbase.client.records import AggregateRecord, Pages, Record
from sensorbase.client.transport import is_retryable, raise_for, write_body


class FlushTimeout(ClientError):
    """`flush(timeout_s)` ran out of time with points still queued (they stay queued)."""


class Client:
    """A blocking Sensorbase client. Keywords: see `sensorbase.client.core.Settings`;
    `on_error(exc)` receives what the sender could not deliver (default: kept and raised by
    the next `flush()` or `close()`)."""

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
        self._http = httpx.Client(base_url=s.url, headers=s.headers(), timeout=s.timeout_s)
        self._queue: PointQueue = (
            DiskBuffer(s.buffer_path) if s.buffer_path else MemoryQueue(s.max_pending)
        )
        self._on_error = on_error
        self._errors: list[ClientError] = []
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._flushing = threading.Event()
        self._changed = threading.Condition()
        self._sender = threading.Thread(target=self._run, name="sensorbase-sender", daemon=True)
        self._sender.start()
        if len(
            self._queue
        ):  # a buffer left by an earlier run: full batches now, the rest at the tick
            self._wake.set()

    # -- writing -------------------------------------------------------------------------

    def write(
        self,
        points: Point | Mapping[str, Any] | Iterable[Point | Mapping[str, Any]],
        bucket: str | None = None,
    ) -> None:
        """Queue `points` (one or many) for the sender; returns once they are queued (with a
        buffer: committed to its file)."""
        items = prepare(points, bucket or self.settings.bucket)
        self._queue.append(items)
        if len(self._queue) >= self.settings.batch_size:
            self._wake.set()

    def write_now(
        self,
        points: Point | Mapping[str, Any] | Iterable[Point | Mapping[str, Any]],
        bucket: str | None = None,
        *,
        partial: bool = False,
    ) -> dict[str, Any]:
        """Send `points` in one request now, bypassing the queue, retried like a batch; returns
        the server's reply (`written`, `series`, with `partial` `rejected`). Atomic unless
        `partial`: a refusal raises `RequestRefused` listing every bad point."""
        items = prepare(points, bucket or self.settings.bucket)
        return self._send(items, partial=partial)

    def pending(self) -> int:
        """Points queued and not yet acknowledged by the server."""
        return len(self._queue)

    def flush(self, timeout_s: float | None = None) -> None:
        """Wait until every queued point is acknowledged, then raise the first error the sender
        met since the last call (`PointsRejected` lists every refused point)."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        self._flushing.set()
        self._wake.set()
        try:
            with self._changed:
                while len(self._queue) and not self._stop.is_set() and not self._errors:
                    left = None if deadline is None else deadline - time.monotonic()
                    if left is not None and left <= 0:
                        raise FlushTimeout(f"{len(self._queue)} points still queued")
                    self._changed.wait(0.2 if left is None else min(0.2, left))
                    self._wake.set()
        finally:
            self._flushing.clear()
        self._raise_errors()

    def close(self, timeout_s: float | None = 30.0) -> None:
        """Flush (at most `timeout_s`), then stop the sender. Points still queued stay in the
        buffer file for the next run; without one they are lost and `FlushTimeout` says so."""
        try:
            self.flush(timeout_s)
        finally:
            self._stop.set()
            self._wake.set()
            self._sender.join(timeout=10)
            self._http.close()
            self._queue.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- reading -------------------------------------------------------------------------

    def query(
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
        """`GET /v1/query`, every page of it; names as in docs/native-api.md."""
        params = query_params(
            bucket or self.settings.bucket, source, field, start, end, last, mode, aggregate,
            every, tz, limit, order, fill=fill, integral_unit=integral_unit, width=width,
        )  # fmt: skip
        return self._pages(params).records()

    def query_frame(self, *args: Any, library: str | None = None, **kwargs: Any) -> Any:
        """`query()` as a polars or pandas DataFrame (`library`; default: the one installed),
        made from the reply's columns as they came."""
        params = bound_params(self.query, self.settings.bucket, args, kwargs)
        return self._pages(params).frame(library)

    def _pages(self, params: dict[str, str]) -> Pages:
        """Every page of `GET /v1/query`."""
        pages = Pages(params)
        next_page: dict[str, str] | None = pages.params
        while next_page is not None:
            next_page = pages.take((self._request("GET", "/v1/query", params=next_page)).json())
        return pages

    # -- the sender ----------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            # Woken by a full batch, only full batches leave; by the timer or flush(), all.
            woken = self._wake.wait(self.settings.flush_interval_s)
            self._wake.clear()
            everything = not woken or self._flushing.is_set()
            try:
                self._drain(everything)
            except Exception as exc:  # the sender must outlive any one failure
                self._report(exc if isinstance(exc, ClientError) else ClientError(repr(exc)))

    def _drain(self, everything: bool) -> None:
        size = self.settings.batch_size
        while len(self._queue) >= (1 if everything else size) and not self._stop.is_set():
            batch = self._queue.peek(self.settings.batch_size)
            items = [item for _, item in batch]
            try:
                reply = self._send(items, partial=self.settings.partial, forever=True)
            except RequestRefused as exc:  # never taken as it is: report and drop
                self._report(exc)
            except ServerError as exc:  # 401, 403, 404: keep the points until it is fixed
                self._report(exc)
                self._stop.wait(self.settings.retry.max_delay_s)
                return
            else:
                refused = rejected(reply, items)
                if refused is not None:
                    self._report(refused)
            self._queue.ack(batch[-1][0])
            with self._changed:
                self._changed.notify_all()

    def _send(self, items: list[dict[str, Any]], *, partial: bool, forever: bool = False) -> Any:
        body = write_body(items, None, self.settings.gzip_min_bytes)
        params = {"partial": "true"} if partial else None
        response = self._request(
            "POST", "/v1/write", content=body.content, headers=body.headers, params=params,
            forever=forever,
        )  # fmt: skip
        return response.json()

    def _request(self, method: str, path: str, *, forever: bool = False, **kw: Any) -> Any:
        """One request, retried after a 429/502/503/504 or a failed connection: at most
        `retry.attempts` tries, or until it succeeds or the client closes (`forever`)."""
        policy = self.settings.retry
        attempt = 0
        while True:
            try:
                try:
                    response = self._http.request(method, path, **kw)
                except httpx.TransportError as exc:
                    raise TransportError(f"{method} {path}: {exc!r}") from exc
                raise_for(response.status_code, response.headers, response.content)
                return response
            except ClientError as exc:
                attempt += 1
                if not is_retryable(exc) or (not forever and attempt >= policy.attempts):
                    raise
                after = exc.retry_after_s if isinstance(exc, ServerError) else None
                if self._stop.wait(policy.delay_s(min(attempt - 1, 30), after)):
                    raise

    def _report(self, exc: ClientError) -> None:
        if self._on_error is not None:
            self._on_error(exc)
        else:
            self._errors.append(exc)

    def _raise_errors(self) -> None:
        if self._errors:
            first, self._errors = self._errors[0], []
            raise first
