"""GET|POST /v1/query over HTTP: ranges, relative periods, pagination, latest, aggregates, CSV."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from sensorbase.times import format_us, now_us, parse_iso_us
from tests.conftest import Org

HOUR = 3_600_000_000


async def write(client: httpx.AsyncClient, org: Org, pts: list[dict[str, Any]]) -> None:
    reply = await client.post(
        "/v1/write", json={"bucket": org.bucket, "points": pts}, headers=org.headers
    )
    assert reply.status_code == 200, reply.text


async def query(client: httpx.AsyncClient, org: Org, **params: Any) -> dict[str, Any]:
    reply = await client.get(
        "/v1/query", params={"bucket": org.bucket, **params}, headers=org.headers
    )
    assert reply.status_code == 200, reply.text
    return dict(reply.json())


@pytest.fixture
async def hourly(client: httpx.AsyncClient, org: Org) -> list[int]:
    """48 hourly points of two fields from 2026-03-28T00:00Z (Paris changes to DST on the 29th)."""
    start = parse_iso_us("2026-03-28T00:00:00Z")
    times = [start + i * HOUR for i in range(48)]
    pts = [
        {"source": "st", "fields": {"t": float(i), "h": 100.0 - i}, "time": format_us(t)}
        for i, t in enumerate(times)
    ]
    await write(client, org, pts)
    return times


async def test_absolute_range_is_start_inclusive_end_exclusive(
    client: httpx.AsyncClient, org: Org, hourly: list[int]
) -> None:
    body = await query(client, org, field="t", start=format_us(hourly[2]), end=format_us(hourly[5]))
    [series] = body["series"]
    assert [p["value"] for p in series["points"]] == [2.0, 3.0, 4.0]
    assert series["points"][0]["time"] == "2026-03-28T02:00:00.000000Z"


async def test_epoch_bounds_and_offsets(
    client: httpx.AsyncClient, org: Org, hourly: list[int]
) -> None:
    by_seconds = await query(
        client, org, field="t", start=str(hourly[1] // 1_000_000), end="2026-03-28T04:00:00+01:00"
    )
    assert [p["value"] for p in by_seconds["series"][0]["points"]] == [1.0, 2.0]


async def test_relative_period(client: httpx.AsyncClient, org: Org) -> None:
    now = now_us()
    await write(
        client,
        org,
        [
            {"source": "r", "field": "v", "value": 1, "time": format_us(now - 10 * HOUR)},
            {"source": "r", "field": "v", "value": 2, "time": format_us(now - HOUR // 2)},
        ],
    )
    body = await query(client, org, last="6h")
    assert [p["value"] for p in body["series"][0]["points"]] == [2.0]


async def test_cursor_pagination_walks_every_point_once(
    client: httpx.AsyncClient, org: Org, hourly: list[int]
) -> None:
    seen: list[tuple[str, float]] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 10}
        if cursor:
            params["cursor"] = cursor
        body = await query(client, org, **params)
        pages += 1
        for s in body["series"]:
            seen.extend((s["field"], p["value"]) for p in s["points"])
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert pages == 10
    assert len(seen) == 96 and len(set(seen)) == 96


async def test_descending_order_and_limit(
    client: httpx.AsyncClient, org: Org, hourly: list[int]
) -> None:
    body = await query(client, org, field="t", order="desc", limit=3)
    assert [p["value"] for p in body["series"][0]["points"]] == [47.0, 46.0, 45.0]
    assert body["next_cursor"] is not None
    more = await query(client, org, field="t", order="desc", limit=3, cursor=body["next_cursor"])
    assert [p["value"] for p in more["series"][0]["points"]] == [44.0, 43.0, 42.0]


async def test_latest_is_by_timestamp_not_by_arrival(client: httpx.AsyncClient, org: Org) -> None:
    await write(
        client, org, [{"source": "l", "field": "v", "value": 2, "time": "2026-01-02T00:00:00Z"}]
    )
    await write(
        client, org, [{"source": "l", "field": "v", "value": 1, "time": "2026-01-01T00:00:00Z"}]
    )
    body = await query(client, org, mode="latest")
    assert body["series"][0]["points"] == [{"time": "2026-01-02T00:00:00.000000Z", "value": 2.0}]
    body = await query(client, org, mode="latest", limit=2)
    assert [p["value"] for p in body["series"][0]["points"]] == [2.0, 1.0]


async def test_whole_range_aggregates(
    client: httpx.AsyncClient, org: Org, hourly: list[int]
) -> None:
    body = await query(client, org, field="t", aggregate="min,max,avg,sum,count,first,last")
    assert body["series"][0]["aggregates"] == {
        "min": 0.0,
        "max": 47.0,
        "avg": 23.5,
        "sum": 1128.0,
        "count": 48,
        "first": 0.0,
        "last": 47.0,
    }


async def test_fixed_buckets(client: httpx.AsyncClient, org: Org, hourly: list[int]) -> None:
    body = await query(
        client,
        org,
        field="t",
        aggregate=["min", "max", "first", "last"],
        every="6h",
        start="2026-03-28T00:00:00Z",
        end="2026-03-28T12:00:00Z",
    )
    assert body["series"][0]["buckets"] == [
        {"time": "2026-03-28T00:00:00.000000Z", "min": 0.0, "max": 5.0, "first": 0.0, "last": 5.0},
        {
            "time": "2026-03-28T06:00:00.000000Z",
            "min": 6.0,
            "max": 11.0,
            "first": 6.0,
            "last": 11.0,
        },
    ]


async def test_day_buckets_honour_the_time_zone_across_dst(
    client: httpx.AsyncClient, org: Org, hourly: list[int]
) -> None:
    body = await query(client, org, field="t", aggregate="count", every="1d", tz="Europe/Paris")
    buckets = body["series"][0]["buckets"]
    # Paris days: the 28th starts 2026-03-27T23:00Z; the 29th (23 hours) at 28T23:00Z;
    # the 30th at 29T22:00Z.
    assert [(b["time"], b["count"]) for b in buckets] == [
        ("2026-03-27T23:00:00.000000Z", 23),
        ("2026-03-28T23:00:00.000000Z", 23),
        ("2026-03-29T22:00:00.000000Z", 2),
    ]
    utc = await query(client, org, field="t", aggregate="count", every="1d")
    assert [b["count"] for b in utc["series"][0]["buckets"]] == [24, 24]


async def test_csv_output(client: httpx.AsyncClient, org: Org, hourly: list[int]) -> None:
    reply = await client.get(
        "/v1/query",
        params={"bucket": org.bucket, "field": "t", "limit": 2, "format": "csv"},
        headers=org.headers,
    )
    assert reply.headers["content-type"].startswith("text/csv")
    assert reply.text.splitlines() == [
        "bucket,source,field,time,value",
        "farm,st,t,2026-03-28T00:00:00.000000Z,0.0",
        "farm,st,t,2026-03-28T01:00:00.000000Z,1.0",
    ]
    reply = await client.get(
        "/v1/query",
        params={"bucket": org.bucket, "field": "t", "aggregate": "max"},
        headers={**org.headers, "Accept": "text/csv"},
    )
    assert reply.text.splitlines() == ["bucket,source,field,time,max", "farm,st,t,,47.0"]


async def test_post_body_equals_get_parameters(
    client: httpx.AsyncClient, org: Org, hourly: list[int]
) -> None:
    params = {"bucket": org.bucket, "source": "st", "field": "h", "limit": 5, "order": "desc"}
    got = await client.get("/v1/query", params=params, headers=org.headers)
    posted = await client.post("/v1/query", json=params, headers=org.headers)
    assert posted.status_code == 200
    assert got.json() == posted.json()


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"start": "yesterday"}, "start"),
        ({"start": "2026-01-02T00:00:00Z", "end": "2026-01-01T00:00:00Z"}, "end"),
        ({"last": "6 fortnights"}, "last"),
        ({"aggregate": "mode"}, "aggregate"),
        ({"aggregate": "max", "every": "3q"}, "every"),
        ({"aggregate": "max", "every": "1d", "tz": "Mars/Olympus"}, "tz"),
        ({"limit": 0}, "limit"),
        ({"limit": 10_000_000}, "limit"),
        ({"order": "sideways"}, "order"),
        ({"cursor": "garbage!"}, "cursor"),
        ({"mode": "everything"}, "mode"),
        ({"format": "xml"}, "format"),
    ],
)
async def test_bad_parameters_are_named(
    client: httpx.AsyncClient, org: Org, hourly: list[int], params: dict[str, Any], field: str
) -> None:
    reply = await client.get(
        "/v1/query", params={"bucket": org.bucket, **params}, headers=org.headers
    )
    assert reply.status_code == 400, reply.text
    assert field in [e.get("field") for e in reply.json()["errors"]]


async def test_too_many_buckets_is_refused(
    services: Any, client: httpx.AsyncClient, org: Org, hourly: list[int]
) -> None:
    services.query.max_result_points = 10
    reply = await client.get(
        "/v1/query",
        params={"bucket": org.bucket, "aggregate": "max", "every": "1m"},
        headers=org.headers,
    )
    assert reply.status_code == 400
    assert reply.json()["errors"][0]["field"] == "every"


async def test_too_many_calendar_buckets_is_refused(
    services: Any, client: httpx.AsyncClient, org: Org, hourly: list[int]
) -> None:
    services.query.max_result_points = 1  # the 48 hours span two days
    reply = await client.get(
        "/v1/query",
        params={"bucket": org.bucket, "field": "t", "aggregate": "max", "every": "1d"},
        headers=org.headers,
    )
    assert reply.status_code == 400, reply.text
    assert reply.json()["errors"][0]["field"] == "every"


async def test_calendar_buckets_are_cut_to_the_range(
    client: httpx.AsyncClient, org: Org, hourly: list[int]
) -> None:
    """A bucket is labelled where its whole day starts, and counts only what lies in range."""
    body = await query(
        client,
        org,
        field="t",
        aggregate="count,min,max",
        every="1d",
        start="2026-03-28T05:00:00Z",
        end="2026-03-29T03:00:00Z",
    )
    assert [(b["time"], b["count"], b["min"], b["max"]) for b in body["series"][0]["buckets"]] == [
        ("2026-03-28T00:00:00.000000Z", 19, 5.0, 23.0),
        ("2026-03-29T00:00:00.000000Z", 3, 24.0, 26.0),
    ]


async def test_a_source_key_holding_a_comma_is_selected_by_the_post_form(
    client: httpx.AsyncClient, org: Org
) -> None:
    """An InfluxDB series key (`cpu,host=a`) is one source: a GET's `source` is a
    comma-separated list, so it splits there, and a POST's JSON list takes each name whole."""
    at = format_us(now_us() - 60_000_000)
    await write(client, org, [{"source": "cpu,host=a", "field": "usage", "value": 7, "time": at}])
    body = {"bucket": org.bucket, "source": ["cpu,host=a"], "field": ["usage"]}
    posted = await client.post("/v1/query", json=body, headers=org.headers)
    assert posted.status_code == 200, posted.text
    [series] = posted.json()["series"]
    assert (series["source"], series["points"][0]["value"]) == ("cpu,host=a", 7.0)
    split = await client.get(
        "/v1/query", params={"bucket": org.bucket, "source": "cpu,host=a"}, headers=org.headers
    )
    assert split.status_code == 404  # two names, `cpu` and `host=a`: neither is a source
    as_text = await client.post(
        "/v1/query", json={"bucket": org.bucket, "source": "cpu,host=a"}, headers=org.headers
    )
    assert as_text.status_code == 404  # (a string is a list as in a GET)
