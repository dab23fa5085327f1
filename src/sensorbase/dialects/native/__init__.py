"""The native API: `/v1/...`. Errors are RFC 9457 problem details (problems.py)."""

from __future__ import annotations

from fastapi import APIRouter

from sensorbase.dialects.native import admin, groups, query, users, write


def router() -> APIRouter:
    combined = APIRouter()
    for module in (write, query, admin, users, groups):
        combined.include_router(module.router)
    combined.include_router(admin.token_router)
    return combined
