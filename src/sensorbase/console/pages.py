"""The console's pages: one HTML page at `/` (and `/console/`), its modules and style from
`console/static/`, and uPlot (the chart) from the installed `uplot-python` package, so nothing
is fetched from another host and nothing is copied into this repository.

Every page reply carries a Content-Security-Policy that allows this origin only (no inline
script or style, no other host); the session API (`console/api/session`) and `/v1/...` do the
rest."""

from __future__ import annotations

import importlib.util
from functools import cache
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse, Response

from sensorbase.errors import NotFound

STATIC = Path(__file__).parent / "static"
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}
# uPlot as `uplot-python` ships it (uplot/static/): the browser build and its style.
_VENDOR = {"uPlot.iife.js": "uPlot.iife.js", "uPlot.min.css": "uPlot.min.css"}


@cache
def uplot_dir() -> Path:
    """uplot-python's static folder, found without importing the package (whose __init__
    pulls in IPython, a second of start-up for two files)."""
    spec = importlib.util.find_spec("uplot")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("uplot-python is not installed (a declared dependency)")
    return Path(next(iter(spec.submodule_search_locations))) / "static"


def _file(path: Path) -> Response:
    if not path.is_file():
        raise NotFound(f"no console file {path.name}")
    # Revalidated on each load (ETag), so an upgrade's pages never mix with cached modules.
    headers = {"content-security-policy": CSP, "cache-control": "no-cache"}
    return FileResponse(path, media_type=_TYPES.get(path.suffix), headers=headers)


def router() -> APIRouter:
    pages = APIRouter(include_in_schema=False)

    @pages.get("/")
    @pages.get("/console/")
    async def index() -> Response:
        return _file(STATIC / "index.html")

    @pages.get("/console/static/{name}")
    async def static(name: str) -> Response:
        # One flat folder: a name is a file of it or nothing (no path from the request).
        found = {p.name: p for p in STATIC.iterdir()}
        if name not in found or name == "index.html":
            raise NotFound(f"no console file {name}")
        return _file(found[name])

    @pages.get("/console/vendor/{name}")
    async def vendor(name: str) -> Response:
        if name not in _VENDOR:
            raise NotFound(f"no console file {name}")
        return _file(uplot_dir() / _VENDOR[name])

    return pages
