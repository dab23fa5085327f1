"""The generic problem renderer: what no dialect's route answers (an unknown path, a method a path
does not take, Starlette's own HTTP errors, an error raised outside any dialect's route such as
/metrics) is answered as an RFC 9457 problem.

The document is the native API's (dialects/native/problems.py), so that a client of the server
sees one shape; it is written there, not here, because imports point from api to dialects and
the native dialect renders it too. No error instance is changed to render it: an HTTP status the
error tree has no class for is given to the renderer."""

from __future__ import annotations

from fastapi import FastAPI, Request, Response
from starlette.exceptions import HTTPException
from starlette.routing import Match
from starlette.types import Scope

from sensorbase.dialects.native.problems import PROBLEM_SCHEMA, render_problem
from sensorbase.errors import MethodNotAllowed, NotFound, SensorbaseError

__all__ = ["PROBLEM_SCHEMA", "install", "render_problem"]

_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def install(app: FastAPI) -> None:
    """The app's handlers of the errors no dialect's route renders."""

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        if exc.status_code == 404:
            return render_problem(NotFound(f"no route {request.method} {request.url.path}"))
        if exc.status_code == 405:
            allowed = allowed_methods(app, request.scope)
            return render_problem(
                MethodNotAllowed(
                    f"{request.url.path} takes {', '.join(allowed)}, not {request.method}",
                    allowed=allowed,
                )
            )
        return render_problem(SensorbaseError(str(exc.detail)), status=exc.status_code)

    @app.exception_handler(SensorbaseError)
    async def engine_error(request: Request, exc: SensorbaseError) -> Response:
        response = render_problem(exc)
        if exc.retry_after_s is not None:  # (429, 503) as the dialects' renderers do
            response.headers["Retry-After"] = str(exc.retry_after_s)
        return response


def allowed_methods(app: FastAPI, scope: Scope) -> tuple[str, ...]:
    """Every method some route takes at this path (Starlette's own 405 names only the first
    route that matched the path, so GET /v1/buckets would hide POST): each asked of the router
    as a request would be."""
    routes = app.router.routes
    return tuple(
        method
        for method in _METHODS
        if any(route.matches({**scope, "method": method})[0] is Match.FULL for route in routes)
    )
