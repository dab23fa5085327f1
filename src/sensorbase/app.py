"""The one wiring place: settings → storage → services → the ASGI app, and what the HTTP server
needs beside the app.

`sensorbase serve` (server/) is handed a `Wiring` and takes the services and fast lanes from
it: it never looks inside the app (which uvicorn may have wrapped in middleware) for them."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import FastAPI

from sensorbase.api.app import SensorbaseApp, build_app
from sensorbase.dialects.lane import Lanes
from sensorbase.services import Services
from sensorbase.settings import Settings
from sensorbase.storage import open_store


@dataclass(frozen=True, slots=True)
class Wiring:
    """One server process's engine and app.

    `fast_lanes` are the app's own (the routes it answers before FastAPI): the HTTP protocol
    answers them from its parser with `services`, whose settings also bound its connections."""

    app: SensorbaseApp
    services: Services
    fast_lanes: Lanes


def wire(settings: Settings | None = None) -> Wiring:
    settings = settings or Settings()
    services = Services(settings, open_store(settings))
    app = build_app(services)
    return Wiring(app, services, app.fast_lanes)


def create_app(settings: Settings | None = None) -> FastAPI:
    """The app alone: for uvicorn's own command (`uvicorn sensorbase.app:create_app --factory`)
    and tests, where the fast lanes are reached through ASGI (api/app.py), not from a parser."""
    return wire(settings).app
