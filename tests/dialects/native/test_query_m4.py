"""GET|POST /v1/query?mode=m4: a chart's points over HTTP, on every backend, from the write log
and (SQLite) from folded chunks: the spike survives, empty columns are absent, the range's edges
hold, and every wrong request is refused naming its field."""

from __future__ import annotations

import csv
import io
from typing import Any

import httpx
import pytest

from sensorbase.services import Services
from sensorbase.times import format_us, parse_iso_us
from tests.conftest import Org

SECOND = 1_000_000
T0 = parse_iso_us("2026-05-01T00:00:00Z")
N = 5_000  # points, one a second: more than two SQLite chunks of 2,048


def value_at(i: int) -> float:
    if i == 3_333:
        return 1_000.0  # the spike
    if i == 777:
        return -50.0  # the dip
    return float(i % 10)


@pytest.fixture
async def series(client: httpx.AsyncClient, org: Org) -> list[tuple[int, float]]:
    points = [(T0 + i * SECOND, value_at(i)) for i in range(N)]
    body = {
        "bucket": org.bucket,
        "points": [
            {"source": "pump", "field": "p", "time": format_us(t), "value": v} for t, v in points
        ],
    }
    reply = await client.post("/v1/write", json=body, headers=org.headers)
    assert reply.status_code == 200, reply.text
    return points


def expected(points: list[tuple[int, float]], start: int, end: int, width: int) -> list[Any]:
    """The M4 the plain way: per column [start + span*i // width, ...), first, min, max, last."""
    columns: dict[int, list[tuple[int, float]]] = {}
    for t, v in points:
        if start <= t < end:
            c = max(i for i in range(width) if start + (end - start) * i // width <= t)
            columns.setdefault(c, []).append((t, v))
    out = []
    for c in sorted(columns):
        held = columns[c]
        picks = {
            held[0],
            held[-1],
            min(held, key=lambda p: (p[1], p[0])),
            min(held, key=lambda p: (-p[1], p[0])),
        }
        out.extend(sorted(picks))
    return [(format_us(t), v) for t, v in out]


async def m4(client: httpx.AsyncClient, org: Org, **params: Any) -> dict[str, Any]:
    reply = await client.get(
        "/v1/query",
        params={"bucket": org.bucket, "field": "p", "mode": "m4", **params},
        headers=org.headers,
    )
    assert reply.status_code == 200, reply.text
    [entry] = reply.json()["series"]
    assert set(entry) == {"bucket", "source", "field", "unit", "m4"}
    return dict(entry)


def fold(services: Services) -> bool:
    """Fold the write log into chunks where the store has one (SQLite); whether it did."""
    step = getattr(services.store, "fold_points", None)
    if step is None:
        return False
    assert step() == N
    return True


async def test_m4_keeps_the_spike_from_the_log_and_from_chunks(
    client: httpx.AsyncClient, org: Org, services: Services, series: list[tuple[int, float]]
) -> None:
    start, end = format_us(T0), format_us(T0 + N * SECOND)
    for state in ("logged", "folded"):
        for width in (1, 7, 150):
            entry = await m4(client, org, start=start, end=end, width=width)
            got = list(zip(entry["m4"]["time"], entry["m4"]["value"], strict=True))
            assert got == expected(series, T0, T0 + N * SECOND, width), (state, width)
            assert max(entry["m4"]["value"]) == 1_000.0
            assert min(entry["m4"]["value"]) == -50.0
            assert format_us(T0 + 3_333 * SECOND) in entry["m4"]["time"]
        if state == "logged" and not fold(services):
            break  # a backend without a log to fold: its one state is checked


async def test_columns_without_points_are_absent(
    client: httpx.AsyncClient, org: Org, series: list[tuple[int, float]]
) -> None:
    # Ten columns of 5,000 s from T0 - 45,000 s: only the last holds points.
    start = T0 - 45_000 * SECOND
    entry = await m4(client, org, start=format_us(start), end=format_us(T0 + N * SECOND), width=10)
    times = [parse_iso_us(t) for t in entry["m4"]["time"]]
    assert all(t >= T0 for t in times)
    assert len(times) == 4  # first, dip, spike, last of the one column holding points
    # A range with no points at all: an empty chart, not an error.
    empty = await m4(client, org, start=format_us(T0 - 60 * SECOND), end=format_us(T0), width=5)
    assert empty["m4"] == {"time": [], "value": []}


async def test_range_edges_start_inclusive_end_exclusive(
    client: httpx.AsyncClient, org: Org, series: list[tuple[int, float]]
) -> None:
    lo, hi = T0 + 10 * SECOND, T0 + 20 * SECOND
    entry = await m4(client, org, start=format_us(lo), end=format_us(hi), width=1)
    got = list(zip(entry["m4"]["time"], entry["m4"]["value"], strict=True))
    # Points 10..19: first (10, 0.0) is also the min, last (19, 9.0) also the max.
    assert got == [(format_us(lo), 0.0), (format_us(hi - SECOND), 9.0)]
    # More columns than points: each point its own column, each once.
    entry = await m4(client, org, start=format_us(lo), end=format_us(hi), width=10_000)
    assert entry["m4"]["time"] == [format_us(lo + i * SECOND) for i in range(10)]


async def test_post_form_csv_and_last(
    client: httpx.AsyncClient, org: Org, series: list[tuple[int, float]]
) -> None:
    body = {
        "bucket": org.bucket,
        "field": "p",
        "mode": "m4",
        "width": 3,
        "start": format_us(T0),
        "end": format_us(T0 + N * SECOND),
    }
    reply = await client.post("/v1/query", json=body, headers=org.headers)
    assert reply.status_code == 200, reply.text
    [entry] = reply.json()["series"]
    want = expected(series, T0, T0 + N * SECOND, 3)
    assert list(zip(entry["m4"]["time"], entry["m4"]["value"], strict=True)) == want

    reply = await client.post("/v1/query", json={**body, "format": "csv"}, headers=org.headers)
    assert reply.status_code == 200 and reply.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(reply.text)))
    assert rows[0] == ["bucket", "source", "field", "time", "value"]
    assert [(r[3], float(r[4])) for r in rows[1:]] == want

    # `last` bounds the range too (these points are years old: an empty chart).
    entry = await m4(client, org, last="1h", width=100)
    assert entry["m4"] == {"time": [], "value": []}


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"start": "2026-05-01T00:00:00Z", "end": "2026-05-02T00:00:00Z"}, "width"),
        ({"start": "2026-05-01T00:00:00Z", "end": "2026-05-02T00:00:00Z", "width": "0"}, "width"),
        (
            {"start": "2026-05-01T00:00:00Z", "end": "2026-05-02T00:00:00Z", "width": "10001"},
            "width",
        ),
        ({"start": "2026-05-01T00:00:00Z", "end": "2026-05-02T00:00:00Z", "width": "x"}, "width"),
        ({"start": "2026-05-01T00:00:00Z", "width": "100"}, "start"),
        ({"end": "2026-05-01T00:00:00Z", "width": "100"}, "start"),
        ({"width": "100"}, "start"),
        (
            {
                "start": "2026-05-01T00:00:00Z",
                "end": "2026-05-02T00:00:00Z",
                "width": "5",
                "aggregate": "avg",
            },
            "aggregate",
        ),
        ({"mode": "raw", "width": "100"}, "width"),
    ],
)
async def test_refusals_name_the_field(
    client: httpx.AsyncClient, org: Org, params: dict[str, str], field: str
) -> None:
    query = {"bucket": org.bucket, "mode": "m4", **params}
    reply = await client.get("/v1/query", params=query, headers=org.headers)
    assert reply.status_code == 400, reply.text
    assert field in [e.get("field") for e in reply.json()["errors"]], reply.text


async def test_result_limit_counts_four_points_a_column(
    client: httpx.AsyncClient,
    org: Org,
    series: list[tuple[int, float]],
) -> None:
    more = {
        "bucket": org.bucket,
        "points": [
            {"source": f"s{i}", "field": "p", "time": format_us(T0), "value": 1.0} for i in range(3)
        ],
    }
    assert (await client.post("/v1/write", json=more, headers=org.headers)).status_code == 200
    # 4 series x 10,000 columns x 4 points pass the result limit of 100,000 points.
    params = {"bucket": org.bucket, "field": "p", "mode": "m4", "last": "1d", "width": "10000"}
    reply = await client.get("/v1/query", params=params, headers=org.headers)
    assert reply.status_code == 400, reply.text
    assert reply.json()["errors"][0]["field"] == "width"


async def test_body_width_must_be_an_integer(client: httpx.AsyncClient, org: Org) -> None:
    body = {"bucket": org.bucket, "mode": "m4", "width": "100", "last": "1h"}
    reply = await client.post("/v1/query", json=body, headers=org.headers)
    assert reply.status_code == 400, reply.text
    assert reply.json()["errors"][0]["field"] == "width"


async def test_another_organisation_sees_nothing(
    client: httpx.AsyncClient, org: Org, other_org: Org, series: list[tuple[int, float]]
) -> None:
    params = {"bucket": org.bucket, "mode": "m4", "width": "10", "last": "1d"}
    reply = await client.get("/v1/query", params=params, headers=other_org.headers)
    assert reply.status_code == 404, reply.text
    params = {"mode": "m4", "width": "10", "start": format_us(T0), "end": format_us(T0 + 1)}
    reply = await client.get("/v1/query", params=params, headers=other_org.headers)
    assert reply.status_code == 200 and reply.json()["series"] == []
