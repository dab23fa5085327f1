"""Retention, summaries and range deletes through the native API (docs/lifecycle.md), on every
backend: over HTTP into the ASGI app, with the store's own retention pass and (SQLite) folds."""

from __future__ import annotations

import itertools
from typing import Any

import httpx
import pytest

from sensorbase.services import Services
from sensorbase.times import format_us, now_us, parse_iso_us
from tests.conftest import Org, auth

DAY = 86_400_000_000
T0 = parse_iso_us("2026-01-01T00:00:00Z")


async def write(
    client: httpx.AsyncClient, org: Org, bucket: str, pts: list[dict[str, Any]]
) -> None:
    reply = await client.post(
        "/v1/write", json={"bucket": bucket, "points": pts}, headers=org.headers
    )
    assert reply.status_code == 200, reply.text


async def points(
    client: httpx.AsyncClient, org: Org, bucket: str, **params: Any
) -> dict[tuple[str, str], list[float]]:
    reply = await client.get(
        "/v1/query", params={"bucket": bucket, "limit": 10_000, **params}, headers=org.headers
    )
    assert reply.status_code == 200, reply.text
    return {
        (s["source"], s["field"]): [p["value"] for p in s["points"]] for s in reply.json()["series"]
    }


def fold(services: Services) -> None:
    fold_points = getattr(services.store, "fold_points", None)
    if fold_points is not None:  # SQLite: the write log into chunks
        fold_points()


async def test_a_range_delete_removes_its_points_only_and_a_later_fold_keeps_them_gone(
    client: httpx.AsyncClient, org: Org, services: Services
) -> None:
    pts = [
        {
            "source": src,
            "fields": {"t": float(i), "h": -float(i)},
            "time": format_us(T0 + i * 60_000_000),
        }
        for src in ("a", "b")
        for i in range(100)
    ]
    await write(client, org, org.bucket, pts[:150])
    fold(services)  # some in chunks, the rest still in the write log
    await write(client, org, org.bucket, pts[150:])
    reply = await client.delete(
        "/v1/points",
        params={"bucket": org.bucket, "source": "a", "field": "t",
                "start": format_us(T0 + 10 * 60_000_000), "end": format_us(T0 + 90 * 60_000_000)},
        headers=org.headers,
    )  # fmt: skip
    assert reply.status_code == 200, reply.text
    assert reply.json()["series"] == [{"source": "a", "field": "t"}]
    expected = [float(i) for i in range(100) if not 10 <= i < 90]
    for _ in range(2):
        found = await points(client, org, org.bucket)
        assert found[("a", "t")] == expected
        assert found[("a", "h")] == [-float(i) for i in range(100)]
        assert found[("b", "t")] == [float(i) for i in range(100)]
        fold(services)
    # A write after the delete stays.
    await write(
        client,
        org,
        org.bucket,
        [{"source": "a", "fields": {"t": 42.5}, "time": format_us(T0 + 42 * 60_000_000)}],
    )
    found = await points(client, org, org.bucket, source="a", field="t")
    assert 42.5 in found[("a", "t")] and len(found[("a", "t")]) == 21


async def test_a_delete_refusal_names_every_bad_parameter_and_deletes_nothing(
    client: httpx.AsyncClient, org: Org
) -> None:
    await write(
        client, org, org.bucket, [{"source": "a", "fields": {"t": 1.0}, "time": format_us(T0)}]
    )
    reply = await client.delete(
        "/v1/points", params={"start": "yesterday", "color": "red"}, headers=org.headers
    )
    assert reply.status_code == 400, reply.text
    named = sorted(e["field"] for e in reply.json()["errors"])
    assert named == ["bucket", "color", "end", "start"]
    reply = await client.delete(
        "/v1/points",
        params={"bucket": org.bucket, "start": format_us(T0 + 1), "end": format_us(T0)},
        headers=org.headers,
    )
    assert reply.status_code == 400 and reply.json()["errors"][0]["field"] == "end"
    reply = await client.delete(
        "/v1/points",
        params={
            "bucket": org.bucket,
            "source": ["a", "ghost"],
            "start": format_us(T0),
            "end": format_us(T0 + DAY),
        },
        headers=org.headers,
    )
    assert reply.status_code == 404 and "ghost" in reply.text
    assert (await points(client, org, org.bucket))[("a", "t")] == [1.0]


async def test_another_organisation_can_neither_delete_nor_learn_of_the_data(
    client: httpx.AsyncClient, org: Org, other_org: Org
) -> None:
    await write(
        client, org, org.bucket, [{"source": "a", "fields": {"t": 1.0}, "time": format_us(T0)}]
    )
    window = {"start": format_us(T0 - DAY), "end": format_us(T0 + DAY)}
    theirs = await client.delete(
        "/v1/points", params={"bucket": org.bucket, **window}, headers=other_org.headers
    )
    nothing = await client.delete(
        "/v1/points", params={"bucket": "no-such", **window}, headers=other_org.headers
    )
    assert theirs.status_code == nothing.status_code == 404
    assert theirs.json()["detail"].replace(org.bucket, "X") == nothing.json()["detail"].replace(
        "no-such", "X"
    )
    changed = await client.patch(
        f"/v1/buckets/{org.bucket}", json={"retention": "1d"}, headers=other_org.headers
    )
    assert changed.status_code == 404
    reader = await org.new_key(client, ["data:read"])
    refused = await client.delete(
        "/v1/points", params={"bucket": org.bucket, **window}, headers=auth(reader["key"])
    )
    assert refused.status_code == 403
    assert (await points(client, org, org.bucket))[("a", "t")] == [1.0]
    bucket = (await client.get(f"/v1/buckets/{org.bucket}", headers=org.headers)).json()
    assert bucket["retention"] is None


async def test_expired_points_are_hidden_before_the_job_runs_and_gone_after(
    client: httpx.AsyncClient, org: Org, services: Services
) -> None:
    made = await client.post(
        "/v1/buckets", json={"key": "short", "retention": "2d"}, headers=org.headers
    )
    assert made.status_code == 201, made.text
    assert (made.json()["retention"], made.json()["keep_summaries"]) == ("2d", False)
    now = now_us()
    times = [now - 5 * DAY + i * DAY // 4 for i in range(20)]  # 5 days ago .. now
    await write(
        client,
        org,
        "short",
        [
            {"source": "s", "fields": {"v": float(i)}, "time": format_us(t)}
            for i, t in enumerate(times)
        ],
    )
    fold(services)
    kept = [float(i) for i, t in enumerate(times) if t >= now_us() - 2 * DAY + 60_000_000]
    found = (await points(client, org, "short"))[("s", "v")]
    assert found[-len(kept) :] == kept and len(found) <= len(kept) + 1
    latest = await client.get(
        "/v1/query", params={"bucket": "short", "mode": "latest", "limit": 100}, headers=org.headers
    )
    assert [p["value"] for p in latest.json()["series"][0]["points"]] == found[::-1]
    done = await services.retention.run_once()
    assert done.ran and done.points >= len(times) - len(found)
    assert (await points(client, org, "short"))[("s", "v")] == found
    count = await client.get(
        "/v1/query",
        params={"bucket": "short", "mode": "aggregate", "aggregate": "count"},
        headers=org.headers,
    )
    assert count.json()["series"][0]["aggregates"] == {"count": len(found)}
    assert "summaries_until" not in count.json()["series"][0]
    for every, start in itertools.product(("1d", "1mo"), (6 * DAY, DAY)):  # fixed, calendar
        counted = await client.get(
            "/v1/query",
            params={"bucket": "short", "mode": "aggregate", "aggregate": "count", "every": every,
                    "start": format_us(now - start), "end": format_us(now + DAY)},
            headers=org.headers,
        )  # fmt: skip
        expected = sum(1 for t in times if t >= now - start) if start == DAY else len(found)
        assert sum(b["count"] for b in counted.json()["series"][0]["buckets"]) == expected


async def test_summaries_answer_aggregates_over_expired_ranges(
    client: httpx.AsyncClient, org: Org, services: Services
) -> None:
    made = await client.post(
        "/v1/buckets",
        json={"key": "kept", "retention": "1d", "keep_summaries": True},
        headers=org.headers,
    )
    assert made.status_code == 201, made.text
    now = now_us()
    times = [now - 3 * DAY + i * 3_600_000_000 + 1_800_000_000 for i in range(72)]
    values = [float((i * 7) % 23) for i in range(72)]
    await write(
        client,
        org,
        "kept",
        [
            {"source": "s", "fields": {"v": v}, "time": format_us(t)}
            for v, t in zip(values, times, strict=True)
        ],
    )
    fold(services)
    done = await services.retention.run_once(now)
    assert done.points == sum(1 for t in times if t < now - DAY)
    whole = await client.get(
        "/v1/query",
        params={"bucket": "kept", "mode": "aggregate",
                "aggregate": "count,sum,min,max,first,last,avg",
                "start": format_us(now - 4 * DAY), "end": format_us(now + 1)},
        headers=org.headers,
    )  # fmt: skip
    series = whole.json()["series"][0]
    assert series["aggregates"] == {
        "count": 72, "sum": sum(values), "min": min(values), "max": max(values),
        "first": values[0], "last": values[-1], "avg": pytest.approx(sum(values) / 72),
    }  # fmt: skip
    assert parse_iso_us(series["summaries_until"]) <= now - DAY
    raw = (await points(client, org, "kept"))[("s", "v")]
    assert raw == [v for v, t in zip(values, times, strict=True) if t >= now - DAY]
    daily = await client.get(
        "/v1/query",
        params={"bucket": "kept", "mode": "aggregate", "aggregate": "count", "every": "1d",
                "start": format_us(now - 4 * DAY), "end": format_us(now + 1)},
        headers=org.headers,
    )  # fmt: skip
    assert sum(b["count"] for b in daily.json()["series"][0]["buckets"]) == 72
    # Taken off: the bucket keeps everything again (what expired stays expired).
    changed = await client.patch("/v1/buckets/kept", json={"retention": None}, headers=org.headers)
    assert changed.status_code == 200 and changed.json()["retention"] is None
    assert changed.json()["keep_summaries"] is True
