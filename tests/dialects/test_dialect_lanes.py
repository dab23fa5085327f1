"""The vendor dialects' ingest routes as fast lanes (dialects/lane.py): answered before
FastAPI's routing, every request gets the reply its declared route gives, byte for byte (but
for what the server mints anew each time), errors in the dialect's shape and headers
included, and the points stored are the same. (InfluxDB's: test_influx_lanes.py.)"""

from __future__ import annotations

import gzip
import json
import re
from typing import Any

import httpx
import pytest

from sensorbase.api.app import build_app
from sensorbase.dialects.lane import Lanes
from sensorbase.services import Services
from tests.conftest import Org
from tests.dialects.test_dakkio import BUCKET, CURL_BODY, SOURCE, dakkio, dakkio_key  # noqa: F401
from tests.dialects.test_databoom import DEVICE, HISTORY_SAMPLE, LIST_SAMPLE, device  # noqa: F401
from tests.dialects.test_datacooee import BASE, DOC_TEMPLATE, DOC_UPLOAD, dc_headers, make_input
from tests.dialects.test_diagrams import (
    CURL_FORM,
    DOC_BODY,
    access_token,
    app_key,
    push_url,
)
from tests.dialects.test_madevo import INSERT, datasource, sample, writer

Request = tuple[str, dict[str, str], bytes]  # path, headers, body
CREATED_AT = re.compile(rb'"createdAt":"[^"]*"')


async def _answers(
    services: Services, requests: list[Request], read: dict[str, Any], headers: dict[str, str]
) -> list[Any]:
    """Each app's replies to `requests` (status, body, the headers a client reads) and then
    the points `read` (a POST /v1/query body) finds; the laned app first."""
    laned = build_app(services, manage_lifecycle=False)
    laneless = build_app(services, manage_lifecycle=False)
    laneless.fast_lanes = Lanes()  # type: ignore[attr-defined]
    answers = []
    for app in (laned, laneless):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://sb") as client:
            replies = [
                await client.post(path, headers=sent, content=body) for path, sent, body in requests
            ]
            points = await client.post("/v1/query", json=read, headers=headers)
        answers.append(
            (
                [
                    (
                        r.status_code,
                        CREATED_AT.sub(b'"createdAt":"(minted)"', r.content),
                        r.headers.get("content-type"),
                        r.headers.get("retry-after"),
                        "x-ratelimit-limit" in r.headers,
                        r.headers.get("x-content-type-options"),
                    )
                    for r in replies
                ],
                points.json(),
            )
        )
    return answers


@pytest.mark.usefixtures("dakkio")  # the document's bucket and data source
async def test_dakkio_ingest_lanes_answer_as_the_declared_routes(
    services: Services, client: httpx.AsyncClient, org: Org, other_org: Org
) -> None:
    key = org.admin
    sent = {"X-API-Key": key, "Content-Type": "application/json"}
    read_only = {**sent, "X-API-Key": await dakkio_key(client, org, "read")}
    written = {**sent, "X-API-Key": await dakkio_key(client, org, "write")}  # dakkio_w_...

    def one(**changes: Any) -> bytes:
        return json.dumps({**CURL_BODY, **changes}).encode()

    def batch(points: list[dict[str, Any]]) -> bytes:
        plain = [{k: v for k, v in CURL_BODY.items() if k != "bucketId"} | p for p in points]
        return json.dumps({"bucketId": BUCKET, "dataPoints": plain}).encode()

    three = [{"timestamp": f"2024-01-16T00:00:0{i}Z"} for i in range(3)]
    requests: list[Request] = [
        ("/api/data", sent, one()),
        ("/api/data", written, one(timestamp="2024-01-15T10:31:00.250+02:00")),
        ("/api/data", {**sent, "Content-Encoding": "gzip"}, gzip.compress(one(values={"t": 1}))),
        ("/api/data", sent, one(timestamp="yesterday", values={"t": "warm"})),
        ("/api/data", sent, one(dataSourceId="nobody")),
        ("/api/data", sent, one(bucketId="nowhere")),
        ("/api/data", sent, one(bucketId=other_org.bucket)),
        ("/api/data", {"Content-Type": "application/json"}, one()),
        ("/api/data", {**sent, "X-API-Key": "sb_wrong_key"}, one()),
        ("/api/data", read_only, one()),
        ("/api/data", {**sent, "Content-Type": "text/plain"}, one()),
        ("/api/data", sent, b'{"bucketId": '),
        ("/api/data", sent, b"[1, 2]"),
        ("/api/data/batch", sent, batch(three)),
        ("/api/data/batch", sent, batch([{"timestamp": "2024-01-16T00:01:00Z"},
                                         {"timestamp": "then"}, {"values": {"t": None}}])),
        ("/api/data/batch", sent, batch([{"dataSourceId": "a"}, {}, {"dataSourceId": "b"}])),
        ("/api/data/batch", sent, batch([{}] * 1001)),
        ("/api/data/batch", sent, json.dumps({"bucketId": BUCKET}).encode()),
        ("/api/data/batch", {}, batch([{}])),
    ]  # fmt: skip
    read = {"bucket": BUCKET, "source": SOURCE, "limit": 100}
    laned, laneless = await _answers(services, requests, read, org.headers)
    assert laned == laneless
    replies, points = laned
    assert [r[0] for r in replies] == [
        *(201, 201, 201, 400, 404, 404, 404, 401, 401, 403, 415, 400, 400),
        *(201, 400, 404, 400, 400, 401),
    ]
    assert all(r[4] and r[5] == "nosniff" for r in replies)  # rate-limit and safety headers
    assert b"Data source not found" in replies[15][1] and b'"dataPoints",0' in replies[15][1]
    times = {p["time"] for s in points["series"] for p in s["points"]}
    assert "2024-01-15T10:30:00.000000Z" in times and "2024-01-15T08:31:00.250000Z" in times
    assert {f"2024-01-16T00:00:0{i}.000000Z" for i in range(3)} <= times
    assert "2024-01-16T00:01:00.000000Z" not in times  # the refused batch stored nothing


@pytest.mark.usefixtures("device")
async def test_the_databoom_push_lane_answers_as_the_declared_route(
    services: Services, org: Org, other_org: Org
) -> None:
    bearer = {"Authorization": f"Bearer {org.admin}", "Content-Type": "application/json"}

    def push(**changes: Any) -> bytes:
        return json.dumps({**LIST_SAMPLE, **changes}).encode()

    requests: list[Request] = [
        ("/v1/signals/push", bearer, push()),
        ("/v1/signals/push/", bearer, json.dumps(HISTORY_SAMPLE).encode()),
        ("/v1/signals/push", {**bearer, "Content-Encoding": "gzip"},
         gzip.compress(push(date="2020-02-05T03:00:00.000+0000"))),
        ("/v1/signals/push", bearer, push(date="someday", signals=[{"name": "x", "value": "y"}])),
        ("/v1/signals/push", bearer, push(device="nobody")),
        ("/v1/signals/push", {"Authorization": f"Bearer {other_org.admin}"}, push()),
        ("/v1/signals/push", {}, push()),
        ("/v1/signals/push", {"Authorization": "Bearer sb_wrong_key"}, push()),
        ("/v1/signals/push", {**bearer, "Content-Type": "text/csv"}, push()),
        ("/v1/signals/push", bearer, b"{"),
    ]  # fmt: skip
    read = {"bucket": org.bucket, "source": DEVICE, "limit": 100}
    laned, laneless = await _answers(services, requests, read, org.headers)
    assert laned == laneless
    replies, points = laned
    assert [r[0] for r in replies] == [200, 200, 200, 400, 404, 404, 401, 401, 415, 400]
    assert all(r[4] and r[5] == "nosniff" for r in replies if r[0] != 401)
    assert {(s["field"], p["time"]) for s in points["series"] for p in s["points"]} >= {
        ("pressure", "2020-02-05T01:00:00.000000Z"),
        ("temperature", "2020-02-05T02:59:33.000000Z"),
        ("temperature", "2020-02-05T03:00:00.000000Z"),
    }


async def test_the_datacooee_upload_lane_answers_as_the_declared_route(
    services: Services, client: httpx.AsyncClient, org: Org, other_org: Org
) -> None:
    """The upload's path holds the input (`/inputs/{input_pk}/inputdata/`): the lane takes it
    as the route does, with and without the slash; an escaped path is left to the route."""
    await make_input(client, org, "senxxxxxxxxxx")
    sent = dc_headers(org)
    upload = f"{BASE}/inputs/senxxxxxxxxxx/inputdata/"
    escaped = f"{BASE}/inputs/senxxxxxxxxx%78/inputdata/"  # the same input

    def reading(**attributes: Any) -> bytes:
        data = DOC_TEMPLATE["data"]
        return json.dumps(
            {"data": {**data, "attributes": {**data["attributes"], **attributes}}}
        ).encode()

    requests: list[Request] = [
        (upload, sent, DOC_UPLOAD.encode()),
        (upload.rstrip("/"), sent, reading(timestamp="2020-10-13T14:03:00Z")),
        (escaped, sent, reading(timestamp="2020-10-13T14:04:00Z")),
        (upload, {**sent, "organization_id": org.key, "organization-id": ""}, reading(value="x")),
        (upload, sent, reading(timestamp="13/10/2020")),
        (f"{BASE}/inputs/nobody/inputdata/", sent, DOC_UPLOAD.encode()),
        (upload, dc_headers(other_org), DOC_UPLOAD.encode()),
        (upload, {**sent, "organization-id": other_org.key}, DOC_UPLOAD.encode()),
        (upload, {**sent, "organization-api-key": ""}, DOC_UPLOAD.encode()),
        (upload, {**sent, "content-type": "text/plain"}, DOC_UPLOAD.encode()),
        (upload, sent, b"{"),
    ]  # fmt: skip
    read = {"bucket": org.bucket, "source": "senxxxxxxxxxx", "limit": 100}
    laned, laneless = await _answers(services, requests, read, org.headers)
    assert laned == laneless
    replies, points = laned
    assert [r[0] for r in replies] == [201, 201, 201, 400, 400, 404, 404, 401, 401, 415, 400]
    assert replies[0][2] == "application/vnd.api+json"
    assert [p["time"] for p in points["series"][0]["points"]] == [
        "2020-10-13T14:02:39.489000Z",
        "2020-10-13T14:03:00.000000Z",
        "2020-10-13T14:04:00.000000Z",
    ]


def test_a_lane_path_names_its_parameters() -> None:
    lane = Lanes()
    upload = object()
    lane[("POST", "/inputs/{input_pk}/inputdata/")] = upload  # type: ignore[assignment]
    assert lane.find("POST", "/inputs/sen1/inputdata/") == (upload, {"input_pk": "sen1"})
    for method, path in [
        ("GET", "/inputs/sen1/inputdata/"),
        ("POST", "/inputs//inputdata/"),
        ("POST", "/inputs/a/b/inputdata/"),
        ("POST", "/inputs/sen1/inputdata"),
        ("POST", "/inputs/sen%31/inputdata/"),
        ("POST", "/x/inputs/sen1/inputdata/"),
    ]:
        assert lane.find(method, path) is None, path


async def test_the_diagrams_push_lane_answers_as_the_declared_route(
    services: Services, client: httpx.AsyncClient, org: Org, other_org: Org
) -> None:
    token = (await access_token(client, await app_key(client, org)))["access_token"]
    reader = await app_key(client, org, ["data:read"])
    read_token = (await access_token(client, reader))["access_token"]
    sent = {"Authorization": f"bearer {token}", "Content-Type": "application/json"}
    url = push_url(org.key, org.bucket)
    good = json.dumps(json.loads(DOC_BODY)[:2]).encode()
    later = good.replace(b"08:03:51", b"08:04:00")
    requests: list[Request] = [
        (url, sent, good),
        (url, {**sent, "Content-Type": CURL_FORM}, later),
        (url, sent, DOC_BODY.encode()),
        (url, sent, b"[{"),
        (push_url(other_org.key, org.bucket), sent, good),
        (push_url(org.key, "nowhere"), sent, good),
        (url, {**sent, "Authorization": f"bearer {read_token}"}, good),
        (url, {}, good),
        (url, {**sent, "Content-Type": "text/csv"}, good),
        (push_url(org.key, org.bucket).replace("/data/", "/data/%66"), sent, good),
    ]
    read = {"bucket": org.bucket, "source": "1", "limit": 100}
    laned, laneless = await _answers(services, requests, read, org.headers)
    assert laned == laneless
    replies, points = laned
    assert [r[0] for r in replies] == [201, 201, 400, 400, 404, 404, 403, 401, 415, 404]
    assert [p["time"] for p in points["series"][0]["points"]] == [
        "2020-01-01T08:03:51.000000Z",
        "2020-01-01T08:04:00.000000Z",
    ]


async def test_the_madevo_insert_lane_answers_as_the_declared_route(
    services: Services, client: httpx.AsyncClient, org: Org, other_org: Org
) -> None:
    await datasource(client, org)
    sent = {**await writer(client, org), "Content-Type": "application/json"}

    def insert(records: list[dict[str, Any]], source: str = "67890") -> bytes:
        return json.dumps({"datasource_id": source, "data": records}).encode()

    good = sample()
    later = [{**r, "timestamp": "2025-01-01T12:05:00Z"} for r in good["data"]]
    requests: list[Request] = [
        (INSERT, sent, json.dumps(good).encode()),
        (INSERT, sent, insert(later)),
        (INSERT, sent, insert([{"timestamp": "yesterday", "metric": "temperature", "value": 1}])),
        (INSERT, sent, insert([{"timestamp": f"2025-01-02T00:00:{i % 60:02d}Z", "value": i}
                               for i in range(1001)])),
        (INSERT, sent, insert(later, source="nowhere")),
        (INSERT, {**sent, "Authorization": f"Bearer {other_org.admin}"}, insert(later)),
        (INSERT, {}, insert(later)),
        (INSERT, {**sent, "Content-Type": "text/plain"}, insert(later)),
        (INSERT, sent, b"{"),
    ]  # fmt: skip
    read = {"bucket": "67890", "source": "67890", "field": "temperature", "limit": 100}
    laned, laneless = await _answers(services, requests, read, org.headers)
    assert laned == laneless
    replies, points = laned
    assert [r[0] for r in replies] == [200, 200, 422, 413, 404, 404, 401, 415, 400]
    assert replies[0][1] == b'{"message":"Data successfully inserted","count":1}'
    assert [p["time"] for p in points["series"][0]["points"]] == [
        "2025-01-01T12:00:00.000000Z",
        "2025-01-01T12:05:00.000000Z",
    ]
