"""What the client reads, against a real server: records and DataFrames (polars and pandas)
made from the reply's columns, across pages, for raw points, aggregates over the range and per
bucket, and M4's chart points; `to_frame` of records gives the frame `query_frame` gives."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import httpx
import pandas
import polars
import pytest

from sensorbase.client import AggregateRecord, AsyncClient, Client, Point, Record, to_frame
from tests.client.conftest import Live

BASE = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=3)


def filled(live: Live) -> str:
    """A bucket of two series of 90 points a minute apart, one carrying a position and meta
    (columns beside its values in the reply), and a third series of one point."""
    bucket = live.bucket()
    with Client(live.url, key=live.key, bucket=bucket) as sb:
        sb.write_now(
            [Point("a", "t", float(i), BASE + timedelta(minutes=i, microseconds=7))
             for i in range(90)]
            + [Point("b", "t", -float(i), BASE + timedelta(minutes=i), latitude=48.1,
                     longitude=11.5, meta={"fw": "1.2"}) for i in range(90)]
            + [Point("c", "h", 40.0, BASE)]
        )  # fmt: skip
    return bucket


def test_the_client_asks_for_columns_in_epoch_microseconds(live: Live) -> None:
    bucket = filled(live)
    seen: list[httpx.URL] = []
    with Client(live.url, key=live.key, bucket=bucket) as sb:
        sb._http.event_hooks["request"].append(lambda request: seen.append(request.url))
        found = sb.query(source="a", start=BASE, limit=40)  # three pages
    assert [r.value for r in found] == [float(i) for i in range(90)]
    made = Record(bucket, "a", "t", BASE + timedelta(minutes=1, microseconds=7), 1.0)
    assert found[1] == made and hash(found[1]) == hash(made) and repr(found[1]) == repr(made)
    with pytest.raises(dataclasses.FrozenInstanceError):
        found[1].value = 2.0  # type: ignore[misc]
    assert len(seen) == 3
    assert all(u.params["format"] == "columns" and u.params["epoch"] == "us" for u in seen)
    assert "cursor" not in seen[0].params and all("cursor" in u.params for u in seen[1:])


@pytest.mark.parametrize("library", ["polars", "pandas"])
def test_frames_from_columns_equal_frames_from_records(live: Live, library: str) -> None:
    bucket = filled(live)
    with Client(live.url, key=live.key, bucket=bucket) as sb:
        for kwargs in (
            {"start": BASE, "limit": 50},  # raw points of three series, over pages
            {"aggregate": "min,max,count", "start": BASE},  # one row a series, no time
            {"source": ["a", "b"], "aggregate": "avg,count", "every": "30m", "start": BASE,
             "end": BASE + timedelta(hours=2), "fill": "null"},  # buckets, empty ones null
            {"mode": "latest"},
        ):  # fmt: skip
            records = sb.query(**kwargs)  # type: ignore[arg-type]
            frame = sb.query_frame(library=library, **kwargs)
            assert len(frame) == len(records) > 0, kwargs
            expected = to_frame(records, library)
            if library == "polars":
                assert isinstance(frame, polars.DataFrame)
                assert frame.equals(expected), kwargs
                assert str(frame.schema["time"]) == "Datetime(time_unit='us', time_zone='UTC')"
            else:
                pandas.testing.assert_frame_equal(frame, expected)
                assert str(frame["time"].dt.tz) == "UTC"
        raw = sb.query_frame(start=BASE, library=library)
    assert list(raw.columns) == ["bucket", "source", "field", "time", "value"]
    times = raw["time"].to_list() if library == "polars" else raw["time"].tolist()
    assert times[1] == BASE + timedelta(minutes=1, microseconds=7)  # every microsecond kept


def test_records_of_aggregates_and_buckets(live: Live) -> None:
    bucket = filled(live)
    with Client(live.url, key=live.key, bucket=bucket) as sb:
        (whole,) = sb.query(source="b", aggregate="min,max,count", start=BASE)
        hours = sb.query(source="b", aggregate="count,min", every="1h", start=BASE,
                         end=BASE + timedelta(hours=2))  # fmt: skip
        (latest,) = sb.query(source="c", mode="latest")
    assert whole == AggregateRecord(bucket, "b", "t", None, {"min": -89.0, "max": 0.0, "count": 90})
    assert hours == [
        AggregateRecord(bucket, "b", "t", BASE, {"count": 60, "min": -59.0}),
        AggregateRecord(bucket, "b", "t", BASE + timedelta(hours=1), {"count": 30, "min": -89.0}),
    ]
    assert latest == Record(bucket, "c", "h", BASE, 40.0)


async def test_m4_chart_points_sync_and_async(live: Live) -> None:
    bucket = filled(live)
    span = {"start": BASE, "end": BASE + timedelta(minutes=90)}
    with Client(live.url, key=live.key, bucket=bucket) as sb:
        chart = sb.query(source="b", mode="m4", width=3, **span)  # type: ignore[arg-type]
        every = sb.query(source="b", **span)  # type: ignore[arg-type]
    # three columns of 30 minutes: first, last, min and max of each, which here are two points
    assert [r.time for r in chart] == [every[i].time for i in (0, 29, 30, 59, 60, 89)]
    assert [r.value for r in chart] == [every[i].value for i in (0, 29, 30, 59, 60, 89)]
    async with AsyncClient(live.url, key=live.key, bucket=bucket) as aio:
        assert await aio.query(source="b", mode="m4", width=3, **span) == chart  # type: ignore[arg-type]
        frame = await aio.query_frame(source="b", mode="m4", width=3, library="polars", **span)
    assert frame["value"].to_list() == [r.value for r in chart]


def test_an_empty_reply_is_an_empty_frame(live: Live) -> None:
    bucket = filled(live)
    with Client(live.url, key=live.key, bucket=bucket) as sb:
        start = BASE - timedelta(days=1)
        assert sb.query(source="a", start=start, end=start + timedelta(hours=1)) == []
        for library in ("polars", "pandas"):
            frame = sb.query_frame(source="a", start=start, end=start + timedelta(hours=1),
                                   library=library)  # fmt: skip
            assert len(frame) == 0
