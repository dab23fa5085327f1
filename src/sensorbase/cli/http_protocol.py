"""The HTTP protocol `sensorbase serve` gives uvicorn: its httptools protocol, with two changes.

Fast lanes from the parser. A request for one of the app's fast lanes (dialects/lane.py,
`POST /v1/write`) is answered from the parser's callbacks: its body is gathered as it comes,
then `Lane.answer` runs in a task and the reply goes out in one write (below). uvicorn's own path
builds an ASGI scope, a request-response cycle with an asyncio.Event, receive and send
coroutines that validate every header by regular expression, and goes through the proxy-
headers middleware: measured on this project's 2-core machine, a bare ASGI app under uvicorn
costs ~100 us of CPU per request where a protocol answering from its parser costs ~22 us.
Everything else (other routes, pipelined requests while one is in flight, bodies without a
Content-Length or over `LANE_BODY_BYTES`, Expect: 100-continue, upgrades, a --root-path)
takes uvicorn's path unchanged. While a lane request is in flight, a `_LaneCycle` stands in
for uvicorn's cycle, so that its keep-alive, pipelining, disconnect and shutdown handling
treat it as a request in progress.

One write per reply, sent after the loop turn. uvicorn writes each reply to the socket twice:
the status line and headers when the app sends `http.response.start`, the body when it sends
`http.response.body`. On loopback and on a LAN a socket write is most of a small reply's cost
(the kernel runs the whole TCP send, and wakes the client twice, once per segment). Here the
writes made during one turn of the event loop are joined and sent at the start of the next
turn, in one write: measured with the benchmark's one-point writes (`wrk -c32`), ~13 us less
system CPU per request (~7% of a request's CPU). Sending after the turn also matters: the
replies of one group commit then leave back to back, and a client waiting on several
connections is woken once for all of them. Sending each lane reply at once instead cost ~40 us
per send on this machine (one worker, `wrk -c16`: 260 against 205 us of CPU per request).
"""

from __future__ import annotations

import asyncio
from typing import Any, cast

import httptools
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from sensorbase.dialects.lane import Call, Lane

LANE_BODY_BYTES = 1 << 20  # larger bodies are streamed through uvicorn's path (and limits)


class JoinedWrites:
    """A transport whose writes within one loop turn go out as one write."""

    __slots__ = ("_loop", "_parts", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._parts: list[bytes] = []

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not self._parts:
            self._loop.call_soon(self.flush)
        self._parts.append(bytes(data))

    def writelines(self, chunks: Any) -> None:
        for chunk in chunks:
            self.write(chunk)

    def flush(self) -> None:
        if not self._parts:
            return
        parts, self._parts = self._parts, []
        if not self._transport.is_closing():
            self._transport.write(parts[0] if len(parts) == 1 else b"".join(parts))

    def is_closing(self) -> bool:  # asked after every reply: not through __getattr__
        return self._transport.is_closing()

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size() + sum(map(len, self._parts))

    def close(self) -> None:
        self.flush()  # what was written before close() is sent, as a transport promises
        self._transport.close()

    def write_eof(self) -> None:
        self.flush()
        self._transport.write_eof()

    def abort(self) -> None:
        self._parts = []
        self._transport.abort()

    def __getattr__(self, name: str) -> Any:  # is_closing, get_extra_info, pause_reading...
        return getattr(self._transport, name)


class _NoEvent:
    def set(self) -> None:
        pass


class _LaneCycle:
    """The part of uvicorn's RequestResponseCycle that its protocol reads and writes."""

    __slots__ = ("body", "disconnected", "keep_alive", "message_event", "response_complete")

    def __init__(self, keep_alive: bool) -> None:
        self.body = bytearray()
        self.disconnected = False
        self.keep_alive = keep_alive
        self.message_event = _NoEvent()
        self.response_complete = False


class SensorbaseProtocol(HttpToolsProtocol):
    """The protocol `sensorbase serve` gives uvicorn (`http=`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        app = self.app
        while not hasattr(app, "fast_lanes") and hasattr(app, "app"):  # under middleware
            app = app.app
        self._lanes: dict[tuple[str, str], Lane] = getattr(app, "fast_lanes", {})
        self._services: Any = getattr(app, "services", None)
        self._lane: Lane | None = None
        self._lane_query = b""
        self._lane_path = ""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        joined = JoinedWrites(cast(asyncio.Transport, transport), self.loop)
        super().connection_made(joined)  # type: ignore[arg-type]

    def on_headers_complete(self) -> None:
        if not self._take_lane():
            super().on_headers_complete()

    def _take_lane(self) -> bool:
        """Whether this request goes to a lane (set up for it if so)."""
        if not self._lanes or self.root_path or self.expect_100_continue:
            return False
        if self.cycle is not None and not self.cycle.response_complete:
            return False  # pipelined behind a request in flight: uvicorn queues it
        parser = self.parser
        parsed = httptools.parse_url(self.url)
        path = parsed.path.decode("latin-1")
        lane = self._lanes.get((parser.get_method().decode("latin-1"), path))
        if lane is None or parser.should_upgrade():
            return False
        length = None
        for name, value in self.headers:
            if name == b"content-length":
                length = value
            elif name == b"transfer-encoding":
                return False
        if length is None or not length.isdigit() or int(length) > LANE_BODY_BYTES:
            return False
        keep_alive = parser.get_http_version() != "1.0" and parser.should_keep_alive()
        self.cycle = _LaneCycle(keep_alive)  # type: ignore[assignment]
        self._lane, self._lane_query, self._lane_path = lane, parsed.query or b"", path
        return True

    def on_body(self, body: bytes) -> None:
        if self._lane is None:
            super().on_body(body)
        else:
            self.cycle.body += body  # at most LANE_BODY_BYTES: no flow control needed

    def on_message_complete(self) -> None:
        lane = self._lane
        if lane is None:
            super().on_message_complete()
            return
        self._lane = None
        cycle = cast(_LaneCycle, self.cycle)
        call = Call(
            self.headers,
            self._lane_query,
            self._services,
            body=bytes(cycle.body),
            client=self.client,
            # uvicorn's trusted proxies (its app is the proxy-headers middleware, if on): the
            # lane finds the client's address as uvicorn's path does.
            proxies=getattr(self.app, "trusted_hosts", None),
        )
        request = (self.parser.get_method(), self._lane_path, self._lane_query)
        task = self.loop.create_task(self._answer(lane, call, cycle, request))
        task.add_done_callback(self.tasks.discard)
        self.tasks.add(task)  # a graceful shutdown waits for it

    async def _answer(
        self, lane: Lane, call: Call, cycle: _LaneCycle, request: tuple[bytes, str, bytes]
    ) -> None:
        try:
            status, headers, body = await lane.answer(call)
        except BaseException:  # (the lane renders its own errors: this is a bug or a cancel)
            self.logger.exception("a fast lane failed")
            self.transport.close()
            raise
        if cycle.disconnected:
            return
        parts = [STATUS_LINE[status]]
        for name, value in self.server_state.default_headers:  # server, date
            parts += [name, b": ", value, b"\r\n"]
        for name, value in headers:
            parts += [name, b": ", value, b"\r\n"]
        if not cycle.keep_alive:
            parts.append(b"connection: close\r\n")
        parts += [b"\r\n", body]
        self.transport.write(b"".join(parts))
        cycle.response_complete = True
        if self.access_log:
            method, path, query = request
            target = f"{path}?{query.decode('latin-1')}" if query else path
            client = f"{self.client[0]}:{self.client[1]}" if self.client else ""
            self.access_logger.info(
                '%s - "%s %s HTTP/%s" %d', client, method.decode("latin-1"),
                target.replace('"', "%22"), self.parser.get_http_version(), status,
            )  # fmt: skip
        if not cycle.keep_alive:
            self.transport.close()
        self.on_response_complete()
