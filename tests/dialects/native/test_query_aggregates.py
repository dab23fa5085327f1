"""GET|POST /v1/query: the aggregates that read every point (stddev, spread, median, pN, delta,
increase, rate, integral) and `fill` of empty buckets, over HTTP on every backend, checked
against a plain-Python reference over random points lying in the write log and (SQLite) in
folded chunks, and the edges: an empty range, one point, a counter reset, fill at the range's
edges, and every wrong parameter refused naming its field."""

from __future__ import annotations

import itertools
import math
import statistics
from typing import Any

import httpx
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sensorbase.services import Services
from sensorbase.times import format_us, parse_iso_us
from tests.conftest import Org

SECOND = 1_000_000
T0 = parse_iso_us("2026-05-01T00:00:00Z")
NEW = ("stddev", "spread", "median", "p90", "p0", "p100", "delta", "increase", "rate", "integral")
OLD = ("count", "min", "max", "sum", "avg", "first", "last")
_SOURCES = itertools.count()


def fold(services: Services) -> None:
    """Fold the write log into chunks where the store has one (SQLite)."""
    step = getattr(services.store, "fold_points", None)
    if step is not None:
        step()


async def write(client: httpx.AsyncClient, org: Org, source: str, points: dict[int, float]) -> None:
    body = {
        "bucket": org.bucket,
        "points": [
            {"source": source, "field": "v", "time": format_us(t), "value": v}
            for t, v in points.items()
        ],
    }
    reply = await client.post("/v1/write", json=body, headers=org.headers)
    assert reply.status_code == 200, reply.text


async def query(client: httpx.AsyncClient, org: Org, **params: Any) -> httpx.Response:
    return await client.get(
        "/v1/query", params={"bucket": org.bucket, "field": "v", **params}, headers=org.headers
    )


async def answer(client: httpx.AsyncClient, org: Org, **params: Any) -> dict[str, Any]:
    reply = await query(client, org, **params)
    assert reply.status_code == 200, reply.text
    [entry] = reply.json()["series"]
    return dict(entry)


# --- the reference: plain Python over (time, value) pairs -------------------------------------


def reference(name: str, points: list[tuple[int, float]], unit_us: int = SECOND) -> Any:
    values = [v for _, v in points]
    if name == "count":
        return len(values)
    if not values:
        return None
    if name in ("min", "max", "sum"):
        return {"min": min, "max": max, "sum": math.fsum}[name](values)
    if name == "avg":
        return math.fsum(values) / len(values)
    if name in ("first", "last"):
        return values[0] if name == "first" else values[-1]
    if name == "stddev":
        return statistics.stdev(values) if len(values) > 1 else None
    if name == "spread":
        return max(values) - min(values)
    if name == "median":
        return statistics.median(values)
    if name.startswith("p"):
        return float(np.percentile(np.array(values), float(name[1:])))
    if name == "delta":
        return values[-1] - values[0]
    rise = 0.0
    for before, after in itertools.pairwise(values):
        rise += after - before if after >= before else after  # a drop: reset to 0
    if name == "increase":
        return rise
    if name == "rate":
        span = points[-1][0] - points[0][0]
        return rise / (span / SECOND) if span else None
    assert name == "integral"
    area = 0.0
    for (t0, v0), (t1, v1) in itertools.pairwise(points):
        area += (v0 + v1) / 2 * (t1 - t0)
    return area / unit_us


def bucket_integral(points: list[tuple[int, float]], lo: int, hi: int) -> float | None:
    """The area over [lo, hi) of the line joining all the range's points (a segment crossing
    an edge cut there, its value interpolated); None for a bucket holding no point."""
    if not any(lo <= t < hi for t, _ in points):
        return None
    area = 0.0
    for (t0, v0), (t1, v1) in itertools.pairwise(points):
        a, b = max(t0, lo), min(t1, hi)
        if a < b:
            va = v0 + (v1 - v0) * (a - t0) / (t1 - t0)
            vb = v0 + (v1 - v0) * (b - t0) / (t1 - t0)
            area += (va + vb) / 2 * (b - a)
    return area / SECOND


def same(got: Any, want: Any) -> bool:
    if want is None or got is None:
        return got is want
    return math.isclose(got, want, rel_tol=1e-9, abs_tol=1e-6)


def fill_column(name: str, column: list[Any], times: list[int], fill: str) -> list[Any]:
    if name == "count":
        return [0 if v is None else v for v in column]
    if fill == "previous":
        out, last = [], None
        for v in column:
            last = v if v is not None else last
            out.append(last)
        return out
    if fill == "linear":
        out = list(column)
        for i, v in enumerate(column):
            if v is not None:
                continue
            before = [j for j in range(i) if column[j] is not None]
            after = [j for j in range(i + 1, len(column)) if column[j] is not None]
            if before and after:
                a, b = before[-1], after[0]
                share = (times[i] - times[a]) / (times[b] - times[a])
                out[i] = column[a] + (column[b] - column[a]) * share
        return out
    if fill in ("null", "none"):  # none: only buckets holding points are shown
        return column
    return [float(fill) if v is None else v for v in column]


# --- the property -----------------------------------------------------------------------------

offsets = st.integers(0, 599).map(lambda s: T0 + s * SECOND)
values = st.one_of(st.integers(-1_000, 1_000).map(float), st.floats(-1e3, 1e3))
batch = st.dictionaries(offsets, values, max_size=40)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    logged=batch,
    folded=batch,
    start=st.integers(-60, 620),
    length=st.integers(1, 700),
    every=st.sampled_from([None, "7s", "1m", "2m"]),
    fill=st.sampled_from(["none", "null", "previous", "linear", "-2.5"]),
    aggregates=st.lists(st.sampled_from(NEW + OLD), min_size=1, max_size=5, unique=True),
)
async def test_aggregates_match_a_plain_reference(
    client: httpx.AsyncClient,
    org: Org,
    services: Services,
    logged: dict[int, float],
    folded: dict[int, float],
    start: int,
    length: int,
    every: str | None,
    fill: str,
    aggregates: list[str],
) -> None:
    source = f"s{next(_SOURCES)}"
    if folded:
        await write(client, org, source, folded)
        fold(services)
    if logged:
        await write(client, org, source, logged)  # over the chunks: the log's points win
    if not (folded or logged):
        return
    lo, hi = T0 + start * SECOND, T0 + (start + length) * SECOND
    held = sorted({**folded, **logged}.items())
    inside = [(t, v) for t, v in held if lo <= t < hi]
    params: dict[str, Any] = {
        "source": source, "start": format_us(lo), "end": format_us(hi),
        "aggregate": ",".join(aggregates),
    }  # fmt: skip
    if every is None:
        entry = await answer(client, org, **params)
        for name in aggregates:
            assert same(entry["aggregates"][name], reference(name, inside)), name
        return
    entry = await answer(client, org, **params, every=every, fill=fill)
    width = {"7s": 7, "1m": 60, "2m": 120}[every] * SECOND
    starts = list(range(lo // width * width, hi, width))  # buckets from the epoch, in UTC
    per_bucket = {b: [(t, v) for t, v in inside if b <= t < b + width] for b in starts}
    if fill == "none":
        starts = [b for b in starts if per_bucket[b]]

    def of(name: str, b: int) -> Any:
        if name == "integral":
            return bucket_integral(inside, b, b + width)
        return reference(name, per_bucket[b])

    want = {
        name: fill_column(name, [of(name, b) for b in starts], starts, fill) for name in aggregates
    }
    got = entry["buckets"]
    assert [parse_iso_us(row["time"]) for row in got] == starts
    for name in aggregates:
        for i, row in enumerate(got):
            assert same(row[name], want[name][i]), (name, row["time"], row[name], want[name][i])


# --- edges ------------------------------------------------------------------------------------


async def test_an_empty_range_and_one_point(client: httpx.AsyncClient, org: Org) -> None:
    await write(client, org, "one", {T0: 5.0})
    entry = await answer(
        client, org, source="one", start=format_us(T0 + SECOND), end=format_us(T0 + 9 * SECOND),
        aggregate=",".join((*NEW, "count")),
    )  # fmt: skip
    assert entry["aggregates"] == {**dict.fromkeys(NEW), "count": 0}
    entry = await answer(
        client, org, source="one", start=format_us(T0), end=format_us(T0 + SECOND),
        aggregate=",".join(NEW),
    )  # fmt: skip
    assert entry["aggregates"] == {
        "stddev": None, "spread": 0.0, "median": 5.0, "p90": 5.0, "p0": 5.0, "p100": 5.0,
        "delta": 0.0, "increase": 0.0, "rate": None, "integral": 0.0,
    }  # fmt: skip


async def test_a_counter_reset_and_an_integral_in_hours(
    client: httpx.AsyncClient, org: Org, services: Services
) -> None:
    # A counter: 10, 30, 50, reset, 5, 25 (one a minute): it rose by 20+20+5+20 = 65.
    counter = {T0 + i * 60 * SECOND: v for i, v in enumerate([10.0, 30.0, 50.0, 5.0, 25.0])}
    await write(client, org, "meter", dict(list(counter.items())[:2]))
    fold(services)
    await write(client, org, "meter", dict(list(counter.items())[2:]))
    entry = await answer(
        client, org, source="meter", start=format_us(T0), end=format_us(T0 + 3_600 * SECOND),
        aggregate="increase,delta,rate",
    )  # fmt: skip
    assert entry["aggregates"] == {"increase": 65.0, "delta": 15.0, "rate": 65.0 / 240}
    # 2 kW for half an hour, rising to 4 kW at 0:45 then falling to 0 at 1:45: 1 + 0.75 + 2
    # kWh; hourly, the segment from 0:45 to 1:45 is cut at 1:00 (3 kW there).
    power = {T0: 2.0, T0 + 1_800 * SECOND: 2.0, T0 + 2_700 * SECOND: 4.0, T0 + 6_300 * SECOND: 0.0}
    await write(client, org, "power", power)
    window = {"source": "power", "start": format_us(T0), "end": format_us(T0 + 7_200 * SECOND)}
    entry = await answer(client, org, **window, aggregate="integral", integral_unit="1h")
    assert entry["aggregates"] == {"integral": 3.75}
    entry = await answer(
        client, org, **window, aggregate="integral", integral_unit="1h", every="1h"
    )
    assert [r["integral"] for r in entry["buckets"]] == [1.0 + 0.75 + 0.875, 1.125]


async def test_fill_at_the_edges(client: httpx.AsyncClient, org: Org) -> None:
    # Points in the 2nd and 4th of six one-minute buckets.
    await write(client, org, "gappy", {T0 + 60 * SECOND: 1.0, T0 + 180 * SECOND: 3.0})
    window = {"source": "gappy", "start": format_us(T0), "end": format_us(T0 + 360 * SECOND)}

    async def column(fill: str, name: str = "avg") -> list[Any]:
        entry = await answer(client, org, **window, every="1m", fill=fill, aggregate=name)
        return [row[name] for row in entry["buckets"]]

    assert await column("none") == [1.0, 3.0]
    assert await column("null") == [None, 1.0, None, 3.0, None, None]
    assert await column("previous") == [None, 1.0, 1.0, 3.0, 3.0, 3.0]
    assert await column("linear") == [None, 1.0, 2.0, 3.0, None, None]
    assert await column("0") == [0.0, 1.0, 0.0, 3.0, 0.0, 0.0]
    assert await column("previous", "count") == [0, 1, 0, 1, 0, 0]
    assert await column("linear", "p50") == [None, 1.0, 2.0, 3.0, None, None]
    # A calendar bucket: days, the empty ones shown too.
    entry = await answer(
        client, org, source="gappy", start="2026-04-29T00:00:00Z", end="2026-05-03T00:00:00Z",
        every="1d", fill="null", aggregate="count,spread",
    )  # fmt: skip
    assert [(r["time"][:10], r["count"], r["spread"]) for r in entry["buckets"]] == [
        ("2026-04-29", 0, None), ("2026-04-30", 0, None), ("2026-05-01", 2, 2.0),
        ("2026-05-02", 0, None),
    ]  # fmt: skip


async def test_post_and_csv_take_the_new_names(client: httpx.AsyncClient, org: Org) -> None:
    await write(client, org, "gappy", {T0 + 60 * SECOND: 1.0, T0 + 180 * SECOND: 3.0})
    body = {
        "bucket": org.bucket, "field": "v", "start": format_us(T0),
        "end": format_us(T0 + 240 * SECOND), "every": "2m", "fill": 7,
        "aggregate": ["p99.9", "max"],
    }  # fmt: skip
    reply = await client.post("/v1/query", json=body, headers=org.headers)
    assert reply.status_code == 200, reply.text
    [entry] = reply.json()["series"]
    assert [(r["p99.9"], r["max"]) for r in entry["buckets"]] == [(1.0, 1.0), (3.0, 3.0)]
    reply = await client.post("/v1/query", json={**body, "fill": True}, headers=org.headers)
    assert reply.status_code == 400 and "fill" in reply.text, reply.text
    reply = await client.get(
        "/v1/query",
        params={**{k: v for k, v in body.items() if k != "fill"}, "aggregate": "p50,stddev",
                "fill": "null", "format": "csv", "end": format_us(T0 + 360 * SECOND)},
        headers=org.headers,
    )  # fmt: skip
    assert reply.status_code == 200, reply.text
    assert reply.text.splitlines()[0] == "bucket,source,field,time,p50,stddev"
    assert len(reply.text.splitlines()) == 1 + 3


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"aggregate": "p101"}, "aggregate"),
        ({"aggregate": "percentile"}, "aggregate"),
        ({"aggregate": "avg", "fill": "previous"}, "fill"),  # no every
        ({"aggregate": "avg", "every": "1m", "fill": "nan"}, "fill"),
        ({"aggregate": "avg", "every": "1m", "fill": "1e999"}, "fill"),
        ({"aggregate": "avg", "every": "1m", "fill": "zero"}, "fill"),
        ({"aggregate": "integral", "integral_unit": "1mo"}, "integral_unit"),
        ({"aggregate": "avg", "integral_unit": "1h"}, "integral_unit"),
    ],
)
async def test_wrong_parameters_are_refused_naming_their_field(
    client: httpx.AsyncClient, org: Org, params: dict[str, str], field: str
) -> None:
    reply = await query(client, org, last="1d", **params)
    assert reply.status_code == 400, reply.text
    assert field in [e.get("field") for e in reply.json()["errors"]], reply.text


async def test_the_scan_limit_refuses_rather_than_reading_everything(
    client: httpx.AsyncClient, org: Org, services: Services
) -> None:
    await write(client, org, "big", {T0 + i * SECOND: float(i) for i in range(50)})
    services.query.max_scan_points = 49
    window = {"source": "big", "start": format_us(T0), "end": format_us(T0 + 60 * SECOND)}
    reply = await query(client, org, **window, aggregate="median")
    assert reply.status_code == 400, reply.text
    assert "SENSORBASE_MAX_SCAN_POINTS" in reply.text
    # The store's own aggregates read no point: the limit does not apply to them.
    entry = await answer(client, org, **window, aggregate="count,avg")
    assert entry["aggregates"] == {"count": 50, "avg": 24.5}


async def test_another_org_sees_nothing_of_these_aggregates(
    client: httpx.AsyncClient, org: Org, other_org: Org
) -> None:
    await write(client, org, "secret", {T0: 1.0, T0 + SECOND: 2.0})
    reply = await client.get(
        "/v1/query",
        params={"source": "secret", "last": "100000d", "aggregate": "median,integral"},
        headers=other_org.headers,
    )
    assert reply.status_code == 404, reply.text
    assert "1.5" not in reply.text
