"""What guards one worker's connections (server/protocol.py): a bound on the requests it works
on at once, and deadlines for receiving a request.

Shedding. A worker works on at most `SENSORBASE_MAX_IN_FLIGHT` requests at once: its request
tasks (uvicorn's `tasks`), each started once the request's body has come (or 1 MiB of it, for a
body streamed to the app) and done when its work is. A request that finds the worker full when
its headers end is answered at once from the parser with 503, `Retry-After` and a problem body,
before any app code runs, and its body is read and dropped so that the client reads the reply
(a socket closed with unread bytes is reset, and the reply may be lost); one that finds it full
when its body has come is refused then. Counting a request only once its body has come matters:
counted from its headers, 64 clients sending bodies a byte every 2 s held every place of a
worker, and every other request was refused until the body deadline. Without the bound, one
worker offered three times what it serves (`benchmarks/overload.py`, 512 connections) queued
everything: accepted one-point writes waited 30-63 s at p99 from their due time, and the wait
grew with the length of the run. uvicorn's own `limit_concurrency` does not fit: it counts
open connections as well as tasks, so 512 keep-alive connections with a limit of 64 refuse
every request, idle or not; its refusal is plain text without `Retry-After`, and it closes the
connection without reading the body. `/healthz` and `/metrics` are neither refused nor counted:
a liveness probe failed under load gets a busy node restarted, and the metrics are how an
operator sees the overload.

Deadlines. A request's headers must arrive within `SENSORBASE_HEADER_TIMEOUT_S` of its first
byte, and its body within `SENSORBASE_BODY_TIMEOUT_S` of the end of its headers; past either,
the connection gets 408 (when no reply has begun) and is closed (a lingering close: see
`LINGER_S`), and an app reading the body sees a disconnect. A new connection that sends nothing
is closed quietly after the header deadline, an idle keep-alive connection after uvicorn's
`timeout_keep_alive` (`SENSORBASE_KEEP_ALIVE_TIMEOUT_S`). Time while Sensorbase itself has
stopped reading a connection (flow control, a pipelined request queued) does not count.
Deadlines are checked by one sweep over the worker's connections a few times per deadline (at
most each second), not by timers: each request only notes what its connection is receiving
and since when, where uvicorn arms a keep-alive timer per reply and cancels it on the next
request's bytes (~1.5 us a request, measured in this process with cProfile; most of what a
refusal costs is the read and the write, ~21-26 us of CPU in all). A deadline is enforced to
within its sweep interval.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Iterable, Sized
from typing import Any
from weakref import WeakKeyDictionary

import msgspec
from prometheus_client.core import REGISTRY, CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from uvicorn.protocols.http.httptools_impl import STATUS_LINE

from sensorbase.dialects.lane import SAFETY_HEADERS
from sensorbase.dialects.native.problems import problem_body
from sensorbase.errors import SensorbaseError, Unavailable
from sensorbase.settings import Settings

# What a connection is receiving, for its deadline (`receiving`, with `receiving_since`):
NOTHING = 0  # no deadline: a request received and not yet answered
WAITING = 1  # a new connection, or bytes that begin no request yet: closed quietly
HEAD = 2  # a request's headers, from its first byte: 408
BODY = 3  # a request's body, from the end of its headers: 408 if no reply has begun
IDLE = 4  # between requests, after a reply: closed quietly past the keep-alive timeout
LINGER = 5  # a 408 sent, its end marked (FIN), what still comes dropped: closed past LINGER_S

ALWAYS_ADMITTED = frozenset({"/healthz", "/metrics"})
RETRY_AFTER_S = 1
# Closing a socket with unread bytes resets the connection, and a client reading its 408 may
# lose it to the reset (a slow client is by definition still sending): after a 408 the worker
# reads and drops what comes until the client closes, or for this long.
LINGER_S = 2.0
REPORT_EVERY_S = 10.0  # at most one log line of what was refused per this
SWEEPS_PER_DEADLINE = 4

_PHASES = {WAITING: "idle", HEAD: "header", BODY: "body"}
_STATES = {
    WAITING: "waiting",
    HEAD: "headers",
    BODY: "body",
    NOTHING: "working",
    IDLE: "idle",
    LINGER: "closing",
}


class RequestTimeout(SensorbaseError):
    status = 408
    code = "request_timeout"


class Gate:
    """One worker's bound on work in flight and its watch over receive deadlines; shared by
    its connections (one per uvicorn server, `gate_of`)."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        connections: Iterable[Any],
        tasks: Sized,
        settings: Settings | None,
        keep_alive_s: float,
        logger: logging.Logger,
    ) -> None:
        # In flight: the worker's request tasks (uvicorn's set: a task leaves it when done,
        # whatever happened; a request's task starts once its body has come), but for probes.
        self.tasks = tasks
        self.probes = 0
        limit = settings.max_in_flight if settings is not None else 0
        self.max_in_flight = limit or sys.maxsize  # one comparison per request either way
        self._limit = limit
        self.header_timeout_s = settings.header_timeout_s if settings is not None else 0.0
        self.body_timeout_s = settings.body_timeout_s if settings is not None else 0.0
        self.shed = 0
        self.timed_out = dict.fromkeys(_PHASES, 0)
        self._loop = loop
        self.connections = connections
        self._logger = logger
        self._reported = (0, 0)  # shed, timed out: as last logged
        self._reported_at = loop.time()
        self._busy_replies: dict[tuple[bool, bool], bytes] = {}
        self._busy_replies_for: list[tuple[bytes, bytes]] | None = None
        self._busy_body = _problem(
            Unavailable(
                f"the server is working on all the requests it takes at once ({limit}); "
                f"retry after {RETRY_AFTER_S} s"
            )
        )
        self._late_bodies = {
            HEAD: _problem(RequestTimeout(_late("headers", self.header_timeout_s))),
            BODY: _problem(RequestTimeout(_late("body", self.body_timeout_s))),
        }
        self._limits = {
            WAITING: self.header_timeout_s,
            HEAD: self.header_timeout_s,
            BODY: self.body_timeout_s,
            IDLE: keep_alive_s,
            LINGER: LINGER_S,
        }
        deadlines = [s for s in self._limits.values() if s > 0]
        self._every_s = min(1.0, max(0.05, min(deadlines, default=1.0) / SWEEPS_PER_DEADLINE))
        if deadlines:
            loop.call_later(self._every_s, self._sweep)

    @property
    def in_flight(self) -> int:
        return len(self.tasks) - self.probes

    def full(self) -> bool:
        return len(self.tasks) - self.probes >= self.max_in_flight

    def probe_done(self, task: Any) -> None:
        self.probes -= 1

    def busy(
        self, default_headers: list[tuple[bytes, bytes]], keep_alive: bool, head: bool
    ) -> bytes:
        """The 503 reply to a request the worker has no room for. Built once per second (uvicorn
        renews `default_headers`, with the date, every second): a refusal must cost far less
        than the work it spares, or refusing does not relieve the worker."""
        self.shed += 1
        if default_headers is not self._busy_replies_for:
            self._busy_replies_for, self._busy_replies = default_headers, {}
        reply = self._busy_replies.get((keep_alive, head))
        if reply is None:
            retry = (b"retry-after", b"%d" % RETRY_AFTER_S)
            reply = _reply(503, self._busy_body, [retry], default_headers, keep_alive, head)
            self._busy_replies[(keep_alive, head)] = reply
        return reply

    def busy_headers(self) -> tuple[list[tuple[bytes, bytes]], bytes]:
        """The 503 reply's headers and body, for uvicorn's send (a pipelined request)."""
        self.shed += 1
        headers = [
            (b"content-type", b"application/problem+json"),
            (b"content-length", b"%d" % len(self._busy_body)),
            (b"retry-after", b"%d" % RETRY_AFTER_S),
            *SAFETY_HEADERS,
        ]
        return headers, self._busy_body

    def late(self, phase: int, default_headers: list[tuple[bytes, bytes]]) -> bytes:
        """The 408 reply to a request past its header (HEAD) or body (BODY) deadline."""
        return _reply(408, self._late_bodies[phase], [], default_headers, False, False)

    def _sweep(self) -> None:
        try:
            now = self._loop.time()
            for conn in list(self.connections):
                phase = getattr(conn, "receiving", NOTHING)
                if phase == NOTHING:
                    continue
                limit = self._limits[phase]
                if limit <= 0 or now - conn.receiving_since < limit:
                    continue
                if conn.flow.read_paused and phase in _PHASES:  # Sensorbase stopped reading
                    conn.receiving_since = now
                    continue
                if phase in _PHASES:
                    self.timed_out[phase] += 1
                conn.expire(phase)
            self._report(now)
        finally:
            self._loop.call_later(self._every_s, self._sweep)

    def _report(self, now: float) -> None:
        """A warning, at most every REPORT_EVERY_S, of what was refused since the last."""
        timed_out = sum(self.timed_out.values())
        shed, late = self.shed - self._reported[0], timed_out - self._reported[1]
        if (not shed and not late) or now - self._reported_at < REPORT_EVERY_S:
            return
        self._logger.warning(
            "in the last %.0f s: %d requests refused with 503 (SENSORBASE_MAX_IN_FLIGHT=%d), "
            "%d connections closed past a receive deadline (%d in total: %d idle, %d in "
            "headers, %d in a body)",
            now - self._reported_at, shed, self._limit, late, timed_out,
            self.timed_out[WAITING], self.timed_out[HEAD], self.timed_out[BODY],
        )  # fmt: skip
        self._reported, self._reported_at = (self.shed, timed_out), now


_gates: WeakKeyDictionary[Any, Gate] = WeakKeyDictionary()


def gate_of(
    server_state: Any,
    loop: asyncio.AbstractEventLoop,
    settings: Settings | None,
    keep_alive_s: float,
    logger: logging.Logger,
) -> Gate:
    """The gate of the uvicorn server whose state (connections, tasks) this is."""
    gate = _gates.get(server_state)
    if gate is None:
        gate = _gates[server_state] = Gate(
            loop, server_state.connections, server_state.tasks, settings, keep_alive_s, logger
        )
    return gate


class _GateCollector(Collector):
    """The gates' counts, read at each scrape (no lock taken per request)."""

    def collect(self) -> Iterable[Any]:
        gates = list(_gates.values())
        yield CounterMetricFamily(
            "sensorbase_http_shed",
            "Requests refused with 503: their worker had SENSORBASE_MAX_IN_FLIGHT in flight",
            sum(gate.shed for gate in gates),
        )
        timed_out = CounterMetricFamily(
            "sensorbase_http_receive_timeouts",
            "Connections closed past a receive deadline, by what they were sending",
            labels=["phase"],
        )
        for phase, name in _PHASES.items():
            timed_out.add_metric([name], sum(gate.timed_out[phase] for gate in gates))
        yield timed_out
        yield GaugeMetricFamily(
            "sensorbase_http_in_flight",
            "Requests the worker is working on (at most SENSORBASE_MAX_IN_FLIGHT)",
            sum(gate.in_flight for gate in gates),
        )
        states = dict.fromkeys(_STATES.values(), 0)
        for gate in gates:
            for conn in list(gate.connections):
                states[_STATES.get(getattr(conn, "receiving", NOTHING), "other")] += 1
        connections = GaugeMetricFamily(
            "sensorbase_http_connections",
            "Open connections, by what the worker waits for: a first request (waiting), the "
            "headers or body of one (headers, body), its own work (working), a next (idle)",
            labels=["state"],
        )
        for state, count in states.items():
            connections.add_metric([state], count)
        yield connections


REGISTRY.register(_GateCollector())


def _late(what: str, seconds: float) -> str:
    return f"the request's {what} did not arrive within {seconds:g} s"


def _problem(error: SensorbaseError) -> bytes:
    return msgspec.json.encode(problem_body(error))


def _reply(
    status: int,
    body: bytes,
    headers: list[tuple[bytes, bytes]],
    default_headers: list[tuple[bytes, bytes]],
    keep_alive: bool,
    head: bool,
) -> bytes:
    parts = [STATUS_LINE[status]]
    for name, value in default_headers:  # server, date
        parts += [name, b": ", value, b"\r\n"]
    parts += [
        b"content-type: application/problem+json\r\ncontent-length: %d\r\n" % len(body),
    ]
    for name, value in [*headers, *SAFETY_HEADERS]:
        parts += [name, b": ", value, b"\r\n"]
    if not keep_alive:
        parts.append(b"connection: close\r\n")
    parts.append(b"\r\n")
    if not head:
        parts.append(body)
    return b"".join(parts)
