"""`GET /v1/query` as a fast lane (dialects/lane.py): answered before FastAPI's routing, it
answers every request as the declared route does, errors, CSV, sessions and rate-limit
headers included; and another organisation's key learns nothing through it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from sensorbase.api.app import build_app
from sensorbase.dialects.lane import Lanes
from sensorbase.services import Services
from tests.conftest import Org, auth

POINTS = [
    {"source": source, "field": field, "time": 1_577_836_800 + i, "value": i / 4}
    for i in range(6)
    for source, field in (("a", "t"), ("b,c", "t"), ("a", "rh"), ("x y&z", "t"))
]
SESSION = "/console/api/session"
PASSWORD = "correct horse battery"


@pytest.fixture
async def browser(services: Services) -> AsyncIterator[httpx.AsyncClient]:
    """A second client of the same app, with its own cookie jar (tests/console/test_session.py)."""
    transport = httpx.ASGITransport(app=build_app(services, manage_lifecycle=False))
    async with httpx.AsyncClient(transport=transport, base_url="http://sensorbase") as c:
        yield c


def _queries(org: Org) -> list[tuple[dict[str, str], list[tuple[str, str]]]]:
    """(headers, parameters) of the requests both ways answer alike."""
    bucket = ("bucket", org.bucket)
    return [
        (org.headers, [bucket, ("source", "a"), ("field", "t")]),
        (org.headers, [bucket, ("source", "a"), ("mode", "latest"), ("limit", "2")]),
        (org.headers, [bucket, ("source", "a"), ("source", "x y&z"), ("field", "t")]),
        (org.headers, [bucket, ("source", "a,b"), ("field", "t"), ("aggregates", "avg,count")]),
        (org.headers, [bucket, ("source", "a"), ("every", "2s"), ("aggregates", "max")]),
        (org.headers, [bucket, ("source", "a"), ("format", "csv")]),
        ({**org.headers, "Accept": "text/csv"}, [bucket, ("source", "a"), ("field", "rh")]),
        (org.headers, [bucket, ("source", "a"), ("limit", "0"), ("mode", "nonsense")]),
        (org.headers, [bucket, ("source", "a"), ("format", "xml")]),
        (org.headers, [bucket, ("start", "yesterday-ish"), ("limit", "-1")]),
        (org.headers, [("bucket", "nowhere")]),
        ({}, [bucket]),
        (auth("sb_wrong_key"), [bucket]),
        (org.headers, [bucket, ("source", "x y&z"), ("field", "t")]),
    ]


async def test_the_lane_answers_as_the_declared_route(services: Services, org: Org) -> None:
    laned = build_app(services, manage_lifecycle=False)
    laneless = build_app(services, manage_lifecycle=False)
    laneless.fast_lanes = Lanes()  # type: ignore[attr-defined]
    assert ("GET", "/v1/query") in laned.fast_lanes
    answers = []
    for app in (laned, laneless):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://sb") as client:
            if app is laned:
                reply = await client.post(
                    "/v1/write", params={"bucket": org.bucket, "precision": "s"},
                    json=POINTS, headers=org.headers,
                )  # fmt: skip
                assert reply.status_code == 200, reply.text
            replies = [
                await client.get("/v1/query", params=params, headers=headers)
                for headers, params in _queries(org)
            ]
        answers.append(
            [
                (
                    r.status_code,
                    r.headers["content-type"],
                    r.content,
                    "X-RateLimit-Limit" in r.headers,
                    r.headers.get("www-authenticate"),
                    r.headers.get("x-content-type-options"),
                )
                for r in replies
            ]
        )
    assert answers[0] == answers[1]
    statuses = [status for status, *_ in answers[0]]
    assert statuses == [200] * 7 + [400, 400, 400, 404, 401, 401, 200]
    first = answers[0][0]
    assert first[1] == "application/json" and first[3] and first[5] == "nosniff"
    read = httpx.Response(200, content=first[2]).json()["series"][0]["points"]
    assert [p["value"] for p in read] == [0.0, 0.25, 0.5, 0.75, 1.0, 1.25]
    two = httpx.Response(200, content=answers[0][2][2]).json()["series"]
    assert sorted(s["source"] for s in two) == ["a", "x y&z"]  # a repeated name, escaped
    assert answers[0][5][1] == answers[0][6][1] == "text/csv; charset=utf-8"
    problems = httpx.Response(400, content=answers[0][7][2]).json()
    assert answers[0][7][1] == "application/problem+json"
    assert {e["field"] for e in problems["errors"]} >= {"limit"}
    assert answers[0][11][4] == "Bearer"


async def test_a_session_reads_without_a_csrf_token_and_writes_with_one(
    client: httpx.AsyncClient, browser: httpx.AsyncClient, org: Org
) -> None:
    """The console's cookie: a GET query is a read (no CSRF token), the lane's write is not."""
    body = {"email": "ana@acme.test", "password": PASSWORD, "role": "admin"}
    assert (await client.post("/v1/users", json=body, headers=org.headers)).status_code == 201
    signed = await browser.post(SESSION, json={"email": body["email"], "password": PASSWORD})
    assert signed.status_code == 200, signed.text
    csrf = signed.json()["csrf"]
    write = {"bucket": org.bucket, "precision": "s"}
    refused = await browser.post("/v1/write", params=write, json=POINTS[:1])
    assert refused.status_code == 403, refused.text
    taken = await browser.post(
        "/v1/write", params=write, json=POINTS[:1], headers={"X-CSRF-Token": csrf}
    )
    assert taken.status_code == 200, taken.text
    read = await browser.get("/v1/query", params={"bucket": org.bucket, "source": "a"})
    assert read.status_code == 200, read.text
    assert read.json()["series"][0]["points"][0]["value"] == 0.0


async def test_another_organisation_learns_nothing_through_the_lane(
    client: httpx.AsyncClient, org: Org, other_org: Org
) -> None:
    reply = await client.post(
        "/v1/write", params={"bucket": org.bucket, "precision": "s"},
        json=POINTS, headers=org.headers,
    )  # fmt: skip
    assert reply.status_code == 200
    theirs = await client.get(
        "/v1/query", params={"bucket": org.bucket, "source": "a"}, headers=other_org.headers
    )
    missing = await client.get(
        "/v1/query", params={"bucket": "no-such-bucket", "source": "a"}, headers=other_org.headers
    )
    assert theirs.status_code == missing.status_code == 404
    assert theirs.json()["detail"].replace(org.bucket, "?") == missing.json()["detail"].replace(
        "no-such-bucket", "?"
    )
