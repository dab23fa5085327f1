"""What every dialect shares: a route class that renders `SensorbaseError` in the dialect's own
shape and adds rate-limit headers, the request's principal, and bounded body reading."""

from __future__ import annotations

import zlib
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute, APIRouter
from prometheus_client import Counter

from sensorbase.auth.keys import Principal
from sensorbase.auth.ratelimit import RateState
from sensorbase.errors import InvalidInput, PayloadTooLarge, Problem, SensorbaseError, Unauthorized
from sensorbase.services import Services

ErrorRenderer = Callable[[SensorbaseError], Response]
REQUESTS = Counter("sensorbase_requests", "HTTP requests answered", ["dialect", "status"])


def services(request: Request) -> Services:
    svc: Services = request.app.state.services
    return svc


def validation_problems(exc: RequestValidationError) -> InvalidInput:
    problems = []
    for error in exc.errors():
        loc = [str(part) for part in error.get("loc", ()) if part not in ("body", "query", "path")]
        problems.append(Problem(error.get("msg", "invalid"), ".".join(loc) or None))
    detail = "; ".join(p.describe() for p in problems) or "invalid request"
    return InvalidInput(detail, problems)


def dialect_router(name: str, render: ErrorRenderer, **kwargs: Any) -> APIRouter:
    """An APIRouter whose routes answer errors through `render`."""

    class DialectRoute(APIRoute):
        def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
            handler = super().get_route_handler()

            async def handle(request: Request) -> Response:
                try:
                    response = await handler(request)
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
                REQUESTS.labels(name, str(response.status_code)).inc()
                return response

            return handle

    return APIRouter(route_class=DialectRoute, **kwargs)


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
