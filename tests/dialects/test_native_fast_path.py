"""The native write's fast paths (decode fast path, the app's fast lane, the committer's
batched answers) give the same answers as the general paths they shortcut."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import msgspec
import numpy as np
import pytest

from sensorbase.api.app import build_app
from sensorbase.dialects.lane import Lanes
from sensorbase.dialects.native.decode import (
    NativeBody,
    NativePoint,
    _columns,
    decode,
)
from sensorbase.dialects.native.fast_decode import decode_fast
from sensorbase.errors import InvalidInput, Problem, Unavailable
from sensorbase.model import PointBatch
from sensorbase.services import Services
from sensorbase.settings import Settings
from sensorbase.storage import open_store
from sensorbase.storage.base import WriteTx
from sensorbase.storage.write_queue import Committer
from tests.conftest import Org, auth

FLEET = [
    {"source": f"s{i % 3}", "field": "value", "time": 1_577_836_800 + i // 3, "value": i / 10}
    for i in range(12)
]


def _general(body: bytes, bucket: str | None, precision: str) -> PointBatch:
    points = msgspec.json.decode(body, type=NativeBody | list[NativePoint])
    source = None
    if not isinstance(points, list):
        bucket = points.bucket or bucket
        source = points.source
        points = points.points
    problems: list[Problem] = []
    batch, _ = _columns(list(points), bucket, source, precision, 100_000, problems)
    assert problems == []
    return batch


def _same(a: PointBatch, b: PointBatch) -> None:
    assert a.keys == b.keys
    assert np.array_equal(a.series_index, b.series_index)
    assert np.array_equal(a.time_us, b.time_us)
    assert np.array_equal(a.value, b.value)
    assert a.extra == b.extra is None


@pytest.mark.parametrize("precision", ["s", "ms", "us", "ns"])
@pytest.mark.parametrize(
    "payload",
    [
        FLEET,
        {"bucket": "farm", "points": FLEET},
        {"bucket": "farm", "source": "dev", "points": [{"field": "t", "time": 5, "value": 1}]},
        [{"bucket": "b2", "source": "x", "field": "f", "time": -7, "value": 1e300}],
    ],
)
def test_fast_decode_matches_the_general_decoder(payload: Any, precision: str) -> None:
    body = json.dumps(payload).encode()
    fast = decode_fast(body, "farm", None, precision, 100_000)
    assert fast is not None
    _same(fast, _general(body, "farm", precision))


@pytest.mark.parametrize(
    "payload",
    [
        [{"source": "a", "field": "t", "time": "2026-11-21T10:00:00Z", "value": 1}],
        [{"source": "a", "fields": {"t": 1.0}, "time": 5}],
        [{"source": "a", "field": "t", "time": 5, "value": 1, "latitude": 1, "longitude": 2}],
        [{"source": "a", "field": "t", "time": 5.5, "value": 1}],
        [{"field": "t", "time": 5, "value": 1}],  # no source anywhere: refused by the walk
        [{"source": "a", "field": "", "time": 5, "value": 1}],
        [{"source": "a", "field": "t", "time": 2**62, "value": 1}],  # overflows microseconds
        [{"source": "a", "field": "t", "time": 2**63, "value": 1}],  # past int64
        # int64's least value, whose abs is itself: its microseconds used to wrap to 0 (1970)
        [*FLEET, {"source": "a", "field": "t", "time": -(2**63), "value": 1}],
        # Several points, one of them with an empty name or no source to default to.
        [*FLEET, {"source": "a", "field": "", "time": 5, "value": 1}],
        [*FLEET, {"source": "", "field": "t", "time": 5, "value": 1}],
        [*FLEET, {"field": "t", "time": 5, "value": 1}],
    ],
)
def test_other_bodies_take_the_general_path(payload: Any) -> None:
    assert decode_fast(json.dumps(payload).encode(), "farm", None, "s", 100_000) is None


def test_general_path_still_lists_every_bad_point() -> None:
    body = json.dumps([{"field": "t", "time": 5, "value": 1}, *FLEET, {"field": "t"}]).encode()
    decoded = decode(body, ndjson=False, bucket="farm", source=None, precision="s", max_points=100)
    assert [(p.index, p.field) for p in decoded.problems] == [
        (0, "source"),
        (13, "source"),
        (13, "value"),
    ]
    assert len(decoded.batch) == len(FLEET)


@pytest.mark.parametrize("bad_rows", [[0], [3, 7]])
async def test_fast_decoded_bad_points_are_named_by_the_pipeline(
    client: httpx.AsyncClient, org: Org, bad_rows: list[int]
) -> None:
    # A fast-decoded body is not checked by the decoder: the pipeline's check names its bad
    # points (rows are items there), and the atomic write stores none of the others.
    points = [dict(p) for p in FLEET[: 1 if bad_rows == [0] else len(FLEET)]]
    for i in bad_rows:
        points[i]["time"] = -(2**40)  # before min_time
    reply = await client.post(
        "/v1/write", params={"bucket": org.bucket, "precision": "s"}, json=points,
        headers=org.headers,
    )  # fmt: skip
    assert reply.status_code == 400, reply.text
    assert [(e["index"], e["field"]) for e in reply.json()["errors"]] == [
        (i, "time") for i in bad_rows
    ]
    reply = await client.get(
        "/v1/query", params={"bucket": org.bucket, "mode": "aggregate", "aggregate": "count"},
        headers=org.headers,
    )  # fmt: skip
    assert reply.json()["series"] == []


async def test_write_through_the_fast_lane_reads_back(client: httpx.AsyncClient, org: Org) -> None:
    reply = await client.post(
        "/v1/write", params={"precision": "s", "bucket": org.bucket}, json=FLEET,
        headers=org.headers,
    )  # fmt: skip
    assert reply.status_code == 200, reply.text
    assert reply.json() == {"written": 12, "series": 3}
    assert "X-RateLimit-Limit" in reply.headers
    reply = await client.get(
        "/v1/query",
        params={"bucket": org.bucket, "source": "s1", "order": "asc"},
        headers=org.headers,
    )
    [series] = reply.json()["series"]
    assert [p["value"] for p in series["points"]] == [0.1, 0.4, 0.7, 1.0]
    assert series["points"][0]["time"] == "2020-01-01T00:00:00.000000Z"


async def test_fast_lane_errors_are_problem_details(client: httpx.AsyncClient, org: Org) -> None:
    reply = await client.post("/v1/write?precision=s", json=FLEET)
    assert reply.status_code == 401
    assert reply.headers["content-type"] == "application/problem+json"
    assert reply.headers["www-authenticate"] == "Bearer"

    bad = [{"source": "a", "field": "t", "time": 5}, {"source": "a", "time": 5, "value": 1}]
    reply = await client.post(
        "/v1/write", params={"bucket": org.bucket, "precision": "s"}, json=bad,
        headers=org.headers,
    )  # fmt: skip
    assert reply.status_code == 400
    assert [(e["index"], e["field"]) for e in reply.json()["errors"]] == [
        (0, "value"),
        (1, "field"),
    ]

    reply = await client.post(
        "/v1/write", params={"partial": "maybe"}, json=FLEET, headers=org.headers
    )
    assert reply.status_code == 400
    assert reply.json()["errors"] == [{"field": "partial", "reason": "must be true or false"}]


async def test_fast_lane_honours_partial_and_bucket_keys(
    client: httpx.AsyncClient, org: Org
) -> None:
    points = [*FLEET[:2], {"source": "a", "field": "t", "time": 5, "value": 1}]
    points[2]["time"] = -(2**40)  # before min_time: bad, the others stored
    reply = await client.post(
        "/v1/write", params={"bucket": org.bucket, "precision": "s", "partial": "true"},
        json=points, headers=org.headers,
    )  # fmt: skip
    assert reply.status_code == 200, reply.text
    assert reply.json()["written"] == 2
    assert reply.json()["rejected"][0]["index"] == 2

    other = await client.post("/v1/buckets", json={"key": "other"}, headers=org.headers)
    assert other.status_code == 201
    limited = await org.new_key(client, ["data:write"], bucket="other")
    reply = await client.post(
        "/v1/write", params={"bucket": org.bucket, "precision": "s"}, json=FLEET,
        headers=auth(limited["key"]),
    )  # fmt: skip
    assert reply.status_code == 403


async def test_concurrent_writes_share_commits_and_all_land(
    client: httpx.AsyncClient, org: Org
) -> None:
    async def one(i: int) -> int:
        point = [{"source": f"d{i % 5}", "field": "v", "time": 1_600_000_000 + i, "value": i}]
        reply = await client.post(
            "/v1/write", params={"bucket": org.bucket, "precision": "s"}, json=point,
            headers=org.headers,
        )  # fmt: skip
        return reply.status_code

    assert set(await asyncio.gather(*(one(i) for i in range(100)))) == {200}
    reply = await client.get(
        "/v1/query",
        params={"bucket": org.bucket, "mode": "aggregate", "aggregate": "count,sum"},
        headers=org.headers,
    )
    rows = [s["aggregates"] for s in reply.json()["series"]]
    assert sum(r["count"] for r in rows) == 100
    assert sum(r["sum"] for r in rows) == sum(range(100))


async def test_committer_refuses_when_full_and_isolates_failures(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    store = open_store(settings)
    store.open()
    committer = Committer(store, queue_size=2, max_points=1_000)
    committer.start()

    def failing(tx: WriteTx) -> None:
        raise InvalidInput("bad job")

    try:
        first = committer.run(lambda tx: "first")
        failed = committer.run(failing)  # the same group as `first`
        with pytest.raises(Unavailable):
            committer.run(lambda tx: 3)
        assert await first == "first"
        with pytest.raises(InvalidInput):
            await failed
        assert committer.reruns == 1
        assert await asyncio.to_thread(committer.run_sync, lambda tx: 2) == 2
    finally:
        committer.stop()
        store.close()


async def test_the_declared_route_answers_as_the_lane(services: Services, org: Org) -> None:
    """Reached through FastAPI (no lane), `POST /v1/write` answers the same; and under a root
    path the lane still takes it."""
    laneless = build_app(services, manage_lifecycle=False)
    laneless.fast_lanes = Lanes()  # type: ignore[attr-defined]
    prefixed = build_app(services, manage_lifecycle=False)
    answers = []
    for app, root in ((laneless, ""), (prefixed, "/api")):
        transport = httpx.ASGITransport(app=app, root_path=root)
        async with httpx.AsyncClient(transport=transport, base_url="http://sb") as client:
            replies = [
                await client.post(
                    f"{root}/v1/write", params={"bucket": org.bucket, "precision": "s"},
                    json=points, headers=org.headers,
                )
                for points in (FLEET, [{"source": "a", "field": "t", "time": 5}])
            ]  # fmt: skip
            replies.append(await client.post(f"{root}/v1/write", json=FLEET))
        answers.append(
            [(r.status_code, r.json(), "X-RateLimit-Limit" in r.headers) for r in replies]
        )
    assert answers[0] == answers[1]
    assert [status for status, _, _ in answers[0]] == [200, 400, 401]
    assert answers[0][0][1] == {"written": 12, "series": 3}
    assert answers[0][0][2] and answers[0][1][2]


async def test_a_client_gone_before_its_body_gets_no_answer(services: Services, org: Org) -> None:
    app = build_app(services, manage_lifecycle=False)
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": "http", "path": "/v1/write", "raw_path": b"/v1/write", "root_path": "",
        "query_string": b"precision=s", "client": ("127.0.0.1", 1), "server": ("sb", 80),
        "headers": [(b"authorization", f"Bearer {org.admin}".encode())],
    }  # fmt: skip
    await app(scope, receive, send)
    assert sent == []


@pytest.mark.parametrize(
    "body",
    [
        b'[{"source": "a", "field": "t", "time": 5, "value": 1, "value": 2}]',
        b'[{"source": "a", "field": "t", "time": 5, "value": 1},'
        b' {"source": "a", "source": "b", "field": "t", "time": 6, "value": 1}]',
        b'{"bucket": "farm", "bucket": "farm", "points": [{"source": "a", "field": "t",'
        b' "time": 5, "value": 1}]}',
        # A repeated name beside colons in names: the colons inside strings are counted too.
        b'[{"source": "a:b", "field": "t:u", "time": 5, "value": 1, "time": 6},'
        b' {"source": "a:b", "field": "t:u", "time": 7, "value": 1}]',
        # ... and beside an escaped colon, which the count would not see.
        b'[{"source": "a\\u003a", "field": "t", "time": 5, "value": 1, "value": 2}]',
    ],
)
def test_the_fast_decode_refuses_repeated_names(body: bytes) -> None:
    with pytest.raises(InvalidInput, match="appears twice"):
        decode_fast(body, "farm", None, "s", 100_000)


@pytest.mark.parametrize(
    "payload",
    [
        [
            {"source": "a:b", "field": "t:u", "time": 5, "value": 1, "bucket": None},
            {"source": "a:b", "field": "v", "time": 5, "value": 2, "bucket": "b:2"},
        ],
        {
            "bucket": "x:y",
            "source": None,
            "points": [{"source": "s:", "field": "t", "time": 5, "value": 1}] * 3,
        },
        [{"source": "a", "field": "t", "time": 5, "value": 1, "bucket": ""}] * 2,
    ],
)
def test_the_fast_decode_takes_colons_in_names_and_explicit_nulls(payload: Any) -> None:
    body = json.dumps(payload).encode()
    fast = decode_fast(body, "farm", None, "s", 100_000)
    assert fast is not None
    _same(fast, _general(body, "farm", "s"))


def test_the_fast_decode_finds_a_bucket_named_through_an_escape() -> None:
    """The fast path skips looking at points' buckets when the body never spells the name; an
    escape spells it without the bytes `"bucket"`."""
    point = b'{"source": "a", "field": "t", "time": 5, "value": 1, "\\u0062ucket": "b2"}'
    body = json.dumps(FLEET).encode()[:-1] + b", " + point + b"]"
    fast = decode_fast(body, "farm", None, "s", 100_000)
    assert fast is not None
    assert fast.keys[-1].bucket == "b2"
    _same(fast, _general(body, "farm", "s"))
