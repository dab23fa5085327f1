"""Wiring: settings → storage → services → the ASGI app."""

from __future__ import annotations

from fastapi import FastAPI

from sensorbase.api.app import build_app
from sensorbase.services import Services
from sensorbase.settings import Settings
from sensorbase.storage import open_store


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    return build_app(Services(settings, open_store(settings)))
