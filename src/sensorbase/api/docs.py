"""`/docs` (Swagger UI) and `/redoc` (ReDoc), working without the internet: their files come
from the `fastapi-offline` package, installed with Sensorbase, and are served by the server
itself under `/docs/assets/` (FastAPI's own pages would load them from a CDN: blank pages on a
machine that cannot reach it). The pages are FastAPI's, pointed at those local URLs.

Each page's Content-Security-Policy allows no origin but the server's own: scripts from
'self' plus the page's one inline start-up script by its hash; styles from 'self' and inline
(Swagger UI and ReDoc set style attributes and ReDoc injects style elements); images from 'self'
and `data:` (Swagger UI's icons); ReDoc's search worker from a `blob:` it makes itself.
"""

from __future__ import annotations

import base64
import hashlib
import re
from importlib import resources

from fastapi import FastAPI, Request
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS = "/docs/assets"
OAUTH2_REDIRECT = "/docs/oauth2-redirect"
_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)


def install(app: FastAPI, title: str) -> None:
    """Mount the assets and the three pages (`docs_url` and `redoc_url` must be None)."""
    static = resources.files("fastapi_offline").joinpath("static")
    app.mount(ASSETS, StaticFiles(directory=str(static)), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return page(
            get_swagger_ui_html(
                openapi_url=f"{root}{app.openapi_url}",
                title=f"{title} - Swagger UI",
                oauth2_redirect_url=f"{root}{OAUTH2_REDIRECT}",
                swagger_js_url=f"{root}{ASSETS}/swagger-ui-bundle.js",
                swagger_css_url=f"{root}{ASSETS}/swagger-ui.css",
                swagger_favicon_url=f"{root}{ASSETS}/favicon.png",
                # No badge from the public validator (another origin): the CSP would block it.
                swagger_ui_parameters={"validatorUrl": None},
            )
        )

    @app.get(OAUTH2_REDIRECT, include_in_schema=False)
    async def oauth2_redirect() -> HTMLResponse:
        return page(get_swagger_ui_oauth2_redirect_html())

    @app.get("/redoc", include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return page(
            get_redoc_html(
                openapi_url=f"{root}{app.openapi_url}",
                title=f"{title} - ReDoc",
                redoc_js_url=f"{root}{ASSETS}/redoc.standalone.js",
                redoc_favicon_url=f"{root}{ASSETS}/favicon.png",
                with_google_fonts=False,
            )
        )


def page(html: HTMLResponse) -> HTMLResponse:
    """The page with a policy that lets its own inline scripts (by hash) and nothing foreign."""
    body = bytes(html.body).decode()
    hashes = " ".join(
        "'sha256-" + base64.b64encode(hashlib.sha256(s.encode()).digest()).decode() + "'"
        for s in _INLINE_SCRIPT.findall(body)
    )
    policy = (
        f"default-src 'self'; script-src 'self' {hashes}; ".replace(" ;", ";")
        + "style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self'; "
        "connect-src 'self'; worker-src 'self' blob:; object-src 'none'; base-uri 'self'; "
        "form-action 'self'; frame-ancestors 'none'"
    )
    return HTMLResponse(body, headers={"Content-Security-Policy": policy})
