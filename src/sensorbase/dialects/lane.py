"""Fast lanes: a few hot routes (`POST /v1/write`) answered straight off the ASGI scope.

The app calls a lane before FastAPI's middleware, routing and dependency machinery, and the
lane reads its request without Starlette's Request (which builds multi-dicts for headers and
query parameters) and sends its reply without a Response object. Each of these costs little,
but together they were more than half of a one-point write's own CPU. A lane answers exactly
as its dialect's route does: same errors in the dialect's shape, same Retry-After and
X-RateLimit-* headers, same request counter. The route stays declared in its router for
OpenAPI and answers the same when reached through FastAPI (e.g. under a root path).

A dialect offers its lanes with `fast_lanes() -> {(method, path): lane}`.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from urllib.parse import parse_qsl

from fastapi import Request, Response
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Receive, Scope, Send

from sensorbase.auth.keys import Principal
from sensorbase.auth.ratelimit import RateState
from sensorbase.dialects.base import (
    ErrorRenderer,
    bearer_token,
    body_of,
    count,
    error_response,
    principal_of_credential,
    services,
)
from sensorbase.errors import SensorbaseError
from sensorbase.services import Services

log = logging.getLogger(__name__)

_JSON = (b"content-type", b"application/json")


class Call:
    """What a lane's endpoint reads of its request."""

    __slots__ = ("_headers", "params", "rate", "receive", "services")

    def __init__(self, scope: Scope, receive: Receive, services: Services) -> None:
        self.receive = receive
        self.services = services
        # ASGI header names are lower-case bytes; the first of a repeated name wins, as in
        # Starlette's Headers.
        self._headers: dict[bytes, bytes] = dict(reversed(scope["headers"]))
        self.params = query_params(scope["query_string"])
        self.rate: RateState | None = None

    @classmethod
    def of(cls, request: Request) -> Call:
        return cls(request.scope, request.receive, services(request))

    def header(self, name: bytes) -> str | None:
        value = self._headers.get(name)
        return None if value is None else value.decode("latin-1")

    def authenticate(self) -> Principal:
        """The principal behind the bearer credential, counted by the rate limiter."""
        credential = bearer_token(self.header(b"authorization"))
        principal, self.rate = principal_of_credential(self.services, credential)
        return principal

    async def body(self) -> bytes:
        """The body, gunzipped when sent so, refused with 413 past the configured limit."""
        first = await self.receive()
        if first["type"] != "http.request":
            raise ClientDisconnect()
        chunk: bytes = first.get("body", b"")
        limit = self.services.settings.max_body_bytes
        encoding = self.header(b"content-encoding")
        more = first.get("more_body", False)
        if not more and encoding is None and len(chunk) <= limit:
            return chunk  # the usual small body, in one message: no generator to run
        return await body_of(
            self._chunks(chunk, more), self.header(b"content-length"), encoding, limit
        )

    async def _chunks(self, first: bytes, more: bool) -> AsyncIterator[bytes]:
        yield first
        while more:
            message = await self.receive()
            if message["type"] != "http.request":
                raise ClientDisconnect()
            yield message.get("body", b"")
            more = message.get("more_body", False)


def query_params(raw: bytes) -> dict[str, str]:
    """A query string's parameters as Starlette's QueryParams looks them up: blank values
    kept, the last of a repeated name wins. Split by hand when nothing in it is escaped."""
    text = raw.decode("latin-1")
    if "%" in text or "+" in text:
        return dict(parse_qsl(text, keep_blank_values=True))
    params = {}
    for part in text.split("&"):
        if part:
            name, _, value = part.partition("=")
            params[name] = value
    return params


LaneEndpoint = Callable[[Call], Awaitable[bytes]]  # the JSON body of a 200 reply


def fast_lane(dialect: str, render: ErrorRenderer, endpoint: LaneEndpoint) -> ASGIApp:
    """An ASGI app answering `endpoint` as the dialect's routes answer."""

    async def lane(scope: Scope, receive: Receive, send: Send) -> None:
        call = Call(scope, receive, scope["app"].services)
        try:
            body = await endpoint(call)
        except SensorbaseError as exc:
            response = error_response(render, exc)
        except ClientDisconnect:  # nobody is left to answer
            return
        except Exception:
            log.exception("%s %s failed", scope["method"], scope["path"])
            response = error_response(render, SensorbaseError("internal error"))
        else:
            headers = [_JSON, (b"content-length", str(len(body)).encode())]
            if call.rate is not None:
                headers += [(k.encode(), v.encode()) for k, v in call.rate.headers().items()]
            count(dialect, 200)
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        if call.rate is not None:
            response.headers.update(call.rate.headers())
        count(dialect, response.status_code)
        await response(scope, receive, send)

    return lane


async def as_route(request: Request, endpoint: LaneEndpoint) -> Response:
    """A lane's endpoint answering through FastAPI (its dialect route adds errors and
    rate-limit headers from `request.state.rate`)."""
    call = Call.of(request)
    try:
        return Response(await endpoint(call), media_type="application/json")
    finally:
        request.state.rate = call.rate
