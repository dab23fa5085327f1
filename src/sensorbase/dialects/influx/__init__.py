"""The InfluxDB dialect: InfluxQL reads at `/query` (read.py, influxql/). See
docs/dialects/influx.md."""

from __future__ import annotations

from fastapi import APIRouter


def router() -> APIRouter:
    from sensorbase.dialects.influx import read

    combined = APIRouter()
    combined.include_router(read.router)
    return combined
