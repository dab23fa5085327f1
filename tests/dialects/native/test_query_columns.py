"""`format=columns` (an array a column) and `epoch=s|ms|us|ns` (times as integers) on every
query mode, JSON and CSV: the same points as the default reply, in another shape."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from sensorbase.times import parse_iso_us
from tests.conftest import Org
from tests.dialects.native.test_query import hourly, query, write  # noqa: F401

pytestmark = pytest.mark.usefixtures("hourly")
FIRST_US = parse_iso_us("2026-03-28T00:00:00Z")  # hourly's first point
HOUR = 3_600_000_000


async def test_raw_points_as_columns_hold_the_rows_points(
    client: httpx.AsyncClient, org: Org
) -> None:
    rows = await query(client, org, field="t", limit="5", order="desc")
    columns = await query(client, org, field="t", limit="5", order="desc", format="columns")
    [by_row], [by_column] = rows["series"], columns["series"]
    assert "points" not in by_column and "columns" not in by_row
    assert by_column["columns"] == {
        "time": [p["time"] for p in by_row["points"]],
        "value": [p["value"] for p in by_row["points"]],
    }
    assert by_column["columns"]["value"] == [47.0, 46.0, 45.0, 44.0, 43.0]
    assert {k: v for k, v in by_column.items() if k != "columns"} == {
        k: v for k, v in by_row.items() if k != "points"
    }
    assert columns["next_cursor"] == rows["next_cursor"] is not None


@pytest.mark.parametrize(
    ("epoch", "first"),
    [
        ("s", FIRST_US // 1_000_000),
        ("ms", FIRST_US // 1_000),
        ("us", FIRST_US),
        ("ns", FIRST_US * 1_000),
    ],
)
async def test_epoch_writes_times_as_integers_of_its_unit(
    client: httpx.AsyncClient, org: Org, epoch: str, first: int
) -> None:
    step = {"s": 3_600, "ms": 3_600_000, "us": HOUR, "ns": HOUR * 1_000}[epoch]
    rows = await query(client, org, field="t", limit="3", epoch=epoch)
    assert rows["series"][0]["points"] == [
        {"time": first + i * step, "value": float(i)} for i in range(3)
    ]
    columns = await query(client, org, field="t", limit="3", epoch=epoch, format="columns")
    assert columns["series"][0]["columns"]["time"] == [first + i * step for i in range(3)]
    csv = await client.get(
        "/v1/query",
        params={"bucket": org.bucket, "field": "t", "limit": "2", "epoch": epoch, "format": "csv"},
        headers=org.headers,
    )
    assert csv.text.splitlines()[1:] == [f"{org.bucket},st,t,{first},0.0",
                                         f"{org.bucket},st,t,{first + step},1.0"]  # fmt: skip


async def test_epoch_floors_what_its_unit_cannot_hold(client: httpx.AsyncClient, org: Org) -> None:
    """A time between two seconds is given as the second it lies in (before 1970 too:
    test_points_json)."""
    await write(
        client,
        org,
        [
            {"source": "f", "field": "v", "value": 1, "time": "2026-03-28T00:00:00.250000Z"},
            {"source": "f", "field": "v", "value": 2, "time": "2026-03-28T00:00:01.999999Z"},
        ],
    )
    seconds = await query(client, org, source="f", epoch="s", format="columns")
    assert seconds["series"][0]["columns"]["time"] == [FIRST_US // 10**6, FIRST_US // 10**6 + 1]
    millis = await query(client, org, source="f", epoch="ms")
    first_ms = FIRST_US // 1_000
    assert [p["time"] for p in millis["series"][0]["points"]] == [first_ms + 250, first_ms + 1999]


async def test_latest_of_each_series_as_columns(client: httpx.AsyncClient, org: Org) -> None:
    """Newest first, as the rows are."""
    body = await query(client, org, mode="latest", limit="2", format="columns", epoch="s")
    newest = [FIRST_US // 1_000_000 + 47 * 3_600, FIRST_US // 1_000_000 + 46 * 3_600]
    assert [(s["field"], s["columns"]) for s in body["series"]] == [
        ("h", {"time": newest, "value": [53.0, 54.0]}),
        ("t", {"time": newest, "value": [47.0, 46.0]}),
    ]


async def test_buckets_as_columns_a_column_an_aggregate(
    client: httpx.AsyncClient, org: Org
) -> None:
    params: dict[str, Any] = {"field": "t", "aggregate": "min,max,p50", "every": "1d"}
    rows = (await query(client, org, **params))["series"][0]["buckets"]
    columns = (await query(client, org, **params, format="columns"))["series"][0]["columns"]
    assert columns == {name: [row[name] for row in rows] for name in ("time", "min", "max", "p50")}
    assert columns["max"] == [23.0, 47.0]
    epoch = (await query(client, org, **params, format="columns", epoch="ms"))["series"][0]
    assert epoch["columns"]["time"] == [FIRST_US // 1_000, FIRST_US // 1_000 + 24 * 3_600_000]
    whole = await query(client, org, field="t", aggregate="count", format="columns")
    assert whole["series"][0]["aggregates"] == {"count": 48}  # one row: no columns to make


async def test_m4_times_in_the_epoch_unit(client: httpx.AsyncClient, org: Org) -> None:
    params = {"field": "t", "mode": "m4", "width": "2", "start": "2026-03-28T00:00:00Z",
              "end": "2026-03-30T00:00:00Z"}  # fmt: skip
    iso = (await query(client, org, **params))["series"][0]["m4"]
    assert iso["time"][0] == "2026-03-28T00:00:00.000000Z"
    assert iso["value"] == [0.0, 23.0, 24.0, 47.0]
    seconds = (await query(client, org, **params, epoch="s"))["series"][0]["m4"]
    assert seconds == {"time": [parse_iso_us(t) // 1_000_000 for t in iso["time"]],
                       "value": iso["value"]}  # fmt: skip


async def test_what_points_carry_becomes_columns_null_where_absent(
    client: httpx.AsyncClient, org: Org
) -> None:
    await write(
        client,
        org,
        [
            {"source": "gps", "field": "speed", "value": 3.5, "time": "2026-03-28T00:00:00Z",
             "latitude": 48.85, "longitude": 2.35},
            {"source": "gps", "field": "speed", "value": 4.0, "time": "2026-03-28T00:01:00Z"},
        ],
    )  # fmt: skip
    rows = (await query(client, org, source="gps"))["series"][0]["points"]
    assert rows[0]["latitude"] == 48.85 and "latitude" not in rows[1]
    columns = (await query(client, org, source="gps", format="columns", epoch="s"))["series"][0]
    assert columns["columns"] == {
        "time": [FIRST_US // 1_000_000, FIRST_US // 1_000_000 + 60],
        "value": [3.5, 4.0],
        "latitude": [48.85, None],
        "longitude": [2.35, None],
    }


async def test_no_points_is_empty_columns(client: httpx.AsyncClient, org: Org) -> None:
    body = await query(client, org, field="t", start="2030-01-01T00:00:00Z", format="columns")
    assert body["series"] in ([], [{**body["series"][0], "columns": {"time": [], "value": []}}])


async def test_bad_format_and_epoch_are_refused_together(
    client: httpx.AsyncClient, org: Org
) -> None:
    reply = await client.get(
        "/v1/query",
        params={"bucket": org.bucket, "format": "columnar", "epoch": "h"},
        headers=org.headers,
    )
    assert reply.status_code == 400
    assert {(e["field"], e["reason"]) for e in reply.json()["errors"]} == {
        ("format", "must be json, columns or csv"),
        ("epoch", "must be one of s, ms, us, ns"),
    }
    posted = await client.post(
        "/v1/query",
        json={"bucket": org.bucket, "field": "t", "limit": 1, "format": "columns", "epoch": "us"},
        headers=org.headers,
    )
    assert posted.status_code == 200, posted.text
    assert posted.json()["series"][0]["columns"] == {"time": [FIRST_US], "value": [0.0]}
    typed = await client.post(
        "/v1/query", json={"bucket": org.bucket, "epoch": 1000}, headers=org.headers
    )
    assert typed.status_code == 400 and typed.json()["errors"][0]["field"] == "epoch"
