"""What every dialect shares: a route class that renders `SensorbaseError` in the dialect's own
shape and adds rate-limit headers, the request's principal, and bounded body reading."""

from __future__ import annotations

import zlib
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute, APIRouter
from prometheus_client import Counter
from starlette.datastructures import Headers, QueryParams
from starlette.types import Receive, Scope

from sensorbase.auth.keys import Principal
from sensorbase.auth.ratelimit import RateState
from sensorbase.errors import InvalidInput, PayloadTooLarge, Problem, SensorbaseError, Unauthorized
from sensorbase.services import Services

ErrorRenderer = Callable[[SensorbaseError], Response]
Endpoint = Callable[[Request], Awaitable[Response]]
REQUESTS = Counter("sensorbase_requests", "HTTP requests answered", ["dialect", "status"])
_counters: dict[tuple[str, int], Any] = {}  # labels() looked up once per (dialect, status)


def services(request: Request) -> Services:
    svc: Services = request.scope["app"].services  # a SensorbaseApp (api/app.py)
    return svc


def validation_problems(exc: RequestValidationError) -> InvalidInput:
    problems = []
    for error in exc.errors():
        loc = [str(part) for part in error.get("loc", ()) if part not in ("body", "query", "path")]
        problems.append(Problem(error.get("msg", "invalid"), ".".join(loc) or None))
    detail = "; ".join(p.describe() for p in problems) or "invalid request"
    return InvalidInput(detail, problems)


async def answer(name: str, render: ErrorRenderer, request: Request, call: Endpoint) -> Response:
    """`call(request)`, with every SensorbaseError rendered in the dialect's shape and the
    Retry-After and X-RateLimit-* headers added."""
    try:
        response = await call(request)
    except SensorbaseError as exc:
        response = render(exc)
        if exc.retry_after_s is not None:
            response.headers["Retry-After"] = str(exc.retry_after_s)
        state = getattr(exc, "rate_state", None)
        if state is not None:
            response.headers.update(state.headers())
    except RequestValidationError as exc:
        response = render(validation_problems(exc))
    rate: RateState | None = getattr(request.state, "rate", None)
    if rate is not None:
        response.headers.update(rate.headers())
    counter = _counters.get((name, response.status_code))
    if counter is None:
        counter = _counters[(name, response.status_code)] = REQUESTS.labels(
            name, str(response.status_code)
        )
    counter.inc()
    return response


def dialect_router(name: str, render: ErrorRenderer, **kwargs: Any) -> APIRouter:
    """An APIRouter whose routes answer errors through `render`."""

    class DialectRoute(APIRoute):
        def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
            handler = super().get_route_handler()

            async def handle(request: Request) -> Response:
                return await answer(name, render, request, handler)

            return handle

    return APIRouter(route_class=DialectRoute, **kwargs)


def fast_lane(name: str, render: ErrorRenderer, endpoint: Endpoint) -> Endpoint:
    """An endpoint that takes only the Request, answered as its dialect route answers (same
    errors, same headers) but called by the app directly, before FastAPI's middleware, routing
    and dependency machinery, which cost several times a one-point write. A dialect offers
    its lanes with `fast_lanes() -> {(method, path): lane}`; the route stays declared in its
    router for OpenAPI (and answers the same when reached through FastAPI)."""

    async def handle(request: Request) -> Response:
        return await answer(name, render, request, endpoint)

    return handle


class LaneRequest(Request):
    """The Request a fast lane is given: its headers and query parameters are looked up in
    plain dicts built once. Starlette's general machinery (a header lookup scans the raw list
    and raises KeyError on every miss; the query string goes through parse_qsl into a
    multi-dict) costs a good share of a one-point write."""

    def __init__(self, scope: Scope, receive: Receive) -> None:
        super().__init__(scope, receive)
        self._headers = _Headers(scope=scope)
        raw: bytes = scope["query_string"]
        if b"%" in raw or b"+" in raw:  # escaped: Starlette's own parsing
            self._query_params = QueryParams(raw)
        else:
            self._query_params = _Params(raw.decode("latin-1"))


class _Params(QueryParams):
    """Query parameters of a query string without escapes, split by hand (as parse_qsl would:
    blank values kept, a repeated name's last value wins a lookup)."""

    def __init__(self, text: str) -> None:  # not Starlette's: its parsing is what is skipped
        self._list = [_pair(part) for part in text.split("&") if part]
        self._dict = dict(self._list)

    def get(self, key: Any, default: Any = None) -> Any:
        return self._dict.get(key, default)


def _pair(part: str) -> tuple[str, str]:
    name, _, value = part.partition("=")
    return name, value


class _Headers(Headers):
    """Headers with a dict for lookups (the first of repeated names wins, as in Starlette)."""

    def __init__(self, *, scope: Scope) -> None:
        super().__init__(scope=scope)
        self._first = dict(reversed(self.raw))

    def get(self, key: str, default: Any = None) -> Any:
        value = self._first.get(key.lower().encode("latin-1"))
        return default if value is None else value.decode("latin-1")

    def __getitem__(self, key: str) -> str:
        return str(self._first[key.lower().encode("latin-1")].decode("latin-1"))

    def __contains__(self, key: Any) -> bool:
        return isinstance(key, str) and key.lower().encode("latin-1") in self._first


def authenticate(request: Request, credential: str | None) -> Principal:
    """The principal behind a credential (API key or access token), counted by the rate limiter."""
    if not credential:
        raise Unauthorized("credentials are missing")
    svc = services(request)
    principal = svc.tokens.authenticate(credential)
    request.state.rate = svc.rate.hit(principal.key_id)
    return principal


def bearer(request: Request) -> str | None:
    """The token of an `Authorization: Bearer <token>` header (any case of 'Bearer')."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


async def read_body(request: Request, max_bytes: int) -> bytes:
    """The body, gunzipped when sent so, refused with 413 past `max_bytes` either way."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise PayloadTooLarge(f"the body is {declared} bytes; the limit is {max_bytes}")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise PayloadTooLarge(f"the body exceeds the limit of {max_bytes} bytes")
        chunks.append(chunk)
    body = b"".join(chunks)
    if request.headers.get("content-encoding", "").lower() in ("gzip", "x-gzip"):
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            body = inflater.decompress(body, max_bytes + 1)
        except zlib.error:
            raise InvalidInput("the body is not valid gzip") from None
        if len(body) > max_bytes or inflater.unconsumed_tail:
            raise PayloadTooLarge(f"the decompressed body exceeds the limit of {max_bytes} bytes")
    return body
