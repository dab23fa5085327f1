"""InfluxDB's writes (`POST /write`, `POST /api/v2/write`) as fast lanes (dialects/lane.py):
answered before FastAPI's routing, every request gets the reply the declared route gives,
errors in InfluxDB's shapes, its headers, partial writes and every way of sending the key."""

from __future__ import annotations

import base64
import gzip

import httpx

from sensorbase.api.app import build_app
from sensorbase.dialects.lane import Lanes
from sensorbase.services import Services
from tests.conftest import Org

T0 = 1_700_000_000
GOOD = f"cpu,host=a usage=1.5 {T0}\ncpu,host=b usage=2.5 {T0}\n".encode()
PARTLY = f"cpu,host=a usage=3.5 {T0 + 1}\ncpu,host=a usage=x1 {T0 + 2}\n".encode()
Request = tuple[str, dict[str, str], dict[str, str], bytes]  # path, params, headers, body


def _requests(org: Org, other: Org) -> list[Request]:
    token = {"Authorization": f"Token {org.admin}"}
    basic = base64.b64encode(f"any:{org.admin}".encode()).decode()
    v1 = {"db": org.bucket, "precision": "s"}
    v2 = {"bucket": org.bucket, "precision": "s"}
    return [
        ("/write", v1, token, GOOD),
        ("/write", {**v1, "u": "any", "p": org.admin}, {}, GOOD),
        ("/write", v1, {"Authorization": f"Basic {basic}"}, GOOD),
        ("/write", v1, token, PARTLY),
        ("/write", v1, {**token, "Content-Encoding": "gzip"}, gzip.compress(GOOD)),
        ("/write", v1, token, b""),
        ("/write", {"precision": "s"}, token, GOOD),
        ("/write", {**v1, "precision": "fortnight"}, token, GOOD),
        ("/write", {**v1, "db": "nowhere"}, token, GOOD),
        ("/write", v1, {}, GOOD),
        ("/write", v1, {"Authorization": "Token sb_wrong"}, GOOD),
        ("/write", v1, {"Authorization": "Basic !!"}, GOOD),
        ("/api/v2/write", v2, token, GOOD),
        ("/api/v2/write", {**v2, "org": org.key}, token, GOOD),
        ("/api/v2/write", {**v2, "orgID": other.key}, token, GOOD),
        ("/api/v2/write", v2, token, PARTLY),
        ("/api/v2/write", v2, token, b""),
        ("/api/v2/write", {"precision": "s"}, token, GOOD),
        ("/api/v2/write", {**v2, "precision": "n"}, token, GOOD),
        ("/api/v2/write", v2, {"Authorization": f"Bearer {org.admin}"}, GOOD),
        ("/api/v2/write", v2, {}, GOOD),
        ("/api/v2/write", {**v2, "bucket": other.bucket}, token, GOOD),
    ]


async def test_the_lanes_answer_as_the_declared_routes(
    services: Services, org: Org, other_org: Org
) -> None:
    laned = build_app(services, manage_lifecycle=False)
    laneless = build_app(services, manage_lifecycle=False)
    laneless.fast_lanes = Lanes()  # type: ignore[attr-defined]
    assert {("POST", "/write"), ("POST", "/api/v2/write")} <= laned.fast_lanes.keys()
    answers = []
    for app in (laned, laneless):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://sb") as client:
            replies = [
                await client.post(path, params=params, headers=headers, content=body)
                for path, params, headers, body in _requests(org, other_org)
            ]
            read = await client.post(
                "/v1/query",
                json={"bucket": org.bucket, "source": ["cpu,host=a"], "field": "usage"},
                headers=org.headers,
            )
        answers.append(
            (
                [
                    (
                        r.status_code,
                        r.content,
                        r.headers.get("content-type"),
                        r.headers.get("x-influxdb-version"),
                        r.headers.get("x-influxdb-error"),
                        "x-ratelimit-limit" in r.headers,
                        r.headers.get("x-content-type-options"),
                    )
                    for r in replies
                ],
                [(p["time"], p["value"]) for p in read.json()["series"][0]["points"]],
            )
        )
    assert answers[0] == answers[1]
    replies, points = answers[0]
    assert [r[0] for r in replies] == [
        *(204, 204, 204, 400, 204, 204, 400, 400, 404, 401, 401, 401),
        *(204, 204, 404, 400, 400, 400, 400, 204, 401, 404),
    ]
    assert all(r[3] == "1.8.10" and r[6] == "nosniff" for r in replies)
    partial = replies[3]
    assert b"partial write" in partial[1] and b"dropped=1" in partial[1] and partial[4]
    assert replies[0][5]  # rate-limit headers on a write's reply
    assert points == [("2023-11-14T22:13:20.000000Z", 1.5), ("2023-11-14T22:13:21.000000Z", 3.5)]
