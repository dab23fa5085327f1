"""api/problems.py: what no dialect's route answers is an RFC 9457 problem, and rendering one
changes no error (an HTTP status the error tree has no class for is given to the renderer)."""

from __future__ import annotations

import httpx
from fastapi import FastAPI
from starlette.exceptions import HTTPException

from sensorbase.api import problems
from sensorbase.errors import SensorbaseError


async def test_an_http_error_without_a_class_keeps_its_status_and_changes_no_error() -> None:
    app = FastAPI()
    problems.install(app)

    @app.get("/teapot")
    async def teapot() -> None:
        raise HTTPException(418, "short and stout")

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        reply = await client.get("/teapot")
        missing = await client.get("/nowhere")
        wrong = await client.post("/teapot")
    assert reply.status_code == 418
    assert reply.headers["content-type"] == "application/problem+json"
    assert reply.json() == {
        "type": "https://sensorbase.dev/problems/internal",
        "title": "Error",
        "status": 418,
        "detail": "short and stout",
    }
    assert SensorbaseError.status == 500 and SensorbaseError().status == 500
    assert missing.status_code == 404 and missing.json()["detail"] == "no route GET /nowhere"
    assert wrong.status_code == 405 and wrong.headers["allow"] == "GET"
