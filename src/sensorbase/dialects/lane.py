"""Fast lanes: the hot routes answered without FastAPI: `POST /v1/write`, `GET /v1/query`,
and each dialect's ingest (InfluxDB's two writes, dakkio's point and batch, Databoom's push,
Datacooee's upload, DiagRAMS's push, Madevo's /restapi insert; its /api/v1 insert, which
tells the streams' hub, is not).

A lane reads its request without Starlette's Request (which builds multi-dicts for headers and
query parameters) and answers with a status, headers and body instead of a Response object.
Each of these costs little, but together they were more than half of a one-point write's own
CPU. It is reached two ways: the app calls it as a plain ASGI app before FastAPI's middleware,
routing and dependency machinery (api/app.py); and under `sensorbase serve` the HTTP protocol
calls `Lane.answer` straight from the request parser, without an ASGI scope and cycle at all
(server/protocol.py). A lane answers exactly as its dialect's route does: same errors in the
dialect's shape, same Retry-After and X-RateLimit-* headers, same request counter. The route
stays declared in its router for OpenAPI and answers the same when reached through FastAPI
(e.g. under a root path).

A dialect offers its lanes with `fast_lanes() -> {(method, path): Lane}`; a path may hold
`{name}` segments, as a route's does (`/inputs/{input_pk}/inputdata/`), which the endpoint
reads as `call.path_params`. `Lanes.find` looks a request up.
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Protocol
from urllib.parse import parse_qsl

from fastapi import Request, Response
from starlette.requests import ClientDisconnect, cookie_parser
from starlette.types import Receive, Scope, Send

from sensorbase.auth.keys import Principal
from sensorbase.auth.ratelimit import RateState
from sensorbase.auth.tokens import CSRF_HEADER, SESSION_COOKIE
from sensorbase.dialects.base import (
    ErrorRenderer,
    bearer_token,
    check_csrf,
    count,
    error_response,
    principal_of_credential,
    services,
)
from sensorbase.dialects.body import body_of
from sensorbase.errors import SensorbaseError
from sensorbase.services import Services

log = logging.getLogger(__name__)

_JSON = (b"content-type", b"application/json")
# Every reply carries these (api/app.py adds them to replies through FastAPI): no content
# sniffing, no framing of an API reply in a page, and no cache keeping a reply meant for one
# caller (an API reply is that, nearly always).
SAFETY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"content-security-policy", b"frame-ancestors 'none'"),
    (b"cache-control", b"no-store"),
]
Headers = list[tuple[bytes, bytes]]  # lower-case names, as in an ASGI scope
Reply = tuple[int, Headers, bytes]  # status, headers, body


class TrustedProxies(Protocol):
    """uvicorn's trusted proxies (`ProxyHeadersMiddleware.trusted_hosts`, --forwarded-allow-ips):
    the peers whose X-Forwarded-For names the client."""

    def __contains__(self, host: object) -> bool: ...
    def get_trusted_client_address(self, x_forwarded_for: str) -> tuple[str, int]: ...


class Call:
    """What a lane's endpoint reads of its request: headers and query string, and the body,
    either whole (`body`, from the HTTP protocol) or to be received (`receive`, ASGI).

    `client` is the peer (host, port). Through ASGI it is the scope's, which uvicorn's
    proxy-headers handling has already rewritten; from the HTTP protocol it is the socket's,
    and `proxies` (uvicorn's, or None when proxy headers are off) lets `address` apply the same
    rule, when an address is needed at all."""

    __slots__ = (
        "_body",
        "_client",
        "_headers",
        "_pairs",
        "_proxies",
        "_query",
        "_raw_headers",
        "params",
        "path_params",
        "rate",
        "receive",
        "services",
    )

    def __init__(
        self,
        headers: Headers,
        query_string: bytes,
        services: Services,
        *,
        body: bytes | None = None,
        receive: Receive | None = None,
        client: tuple[str, int] | None = None,
        proxies: TrustedProxies | None = None,
        path_params: dict[str, str] | None = None,
    ) -> None:
        self.services = services
        self.path_params = path_params or {}
        self._body = body
        self.receive = receive
        self._client = client
        self._proxies = proxies
        self._raw_headers = headers
        # The first of a repeated name wins, as in Starlette's Headers.
        self._headers: dict[bytes, bytes] = dict(reversed(headers))
        self._query = query_string
        self._pairs: list[tuple[str, str]] | None = None  # parsed when a list is asked for
        self.params: Mapping[str, str] = query_params(query_string)  # shared: never changed
        self.rate: RateState | None = None

    @classmethod
    def of(cls, request: Request) -> Call:
        scope = request.scope
        return cls(
            scope["headers"],
            scope["query_string"],
            services(request),
            receive=request.receive,
            client=scope.get("client"),
            path_params=request.path_params,
        )

    def address(self) -> str:
        """The client's address, as uvicorn's proxy-headers handling gives it to routes."""
        if self._client is None:
            return "unknown"
        host = str(self._client[0])
        if self._proxies is not None and host in self._proxies:
            forwarded = [v for n, v in self._raw_headers if n == b"x-forwarded-for"]
            if forwarded:
                found, _ = self._proxies.get_trusted_client_address(
                    b", ".join(forwarded).decode("latin-1")
                )
                return found or host
        return host

    def param_list(self, name: str) -> list[str]:
        """Every value of a repeated parameter, in order (Starlette's `getlist`)."""
        if self._pairs is None:
            self._pairs = parse_qsl(self._query.decode("latin-1"), keep_blank_values=True)
        return [value for key, value in self._pairs if key == name]

    def header(self, name: bytes) -> str | None:
        value = self._headers.get(name)
        return None if value is None else value.decode("latin-1")

    def authenticate(self, sessions: bool = False, changes_state: bool = True) -> Principal:
        """The principal behind the bearer credential, counted by the rate limiter; with
        `sessions` (the native API), without an Authorization header, the console's session
        cookie, whose CSRF token a request that `changes_state` must carry."""
        header = self.header(b"authorization")
        credential = bearer_token(header)
        if sessions and credential is None and header is None:
            session = cookie_parser(self.header(b"cookie") or "").get(SESSION_COOKIE)
            if session:
                principal, self.rate = principal_of_credential(self.services, session, self.address)
                if changes_state:
                    check_csrf(self.services, session, self.header(CSRF_HEADER.lower().encode()))
                return principal
        principal, self.rate = principal_of_credential(self.services, credential, self.address)
        return principal

    def authenticate_with(self, credential: str | None) -> Principal:
        """The principal behind `credential` (as the dialect found it), rate-limited."""
        principal, self.rate = principal_of_credential(self.services, credential, self.address)
        return principal

    def whole_body(self) -> bytes | None:
        """The body, when it came whole from the HTTP protocol as sent (not compressed) and
        within the limit: what `body` returns then, without a coroutine to run."""
        whole = self._body
        if (
            whole is not None
            and len(whole) <= self.services.settings.max_body_bytes
            and b"content-encoding" not in self._headers
        ):
            return whole
        return None

    async def body(self) -> bytes:
        """The body, gunzipped when sent so, refused with 413 past the configured limit."""
        ready = self.whole_body()
        if ready is not None:
            return ready
        limit = self.services.settings.max_body_bytes
        encoding = self.header(b"content-encoding")
        whole = self._body
        if whole is not None:
            return await body_of(_chunk(whole), self.header(b"content-length"), encoding, limit)
        assert self.receive is not None
        first = await self.receive()
        if first["type"] != "http.request":
            raise ClientDisconnect()
        chunk: bytes = first.get("body", b"")
        more = first.get("more_body", False)
        if not more and encoding is None and len(chunk) <= limit:
            return chunk  # the usual small body, in one message: no generator to run
        return await body_of(
            self._chunks(chunk, more), self.header(b"content-length"), encoding, limit
        )

    async def _chunks(self, first: bytes, more: bool) -> AsyncIterator[bytes]:
        assert self.receive is not None
        yield first
        while more:
            message = await self.receive()
            if message["type"] != "http.request":
                raise ClientDisconnect()
            yield message.get("body", b"")
            more = message.get("more_body", False)


async def _chunk(body: bytes) -> AsyncIterator[bytes]:
    yield body


_parsed_queries: dict[bytes, dict[str, str]] = {}  # query string -> its parameters
_PARSED_QUERIES = 1024  # forgotten past this many


def query_params(raw: bytes) -> Mapping[str, str]:
    """A query string's parameters as Starlette's QueryParams looks them up: blank values
    kept, the last of a repeated name wins. Split by hand when nothing in it is escaped.
    A client writing again and again sends one query string again and again: the parameters
    of the last 1,024 seen are kept, and shared, so never changed by whoever reads them."""
    params = _parsed_queries.get(raw)
    if params is None:
        if len(_parsed_queries) >= _PARSED_QUERIES:
            _parsed_queries.clear()
        params = _parsed_queries[raw] = _parsed(raw)
    return params


def _parsed(raw: bytes) -> dict[str, str]:
    text = raw.decode("latin-1")
    if "%" in text or "+" in text:
        return dict(parse_qsl(text, keep_blank_values=True))
    params = {}
    for part in text.split("&"):
        if part:
            name, _, value = part.partition("=")
            params[name] = value
    return params


# A reply's body: bytes are a 200 reply's JSON (the usual case, without a Response object);
# another status, media type or headers come as a Response.
LaneEndpoint = Callable[[Call], Awaitable[bytes | Response]]


class Lane:
    """A dialect's hot route: `endpoint` answered as the dialect's routes answer."""

    def __init__(self, dialect: str, render: ErrorRenderer, endpoint: LaneEndpoint) -> None:
        self.dialect = dialect
        self.render = render
        self.endpoint = endpoint

    async def answer(self, call: Call) -> Reply:
        """The reply to `call`. (ClientDisconnect: nobody is left to answer.) The HTTP protocol
        runs the same two steps itself, one coroutine less (server/protocol.py)."""
        try:
            reply = await self.endpoint(call)
        except ClientDisconnect:
            raise
        except Exception as exc:
            reply = self.refusal(exc)
        return self.reply(call, reply)

    def refusal(self, exc: Exception) -> Response:
        """The reply to the endpoint's exception (called in its `except`): a SensorbaseError in
        the dialect's shape, anything else logged and answered as an internal error."""
        if isinstance(exc, SensorbaseError):
            return error_response(self.render, exc)
        log.exception("%s lane failed", self.dialect)
        return error_response(self.render, SensorbaseError("internal error"))

    def reply(self, call: Call, reply: bytes | Response) -> Reply:
        """The endpoint's reply (or refusal) as a status, headers and body, counted."""
        if isinstance(reply, bytes):
            headers = _plain_headers(len(reply))
            if call.rate is not None:
                headers = headers + [
                    (k.encode(), v.encode()) for k, v in call.rate.headers().items()
                ]
            count(self.dialect, 200)
            return 200, headers, reply
        if call.rate is not None:
            reply.headers.update(call.rate.headers())
        count(self.dialect, reply.status_code)
        return reply.status_code, [*reply.raw_headers, *SAFETY_HEADERS], bytes(reply.body)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The lane as an ASGI app (scope["app"] is the SensorbaseApp)."""
        call = Call(
            scope["headers"],
            scope["query_string"],
            scope["app"].services,
            receive=receive,
            client=scope.get("client"),
            path_params=scope.get("path_params"),
        )
        try:
            status, headers, body = await self.answer(call)
        except ClientDisconnect:
            return
        headers = list(headers)  # (a plain reply's are shared: see _plain_headers)
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


_plain: dict[int, Headers] = {}  # a 200 JSON reply's headers, by its length
_PLAIN_LENGTHS = 1024  # forgotten past this many


def _plain_headers(length: int) -> Headers:
    """The headers of a 200 JSON reply of `length` bytes (without rate-limit headers), made
    once a length and shared: never changed by whoever reads them."""
    headers = _plain.get(length)
    if headers is None:
        if len(_plain) >= _PLAIN_LENGTHS:
            _plain.clear()
        headers = [_JSON, (b"content-length", str(length).encode()), *SAFETY_HEADERS]
        _plain[length] = headers
    return headers


_SEGMENT = re.compile(r"\{(\w+)\}")


class Lanes(dict[tuple[str, str], Lane]):
    """The app's lanes by (method, path). A path with `{name}` segments matches a request's
    path whose segment there is not empty and holds no `/` (Starlette's `str` parameter);
    a path with a `%` escape is left to FastAPI, which decodes it."""

    _templates: list[tuple[str, re.Pattern[str], Lane]]
    _compiled_for = -1

    def find(self, method: str, path: str) -> tuple[Lane, dict[str, str]] | None:
        lane = self.get((method, path))
        if lane is not None:
            return lane, {}
        if "%" in path:
            return None
        if self._compiled_for != len(self):
            self._templates = [(m, _pattern(p), lane) for (m, p), lane in self.items() if "{" in p]
            self._compiled_for = len(self)
        for wanted, pattern, lane in self._templates:
            if wanted == method and (found := pattern.fullmatch(path)):
                return lane, found.groupdict()
        return None


def _pattern(path: str) -> re.Pattern[str]:
    """`/inputs/{input_pk}/inputdata/` as a regular expression naming its parameters."""
    parts = _SEGMENT.split(path)  # literal, name, literal, name, ..., literal
    return re.compile(
        "".join(f"(?P<{part}>[^/]+)" if i % 2 else re.escape(part) for i, part in enumerate(parts))
    )


async def as_route(request: Request, endpoint: LaneEndpoint) -> Response:
    """A lane's endpoint answering through FastAPI (its dialect route adds errors and
    rate-limit headers from `request.state.rate`)."""
    call = Call.of(request)
    try:
        return response(await endpoint(call))
    finally:
        request.state.rate = call.rate


def response(reply: bytes | Response) -> Response:
    """A lane endpoint's reply as a Response (bytes: a 200 reply's JSON)."""
    return reply if isinstance(reply, Response) else Response(reply, media_type="application/json")
