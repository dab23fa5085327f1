"""The native API: `/v1/...`. Errors are RFC 9457 problem details (problems.py)."""

from __future__ import annotations

from fastapi import APIRouter

from sensorbase.dialects.lane import Lane
from sensorbase.dialects.native import admin, alerts, groups, lifecycle, query, users, write
from sensorbase.dialects.native.problems import native_lane


def router() -> APIRouter:
    combined = APIRouter()
    for module in (write, query, admin, lifecycle, users, groups, alerts):
        combined.include_router(module.router)
    combined.include_router(admin.token_router)
    return combined


def fast_lanes() -> dict[tuple[str, str], Lane]:
    """Routes the app calls before FastAPI's routing (see `dialects.lane`)."""
    return {
        ("POST", "/v1/write"): native_lane(write.write_points),
        ("GET", "/v1/query"): native_lane(query.query_points),
    }
