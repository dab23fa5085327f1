"""The web console: pages at `/` and their API under `/console/api/` (a front end at the
dialects' rank: it uses the services, never storage). `router()` gathers its routers."""

from __future__ import annotations

from fastapi import APIRouter

from sensorbase.console import pages, session


def router() -> APIRouter:
    combined = APIRouter(include_in_schema=False)
    combined.include_router(session.router)
    combined.include_router(pages.router())
    return combined
