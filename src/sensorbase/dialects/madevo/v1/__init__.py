"""Madevo's newer /api/v1 generation, beside /restapi (docs/dialects/madevo.md lists every route).

POST   /api/v1/login {email, password}   → {error: false, message, user, token}
POST   /api/v1/refresh-token             (the token in the header and in the body)
POST   /api/v1/secure/logout
POST   /api/v1/secure/datasource/upload  (CSV or ZIP: columns and a sample)
PUT    /api/v1/secure/datasource         (create from an upload; imported in the background)
GET    /api/v1/secure/datasource?id=     GET /api/v1/secure/datasources?page=
POST   /api/v1/secure/datasources/plain  PATCH | DELETE /api/v1/secure/datasource
POST   /api/v1/secure/datasource/detect-timeformat
GET    /api/v1/secure/datasource/store-ds-schema-summary
POST   /api/v1/secure/datasource/distinct-metadata
PATCH  /api/v1/secure/datasource/insert  {datasource_id, data: [{...}]} (strings only)
POST   /api/v1/secure/data/plot          {datasource_id, asset, from, to, value}
WS     /api/v1/stream/{room_id}?token=

config.py      a data source's timefield, metafield, timeformat; its JSON
timeformat.py  reading and detecting time strings
rows.py        strings-only rows → the one decoder → the one pipeline, partial success
session.py     login, refresh, logout
sources.py     create, get, list, rename, delete, detect, summary, distinct metadata
uploads.py     files streamed to disk; their columns and sample
imports.py     an upload imported in batches, progress in the data source's meta
files.py       the upload and create-from-upload routes
insert.py      the insert route
plot.py        the plot route
stream.py      the WebSocket stream of a room's inserts
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from sensorbase.dialects.base import dialect_router
from sensorbase.dialects.madevo.errors import V1_ERROR_SCHEMA, render_v1_error
from sensorbase.dialects.madevo.settings import MadevoSettings
from sensorbase.dialects.madevo.v1 import files, plot, session, sources
from sensorbase.dialects.madevo.v1 import openapi_docs as d
from sensorbase.dialects.madevo.v1.insert import insert_route
from sensorbase.dialects.madevo.v1.stream import Hub


def router(settings: MadevoSettings) -> APIRouter:
    hub = Hub()
    routes = dialect_router(
        "madevo", render_v1_error, prefix="/api/v1", tags=["madevo"], error_schema=V1_ERROR_SCHEMA
    )
    routes.hub = hub  # type: ignore[attr-defined]  # (tests and the app reach it)

    def add(path: str, endpoint: Any, method: str, summary: str, doc: dict[str, Any]) -> None:
        routes.add_api_route(
            path,
            endpoint,
            methods=[method],
            name=f"madevo_v1_{method.lower()}_{path.strip('/').replace('/', '_')}",
            summary=summary,
            openapi_extra=doc,
        )

    add("/login", session.login_route(settings), "POST", "Sign in: a session token", d.LOGIN)
    add("/refresh-token", session.refresh_route(settings), "POST", "Refresh a token", d.REFRESH)
    add("/secure/logout", session.logout, "POST", "Sign out: end the user's tokens", d.LOGOUT)
    add(
        "/secure/datasource/upload",
        files.upload_route(settings),
        "POST",
        "Upload a CSV or ZIP",
        d.UPLOAD,
    )
    create = files.create_route(settings)
    add("/secure/datasource", create, "PUT", "Create from an upload", d.CREATE_FROM_UPLOAD)
    add("/secure/datasource", sources.get_one, "GET", "A data source", d.GET_ONE)
    add("/secure/datasource", sources.rename, "PATCH", "Rename a data source", d.RENAME)
    add("/secure/datasource", sources.delete, "DELETE", "Delete a data source", d.DELETE)
    add("/secure/datasources", sources.list_page, "GET", "Data sources, 20 a page", d.LIST)
    add("/secure/datasources/plain", sources.create_plain, "POST", "Create one", d.PLAIN)
    add(
        "/secure/datasource/detect-timeformat",
        sources.detect_route(settings),
        "POST",
        "The timeformat of time strings",
        d.DETECT,
    )
    add(
        "/secure/datasource/store-ds-schema-summary",
        sources.schema_summary,
        "GET",
        "Data sources' schemas",
        d.SUMMARY,
    )
    add(
        "/secure/datasource/distinct-metadata",
        sources.distinct_metadata,
        "POST",
        "A data source's metafield values",
        d.DISTINCT,
    )
    insert = insert_route(settings, hub)
    add("/secure/datasource/insert", insert, "PATCH", "Insert rows", d.insert(settings.max_records))
    add("/secure/data/plot", plot.plot, "POST", "A column of an asset over time", d.PLOT)
    routes.add_api_websocket_route("/stream/{room_id}", hub.serve, name="madevo_v1_stream")
    return routes
