"""The dakkio dialect: `X-API-Key`, `/api/data`, `/api/data/batch`, `/api/data/query`, and
buckets, data sources and keys under `/api/buckets`. Its sample payload (docs.dakkio.io,
"Ingest Data"; also a test fixture):

    POST /api/data
    X-API-Key: dakkio_a1b2c3d4e5f6g7h8i9j0k1l2m3n4o5p6
    {"bucketId": "507f1f77bcf86cd799439011", "dataSourceId": "507f1f77bcf86cd799439012",
     "timestamp": "2024-01-15T10:30:00Z",
     "values": {"temperature": 22.5, "humidity": 65, "pressure": 1013.25},
     "metadata": {"deviceId": "ESP32-001", "location": "Living Room", "batteryLevel": 85}}

    201 {"message": "Data point ingested successfully",
         "dataPoint": {"_id": "...", "bucketId": "507f1f77bcf86cd799439011",
                       "dataSourceId": "507f1f77bcf86cd799439012",
                       "timestamp": "2024-01-15T10:30:00Z", "values": {...}, "metadata": {...},
                       "createdAt": "..."}}

Mapping: a dakkio bucket is a Sensorbase bucket, a data source a source, each name in
`values` a field: the point above is three canonical points of the series
(507f…011, 507f…012, temperature|humidity|pressure), its metadata their extra `{"meta": ...}`.
Errors: `{"error", "message", "details"?}` (errors.py). See docs/dialects/dakkio.md.

Modules: write.py (the two ingest routes), read.py (the query route), admin.py (buckets, data
sources, keys), lifecycle.py (their updates and deletes; archiving), errors.py (the error body
and its wording), credential.py (X-API-Key, and a JWT on the admin routes), body.py, dates.py
and ids.py (dakkio's JSON, times and ids).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from sensorbase.dialects.lane import Lane

SAMPLE: dict[str, Any] = {
    "bucketId": "507f1f77bcf86cd799439011",
    "dataSourceId": "507f1f77bcf86cd799439012",
    "timestamp": "2024-01-15T10:30:00Z",
    "values": {"temperature": 22.5, "humidity": 65, "pressure": 1013.25},
    "metadata": {"deviceId": "ESP32-001", "location": "Living Room", "batteryLevel": 85},
}


def router() -> APIRouter:
    # Imported here: the route modules take SAMPLE from this one.
    from sensorbase.dialects.dakkio import admin, alerts, lifecycle, read, write

    combined = APIRouter()
    routers = (
        write.one_router,
        write.batch_router,
        read.router,
        admin.router,
        lifecycle.router,
        alerts.router,
    )
    for routes in routers:
        combined.include_router(routes)
    return combined


def fast_lanes() -> dict[tuple[str, str], Lane]:
    from sensorbase.dialects.dakkio import write

    return write.fast_lanes()
