"""What every dialect shares: a route class that renders `SensorbaseError` in the dialect's own
shape and adds rate-limit headers, the request's principal, and bounded body reading."""

from __future__ import annotations

import hmac
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping
from dataclasses import replace
from typing import Any

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute, APIRouter
from prometheus_client.core import REGISTRY, CounterMetricFamily
from prometheus_client.registry import Collector
from starlette.types import Message

from sensorbase.alerts.admin import Alerts
from sensorbase.auth.keys import Principal
from sensorbase.auth.ratelimit import RateState
from sensorbase.auth.tokens import CSRF_HEADER
from sensorbase.catalog import Catalog
from sensorbase.dialects.body import parse_json, read_body, require_media_type
from sensorbase.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    Problem,
    RateLimited,
    SensorbaseError,
    Unauthorized,
    summary,
)
from sensorbase.ingest.pipeline import Ingest
from sensorbase.query.service import QueryService
from sensorbase.services import Services

ErrorRenderer = Callable[[SensorbaseError], Response]
Endpoint = Callable[[Request], Awaitable[Response]]


class _RequestCounts(Collector):
    """`sensorbase_requests`: HTTP requests answered, by dialect and status. Counted in plain
    cells read at each scrape: a prometheus_client Counter's `inc()` takes a lock and checks
    its amount and exemplar each time (~5,000 instructions, 1.6% of a one-point write).
    Requests are counted on the event loop (`answer`, `Lane.answer`), one thread a worker."""

    def __init__(self) -> None:
        self.cells: dict[tuple[str, int], list[float]] = {}  # -> [count, created (epoch s)]

    def collect(self) -> Iterable[Any]:
        family = CounterMetricFamily(
            "sensorbase_requests", "HTTP requests answered", labels=["dialect", "status"]
        )
        for (dialect, status), (total, created) in list(self.cells.items()):
            family.add_metric([dialect, str(status)], total, created=created)
        yield family


_REQUESTS = _RequestCounts()
REGISTRY.register(_REQUESTS)


def services(request: Request) -> Services:
    svc: Services = request.scope["app"].services  # a SensorbaseApp (api/app.py)
    return svc


# The dependencies are coroutines: FastAPI runs a plain function on its thread pool, a hop
# each way per request, and under a saturating ingest each hop waited for the event loop
# (tests/api/test_hygiene.py holds every route to it).
async def catalog_of(request: Request) -> Catalog:
    """The catalog service, as a FastAPI dependency."""
    return services(request).catalog


async def ingest_of(request: Request) -> Ingest:
    """The write path, as a FastAPI dependency."""
    return services(request).ingest


async def alerts_of(request: Request) -> Alerts:
    """Alert rules, webhooks and their logs, as a FastAPI dependency."""
    return services(request).alerts


async def query_of(request: Request) -> QueryService:
    """The read path, as a FastAPI dependency."""
    return services(request).query


def in_words(exc: SensorbaseError, words: Mapping[str, str]) -> SensorbaseError:
    """The engine's error in a dialect's words: the parts a problem or a NotFound names in the
    engine's terms ("source", "field", "meta", "bucket") become the vendor's ("sensorId",
    "data source", "metadata", ...). For a dialect's renderer, before it shapes the reply."""
    if isinstance(exc, InvalidInput) and exc.problems:
        problems = [
            replace(p, field=words.get(p.field, p.field)) if p.field else p for p in exc.problems
        ]
        if problems == exc.problems:
            return exc
        cut = exc.problems_total > len(problems)  # the detail counts what the list lacks
        worded = type(exc)(exc.detail if cut else summary(problems), problems, exc.retry_after_s)
        worded.problems_total = exc.problems_total
        return worded
    if isinstance(exc, NotFound | Conflict) and exc.what is not None and exc.what in words:
        word = words[exc.what]
        detail = (
            exc.detail.replace(exc.what, word, 1) if exc.detail.startswith(exc.what) else exc.detail
        )
        return replace(exc, detail=detail)
    return exc


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
        response = error_response(render, exc)
    except RequestValidationError as exc:
        response = render(validation_problems(exc))
    rate: RateState | None = getattr(request.state, "rate", None)
    if rate is not None:
        response.headers.update(rate.headers())
    count(name, response.status_code)
    return response


def error_response(render: ErrorRenderer, exc: SensorbaseError) -> Response:
    """The dialect's rendering of an error, with its Retry-After and rate-limit headers."""
    response = render(exc)
    if exc.retry_after_s is not None:
        response.headers["Retry-After"] = str(exc.retry_after_s)
    if isinstance(exc, RateLimited) and exc.reset_epoch_s is not None:
        state = RateState(exc.limit or 0, exc.remaining or 0, exc.reset_epoch_s)
        response.headers.update(state.headers())
    return response


def count(dialect: str, status: int) -> None:
    cell = _REQUESTS.cells.get((dialect, status))
    if cell is None:
        cell = _REQUESTS.cells[(dialect, status)] = [0, time.time()]
    cell[0] += 1


# The refusals every route may give (auth, scope, tenancy, validation, rate, overload), and those
# of a route that takes a body.
_REFUSALS = {
    400: "Invalid input: every problem named",
    401: "No, a wrong, expired or revoked credential",
    403: "The credential lacks the scope, or is limited to another bucket",
    404: "Not found (or another organisation's)",
    409: "Conflict: the key is taken, or changed meanwhile",
    422: "Well-formed but refused",
    429: "Over the rate limit or sign-in attempts (Retry-After)",
    503: "Overloaded or storage briefly unavailable (Retry-After)",
}
_BODY_REFUSALS = {
    413: "The body, or its items, exceed a limit",
    415: "A Content-Type or Content-Encoding the route does not take",
}


def dialect_router(
    name: str,
    render: ErrorRenderer,
    *,
    error_schema: dict[str, Any] | None = None,
    error_media_type: str = "application/json",
    **kwargs: Any,
) -> APIRouter:
    """An APIRouter whose routes answer errors through `render`, and declare them in OpenAPI
    (`error_schema`: the JSON Schema of the dialect's error body). A route whose body FastAPI
    decodes into a model gets that body checked first as every other body is (its media type,
    size and encoding, and I-JSON: dialects/body.py)."""
    schema = error_schema or {"type": "object"}

    class DialectRoute(APIRoute):
        def __init__(self, *args: Any, **route_kwargs: Any) -> None:
            super().__init__(*args, **route_kwargs)
            takes_body = self.body_field is not None or "requestBody" in (self.openapi_extra or {})
            refusals = {**_REFUSALS, **(_BODY_REFUSALS if takes_body else {})}
            for status, description in refusals.items():
                self.responses.setdefault(
                    status,
                    {
                        "description": description,
                        "content": {error_media_type: {"schema": schema}},
                    },
                )

        def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
            route_handler = super().get_route_handler()
            handler: Endpoint = route_handler
            if self.body_field is not None:
                handler = _checked_body(route_handler)

            async def handle(request: Request) -> Response:
                return await answer(name, render, request, handler)

            return handle

    return APIRouter(route_class=DialectRoute, **kwargs)


def _checked_body(handler: Endpoint) -> Endpoint:
    async def checked(request: Request) -> Response:
        require_media_type(request.headers.get("content-type"))
        raw = await read_body(request, services(request).settings.max_body_bytes)
        if raw.strip():
            parse_json(raw)

        async def replay() -> Message:  # FastAPI then reads the body as checked, decompressed
            return {"type": "http.request", "body": raw, "more_body": False}

        return await handler(Request(request.scope, replay))

    return checked


def authenticate(request: Request, credential: str | None) -> Principal:
    """The principal behind a credential (API key or access token), counted by the rate limiter."""
    principal, request.state.rate = principal_of_credential(
        services(request), credential, lambda: client_address(request)
    )
    return principal


def principal_of_credential(
    svc: Services, credential: str | None, address: Callable[[], str]
) -> tuple[Principal, RateState | None]:
    """The principal and its rate state; a wrong credential is counted against the client's
    `address` (auth/failures.py), which is asked for only then."""
    if not credential:
        raise Unauthorized("credentials are missing")
    principal = svc.tokens.authenticate(credential, address)
    return principal, svc.rate.hit(principal.key_id)


def check_csrf(svc: Services, session: str, given: str | None) -> None:
    """A state change signed in by the console's session cookie (console/session.py) carries
    the session's CSRF token, else Forbidden naming the header."""
    wanted = svc.tokens.csrf_of(session)
    if not hmac.compare_digest((given or "").encode(), wanted.encode()):
        raise Forbidden(
            f"a request signed in by the session cookie must send the header {CSRF_HEADER} "
            "with the session's CSRF token"
        )


def client_address(request: Request) -> str:
    """The client's address: the peer's, or, from a proxy that uvicorn trusts
    (--forwarded-allow-ips), the one it forwarded (uvicorn's proxy-headers handling has already
    put it in the scope)."""
    client = request.scope.get("client")
    return str(client[0]) if client else "unknown"


def bearer(request: Request) -> str | None:
    """The token of an `Authorization: Bearer <token>` header (any case of 'Bearer')."""
    return bearer_token(request.headers.get("authorization"))


def bearer_token(header: str | None) -> str | None:
    scheme, _, token = (header or "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None
