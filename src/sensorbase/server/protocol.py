"""The HTTP protocol `sensorbase serve` gives uvicorn: its httptools protocol, with two changes.
It is bound to one `Wiring` (app.py) by `protocol_for`, and takes from it the fast lanes and
the services they are answered with.

Fast lanes from the parser. A request for one of the app's fast lanes (dialects/lane.py,
`POST /v1/write`, `GET /v1/query`) is answered from the parser's callbacks: its body (if
any) is gathered as it comes, then `Lane.answer` runs in a task and the reply goes out in one
write (below). uvicorn's own path builds an ASGI scope, a request-response cycle with an
asyncio.Event, receive and send coroutines that validate every header by regular expression,
and goes through the proxy-headers middleware: measured on this project's 2-core machine, a
bare ASGI app under uvicorn costs ~100 us of CPU per request where a protocol answering from
its parser costs ~22 us.
Everything else (other routes, pipelined requests while one is in flight, chunked bodies or
bodies over `LANE_BODY_BYTES`, Expect: 100-continue, upgrades, a --root-path)
takes uvicorn's path unchanged. While a lane request is in flight, a `_LaneCycle` stands in
for uvicorn's cycle, so that its keep-alive, pipelining, disconnect and shutdown handling
treat it as a request in progress.

One write per reply, sent after the loop turn: server/replies.py.

Guards (server/guard.py): at most `SENSORBASE_MAX_IN_FLIGHT` requests in flight per worker,
the rest answered 503 from `on_headers_complete` before any app code runs (or when their body
has come, `_admit`: a request's task starts only then); and deadlines for a request's headers
and body, and for idle connections, watched by the worker's `Gate`. Each connection notes what
it is receiving (`receiving`) and since when; the gate's sweep calls `expire` past a deadline.
"""

from __future__ import annotations

import asyncio
import contextvars
from typing import Any, ClassVar, cast

import httptools
from starlette.requests import ClientDisconnect
from starlette.types import Receive, Scope, Send
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware
from uvicorn.protocols.http.flow_control import HIGH_WATER_LIMIT
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle

from sensorbase.app import Wiring
from sensorbase.dialects.lane import Call, Lane, TrustedProxies
from sensorbase.server.guard import (
    ALWAYS_ADMITTED,
    BODY,
    HEAD,
    IDLE,
    LINGER,
    NOTHING,
    WAITING,
    gate_of,
)
from sensorbase.server.replies import JoinedWrites, reply_head

try:  # (built by setup.py where a C compiler is found; without it, httptools parses all)
    from sensorbase.server._request import split as split_request
except ImportError:
    split_request = None

LANE_BODY_BYTES = 1 << 20  # larger bodies are streamed through uvicorn's path (and limits)
GATHERED_BODY_BYTES = LANE_BODY_BYTES  # gathered before a request takes a place in flight
_PROBE_PREFIXES = tuple(path.encode() for path in ALWAYS_ADMITTED)
# What a connection receives between requests: a request answered (or none yet), and no part
# of the next one fed to the parser.
_BETWEEN = frozenset((IDLE, WAITING, NOTHING))


# (headers, default headers, (status, keep-alive), the head rendered): see `_answer`
_last_head: list[Any] = [None, None, None, b""]


class _NoEvent:
    def set(self) -> None:
        pass


_NO_EVENT = _NoEvent()  # (holds nothing: one for every cycle)


class _LaneCycle:
    """The part of uvicorn's RequestResponseCycle that its protocol reads and writes (for a
    lane request, and for one refused from the parser)."""

    __slots__ = (
        "disconnected",
        "keep_alive",
        "message_event",
        "response_complete",
        "response_started",
    )

    def __init__(self, keep_alive: bool) -> None:
        self.disconnected = False
        self.keep_alive = keep_alive
        self.message_event = _NO_EVENT
        self.response_complete = self.response_started = False


def protocol_for(wiring: Wiring) -> type[SensorbaseProtocol]:
    """The protocol class uvicorn is given (`http=`, a class: it makes one per connection),
    bound to `wiring`."""

    class Bound(SensorbaseProtocol):
        pass

    Bound.wiring = wiring
    return Bound


class SensorbaseProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, answering `wiring`'s fast lanes from the parser."""

    wiring: ClassVar[Wiring]  # (set by protocol_for)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        wiring = self.wiring
        self._lanes = wiring.fast_lanes
        self._services = wiring.services
        # uvicorn's trusted proxies (its app is the proxy-headers middleware, if on): a lane
        # finds the client's address as uvicorn's path does. (Their `__contains__` takes
        # `str | None`, not any object: a lane asks only about a str.)
        app = self.app
        self._proxies = (
            cast(TrustedProxies, app.trusted_hosts)
            if isinstance(app, ProxyHeadersMiddleware)
            else None
        )
        self._lane: Lane | None = None
        self._lane_query = b""
        self._lane_path = ""
        self._lane_params: dict[str, str] = {}
        self._lane_body: list[bytes] = []  # as it came (joined: one part is not copied)
        self._gate = gate_of(
            self.server_state,
            self.loop,
            wiring.services.settings,
            self.timeout_keep_alive,
            self.logger,
        )
        self.receiving = NOTHING  # what this connection is receiving, for its deadline
        self.receiving_since = 0.0
        # A request for uvicorn's path whose body is still coming: started when it has come.
        self._deferred: tuple[RequestResponseCycle, Any] | None = None
        self._discarding = False  # what comes is dropped: the connection is to close

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        joined = JoinedWrites(cast(asyncio.Transport, transport), self.loop)
        super().connection_made(joined)  # type: ignore[arg-type]
        self.receiving, self.receiving_since = WAITING, self.loop.time()

    def connection_lost(self, exc: Exception | None) -> None:
        self.receiving = NOTHING
        self._lane = self._deferred = None  # (their bodies never came whole)
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._discarding:
            return
        receiving = self.receiving
        if receiving == IDLE:
            self.receiving, self.receiving_since = WAITING, self.loop.time()
        # Between requests (the parser has no part of one), a whole plain request for a lane
        # is split in one call instead of the parser's nine callbacks (server/_request.c).
        if (
            receiving in _BETWEEN
            and split_request is not None
            and self._lanes
            and self._whole_lane_request(data)
        ):
            return
        super().data_received(data)

    def _whole_lane_request(self, data: bytes) -> bool:
        """Whether `data` was one whole plain request for a lane, now started. Anything else
        (and a request the parser's path would refuse or queue) goes to the parser."""
        split = split_request(data, LANE_BODY_BYTES)
        if split is None:
            return False
        method, url, headers, body, keep_alive = split
        raw_path, _, query = url.partition(b"?")
        path = raw_path.decode("latin-1")
        found = self._lanes.find(method.decode("latin-1"), path)
        cycle = self.cycle
        if (
            found is None
            or self.root_path
            or (cycle is not None and not cycle.response_complete)  # (pipelined)
            or self._gate.full()  # (the parser's path refuses it)
        ):
            return False
        self.url, self.headers, self.expect_100_continue = url, headers, False
        lane_cycle = _LaneCycle(keep_alive)
        self.cycle = lane_cycle  # type: ignore[assignment]
        self.receiving = NOTHING
        self._start_lane(found[0], lane_cycle, body, query, found[1], (method, path, query, "1.1"))
        return True

    def on_message_begin(self) -> None:
        """uvicorn's, but for its ASGI scope (a dict of ten entries and a copy of the app's
        state), which only a request taking uvicorn's path needs: it is built when the
        headers show that (`_begin_scope`)."""
        self.url = b""
        self.expect_100_continue = False
        self.headers = []
        self.receiving, self.receiving_since = HEAD, self.loop.time()

    def _begin_scope(self) -> None:
        """uvicorn's scope of the request whose headers have come (uvicorn's on_message_begin,
        keeping what its other callbacks have gathered since)."""
        url, headers, expect = self.url, self.headers, self.expect_100_continue
        super().on_message_begin()
        self.url, self.expect_100_continue = url, expect
        self.headers = self.scope["headers"] = headers

    def on_headers_complete(self) -> None:
        self.receiving, self.receiving_since = BODY, self.loop.time()
        if self._gate.full() and self._may_shed():
            self._shed()
        elif not self._take_lane():
            self._begin_scope()
            super().on_headers_complete()

    def _may_shed(self) -> bool:
        """Whether this request may be refused from the parser: not when it is pipelined
        behind a request in flight (its reply would overtake that one's: it is refused when it
        starts, `_admit`), nor an upgrade, nor a probe of /healthz or /metrics."""
        if self.cycle is not None and not self.cycle.response_complete:
            return False
        if self.parser.should_upgrade():
            return False
        url = self.url
        if url[:1] == b"/" and not url.startswith(_PROBE_PREFIXES):
            return True  # (the usual case, without parsing the target)
        return httptools.parse_url(url).path.decode("latin-1") not in ALWAYS_ADMITTED

    def _shed(self) -> None:
        """Answer 503 now; the body, if any, is read and dropped as it comes (`on_body`). The
        connection stays open unless the request asked to close it, or announced a body it
        has not sent yet (Expect: 100-continue): then it closes once the body is read."""
        parser = self.parser
        keep_alive = (
            not self.expect_100_continue
            and parser.get_http_version() != "1.0"
            and parser.should_keep_alive()
        )
        cycle = _LaneCycle(keep_alive)
        cycle.response_started = cycle.response_complete = True
        self.cycle = cycle  # type: ignore[assignment]
        self._refuse_now(cycle, parser.get_method(), self.url.decode("latin-1"))

    def _refuse_now(self, cycle: _LaneCycle, method: bytes, target: str) -> None:
        """Write the 503 reply to the request of `cycle`, which is then answered (a connection
        not kept alive is closed once the body is read: in `on_message_complete`)."""
        head = method == b"HEAD"
        self.transport.write(
            self._gate.busy(self.server_state.default_headers, cycle.keep_alive, head)
        )
        cycle.response_started = cycle.response_complete = True
        if self.access_log:
            self._log_access(503, method, target)
        self.on_response_complete()

    def _start_asgi_task(self, cycle: RequestResponseCycle, app: Any) -> None:
        """uvicorn's, once the request's body has come (GATHERED_BODY_BYTES of it, for a body
        streamed to the app): a client sending slowly holds no place in flight meanwhile."""
        if cycle is self.cycle and cycle.more_body and not cycle.response_complete:
            if cycle.waiting_for_100_continue:  # or the client would wait for it, and we for it
                self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
                cycle.waiting_for_100_continue = False
            self._deferred = (cycle, app)
            return
        self._admit(cycle, app)

    def _admit(self, cycle: RequestResponseCycle, app: Any) -> None:
        """Start the request's task (as uvicorn does), or one answering 503 when the worker is
        full (the request was pipelined, or its body took a while: the worker filled up
        meanwhile). A probe of /healthz or /metrics is never refused, nor counted: it neither
        waits for nor displaces the work it reports on."""
        gate = self._gate
        probe = cycle.scope["path"] in ALWAYS_ADMITTED
        if not probe and gate.full():
            app = self._refuse
        context = contextvars.Context() if self.config.reset_contextvars else None
        task = self.loop.create_task(cycle.run_asgi(app), context=context)
        task.add_done_callback(self.tasks.discard)
        self.tasks.add(task)
        if probe:
            gate.probes += 1
            task.add_done_callback(gate.probe_done)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        """An ASGI app answering 503, after reading the body."""
        while (await receive()).get("more_body"):
            pass
        headers, body = self._gate.busy_headers()
        await send({"type": "http.response.start", "status": 503, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    def expire(self, phase: int) -> None:
        """Called by the gate when what this connection is receiving (`phase`) is late."""
        self.receiving = NOTHING
        cycle = self.cycle
        if phase in (WAITING, IDLE, LINGER):  # no request begun, or a 408 sent: nothing to say
            self.transport.close()
            return
        self._discarding = True  # the rest of the late request is read and dropped
        if phase == HEAD and cycle is not None and not cycle.response_complete:
            # The request before this one is still being answered: its reply goes out
            # whole, and then the connection closes.
            cycle.keep_alive = False
            return
        replied = phase == BODY and cycle is not None and cycle.response_started
        if not replied:
            self.transport.write(self._gate.late(phase, self.server_state.default_headers))
        if phase == BODY and cycle is not None and not cycle.response_complete:
            cycle.disconnected = True  # an app waiting for the body sees a disconnect
            cycle.message_event.set()
        self._deferred = None  # (never started)
        # Closed once the client has read the reply and closed too (eof_received), or after
        # LINGER_S; meanwhile what it sends is dropped, so that no reset destroys the reply.
        if not self.transport.can_write_eof():  # (TLS): no half-close, then
            self.transport.close()
            return
        self.receiving, self.receiving_since = LINGER, self.loop.time()
        self.flow.resume_reading()
        self.transport.write_eof()

    def _take_lane(self) -> bool:
        """Whether this request goes to a lane (set up for it if so)."""
        if not self._lanes or self.root_path or self.expect_100_continue:
            return False
        if self.cycle is not None and not self.cycle.response_complete:
            return False  # pipelined behind a request in flight: uvicorn queues it
        parser = self.parser
        url = self.url
        if url[:1] == b"/" and b"#" not in url:  # origin-form, as clients send: split by hand
            raw_path, _, query = url.partition(b"?")
        else:
            parsed = httptools.parse_url(url)
            raw_path, query = parsed.path, parsed.query or b""
        path = raw_path.decode("latin-1")
        found = self._lanes.find(parser.get_method().decode("latin-1"), path)
        if found is None or parser.should_upgrade():
            return False
        lane, self._lane_params = found
        length = None
        for name, value in self.headers:
            if name == b"content-length":
                length = value
            elif name == b"transfer-encoding":
                return False
        # No Content-Length and no Transfer-Encoding: no body (RFC 9112 6.3), as a GET has.
        if length is not None and (not length.isdigit() or int(length) > LANE_BODY_BYTES):
            return False
        keep_alive = parser.get_http_version() != "1.0" and parser.should_keep_alive()
        self.cycle = _LaneCycle(keep_alive)  # type: ignore[assignment]
        self._lane, self._lane_query, self._lane_path = lane, query, path
        self._lane_body.clear()  # (what a refused request's body left)
        return True

    def on_body(self, body: bytes) -> None:
        if self._lane is not None:
            self._lane_body.append(body)  # at most LANE_BODY_BYTES: no flow control needed
            return
        super().on_body(body)
        deferred = self._deferred
        if deferred is not None:
            gathered = len(deferred[0].body)
            if gathered >= GATHERED_BODY_BYTES:
                self._deferred = None
                self._admit(*deferred)  # the app reads the rest (and resumes reading)
            elif gathered > HIGH_WATER_LIMIT:
                self.flow.resume_reading()  # uvicorn paused it for an app that is not there

    def on_message_complete(self) -> None:
        self.receiving = NOTHING
        lane = self._lane
        if lane is None:
            super().on_message_complete()
            if self._deferred is not None:
                deferred, self._deferred = self._deferred, None
                self._admit(*deferred)
            answered = self.cycle
            if answered is not None and answered.response_complete:
                # Answered before its body came whole (refused, or by the app), which has now
                # been read: the connection may close without a reset, or wait for the next.
                if not answered.keep_alive:
                    self.transport.close()
                elif not self.pipeline:
                    self.receiving, self.receiving_since = IDLE, self.loop.time()
            return
        cycle = cast(_LaneCycle, self.cycle)
        if self._gate.full():  # filled up while the body came
            self._lane = None
            self._refuse_now(cycle, self.parser.get_method(), self.url.decode("latin-1"))
            if not cycle.keep_alive:
                self.transport.close()
            return
        body = b"".join(self._lane_body)
        self._lane_body.clear()
        self._lane = None
        query = self._lane_query
        request = (self.parser.get_method(), self._lane_path, query, None)
        self._start_lane(lane, cycle, body, query, self._lane_params, request)

    def _start_lane(
        self,
        lane: Lane,
        cycle: _LaneCycle,
        body: bytes,
        query: bytes,
        params: dict[str, str],
        request: tuple[bytes, str, bytes, str | None],
    ) -> None:
        """Answer the lane request whose body has come, in a task. (`request`: its method,
        path, query and HTTP version, for the access log; None: the parser's.)"""
        call = Call(
            self.headers,
            query,
            self._services,
            body=body,
            client=self.client,
            proxies=self._proxies,
            path_params=params,
        )
        task = self.loop.create_task(self._answer(lane, call, cycle, request))
        task.add_done_callback(self.tasks.discard)
        self.tasks.add(task)  # a graceful shutdown waits for it; counted in flight

    def on_response_complete(self) -> None:
        """uvicorn's, without its keep-alive timer: the connection, now idle unless the next
        request has begun, is closed by the gate's sweep past the keep-alive timeout."""
        self.server_state.total_requests += 1
        if self.transport.is_closing():
            return
        if self.flow.read_paused:  # (as resume_reading asks, without its call a reply)
            self.flow.resume_reading()
        if self.pipeline:
            cycle, app = self.pipeline.pop()
            self._start_asgi_task(cycle, app)
        elif self.receiving == NOTHING:
            self.receiving, self.receiving_since = IDLE, self.loop.time()

    async def _answer(
        self,
        lane: Lane,
        call: Call,
        cycle: _LaneCycle,
        request: tuple[bytes, str, bytes, str | None],
    ) -> None:
        try:  # (`Lane.answer`'s two steps, without its coroutine)
            try:
                reply = await lane.endpoint(call)
            except ClientDisconnect:
                raise
            except Exception as exc:
                reply = lane.refusal(exc)
            status, headers, body = lane.reply(call, reply)
        except BaseException:  # (the lane renders its own errors: this is a bug or a cancel)
            self.logger.exception("a fast lane failed")
            self.transport.close()
            raise
        if cycle.disconnected:
            return
        # The head of the last reply is kept with what it was made of (held, so compared by
        # identity): a device's replies repeat one head (plain headers are shared lists,
        # uvicorn's default headers one list per tick of its clock).
        defaults, keep_alive = self.server_state.default_headers, cycle.keep_alive
        last = _last_head
        if last[0] is headers and last[1] is defaults and last[2] == (status, keep_alive):
            head = last[3]
        else:
            head = reply_head(status, defaults, headers, keep_alive)
            _last_head[:] = (headers, defaults, (status, keep_alive), head)
        self.transport.write(head + body)
        cycle.response_started = cycle.response_complete = True
        if self.access_log:
            method, path, query, version = request
            target = f"{path}?{query.decode('latin-1')}" if query else path
            self._log_access(status, method, target, version)
        if not cycle.keep_alive:
            self.transport.close()
        self.on_response_complete()

    def _log_access(
        self, status: int, method: bytes, target: str, version: str | None = None
    ) -> None:
        client = f"{self.client[0]}:{self.client[1]}" if self.client else ""
        if version is None:
            version = self.parser.get_http_version() if self.parser is not None else "1.1"
        self.access_logger.info(
            '%s - "%s %s HTTP/%s" %d', client, method.decode("latin-1"),
            target.replace('"', "%22"), version, status,
        )  # fmt: skip
