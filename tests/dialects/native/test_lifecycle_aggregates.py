"""The aggregates that read every point (median, percentiles, spread, stddev: query/reducers.py)
under retention and deletes (docs/lifecycle.md), on every backend over HTTP: an expired point
(hidden before the retention job runs, gone after) and a deleted one never count; where
summaries took part they are null, elsewhere exact."""

from __future__ import annotations

from typing import Any

import httpx
import numpy as np
import pytest

from sensorbase.services import Services
from sensorbase.times import format_us, now_us, parse_iso_us
from tests.conftest import Org
from tests.dialects.native.test_lifecycle import fold, write

DAY = 86_400_000_000
HOUR = 3_600_000_000
EXACT = "count,median,p90,spread,stddev,max"


async def aggregate(
    client: httpx.AsyncClient, org: Org, bucket: str, **params: Any
) -> dict[str, Any]:
    reply = await client.get(
        "/v1/query",
        params={"bucket": bucket, "mode": "aggregate", "aggregate": EXACT, **params},
        headers=org.headers,
    )
    assert reply.status_code == 200, reply.text
    series: dict[str, Any] = reply.json()["series"][0]
    return series


def exact(values: list[float]) -> dict[str, Any]:
    v = np.array(values)
    return {
        "count": len(v),
        "median": pytest.approx(float(np.median(v))),
        "p90": pytest.approx(float(np.percentile(v, 90))),
        "spread": pytest.approx(float(v.max() - v.min())),
        "stddev": pytest.approx(float(v.std(ddof=1))),
        "max": float(v.max()),
    }


async def test_an_expired_or_deleted_point_never_counts_in_an_exact_aggregate(
    client: httpx.AsyncClient, org: Org, services: Services
) -> None:
    made = await client.post(
        "/v1/buckets", json={"key": "exact", "retention": "2d"}, headers=org.headers
    )
    assert made.status_code == 201, made.text
    now = now_us()
    old = [now - 4 * DAY + i * HOUR for i in range(24)]  # expired: values far above the rest
    recent = [now - DAY + i * HOUR for i in range(20)]
    values = [float((i * 7) % 11) for i in range(20)]
    values[10] = 500.0  # deleted below
    pts = [{"source": "s", "fields": {"v": 1000.0 + i}, "time": format_us(t)} for i, t in
           enumerate(old)] + [{"source": "s", "fields": {"v": v}, "time": format_us(t)} for v, t in
           zip(values, recent, strict=True)]  # fmt: skip
    await write(client, org, "exact", pts[:30])
    fold(services)  # some in chunks, the rest in the write log (SQLite)
    await write(client, org, "exact", pts[30:])
    deleted = await client.delete(
        "/v1/points",
        params={"bucket": "exact", "start": format_us(recent[10]), "end": format_us(recent[11])},
        headers=org.headers,
    )
    assert deleted.status_code == 200, deleted.text
    kept = values[:10] + values[11:]
    window = {"start": format_us(now - 5 * DAY), "end": format_us(now + 1)}
    for _ in range(2):  # before the retention job, then after it
        whole = await aggregate(client, org, "exact", **window)
        assert whole["aggregates"] == exact(kept)
        for every in ("6h", "1mo"):  # fixed, calendar buckets
            rows = (await aggregate(client, org, "exact", every=every, **window))["buckets"]
            assert sum(r["count"] for r in rows) == len(kept)
            assert max(r["max"] for r in rows) == max(kept)
            starts = [parse_iso_us(r["time"]) for r in rows]
            for row, start, end in zip(rows, starts, [*starts[1:], now + 1], strict=True):
                inside = [v for v, t in zip(values, recent, strict=True)
                          if start <= t < end and v != 500.0]  # fmt: skip
                assert row["count"] == len(inside)
                if len(inside) > 1:
                    assert row == {"time": row["time"], **exact(inside)}
        fold(services)
        done = await services.retention.run_once()
        assert done.ran


async def test_exact_aggregates_are_null_where_summaries_took_part(
    client: httpx.AsyncClient, org: Org, services: Services
) -> None:
    made = await client.post(
        "/v1/buckets",
        json={"key": "summed", "retention": "1d", "keep_summaries": True},
        headers=org.headers,
    )
    assert made.status_code == 201, made.text
    now = now_us()
    times = [now - 3 * DAY + i * HOUR + HOUR // 2 for i in range(72)]
    values = [float((i * 7) % 23) for i in range(72)]
    await write(
        client,
        org,
        "summed",
        [
            {"source": "s", "fields": {"v": v}, "time": format_us(t)}
            for v, t in zip(values, times, strict=True)
        ],
    )
    # No fold first: the points are in the write log (a few writes start no fold helper), and
    # the retention job folds it itself, so that they expire and are summarised.
    await services.retention.run_once(now)
    cutoff = now - DAY
    whole = await aggregate(client, org, "summed", start=format_us(now - 4 * DAY))
    assert whole["aggregates"]["count"] == 72
    assert whole["aggregates"]["median"] is None and whole["aggregates"]["p90"] is None
    assert parse_iso_us(whole["summaries_until"]) <= cutoff
    # After the summaries: exact again.
    later = await aggregate(client, org, "summed", start=format_us(cutoff + HOUR))
    assert "summaries_until" not in later
    assert later["aggregates"] == exact(
        [v for v, t in zip(values, times, strict=True) if t >= cutoff + HOUR]
    )
    rows = (await aggregate(client, org, "summed", every="6h", start=format_us(now - 4 * DAY)))[
        "buckets"
    ]
    assert rows[0]["median"] is None  # the first point's interval holds a summary
    for row in rows:
        start = parse_iso_us(row["time"])
        raw = [v for v, t in zip(values, times, strict=True) if start <= t < start + 6 * HOUR
               and t >= cutoff]  # fmt: skip
        if row["count"] > len(raw):  # summaries took part: null
            assert (row["median"], row["p90"], row["spread"]) == (None, None, None)
        elif len(raw) > 1:  # raw points only: exact
            assert row == {"time": row["time"], **exact(raw)}
