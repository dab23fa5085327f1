"""`Client` against a real server: batching by count and by time, typed errors with every
refused item, partial batches, queries as records and as a pandas DataFrame."""

from __future__ import annotations

import gzip
import json
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pandas
import pytest

from sensorbase.client import (
    AggregateRecord,
    Client,
    NotFound,
    Point,
    PointsRejected,
    Record,
    RequestRefused,
    RetryPolicy,
    ServerError,
    Unauthorized,
)
from sensorbase.client.transport import retry_after_s, write_body
from tests.client.conftest import Live

BASE = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)


def until(condition, what: str, within_s: float = 20.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + within_s
    while not condition():
        assert time.monotonic() < deadline, f"never: {what}"
        time.sleep(0.05)


def stored(sb: Client, source: str) -> int:
    try:
        return len(sb.query(source=source, start=BASE - timedelta(days=1)))
    except NotFound:  # no series yet
        return 0


def test_batches_leave_by_count(live: Live) -> None:
    bucket = live.bucket()
    # A flush interval no test waits for: only the count sends.
    with Client(live.url, key=live.key, bucket=bucket, batch_size=100, flush_interval_s=3600) as sb:
        for i in range(250):
            sb.write(Point("s1", "t", float(i), BASE + timedelta(seconds=i)))
        until(lambda: sb.pending() == 50, "two batches of 100 sent")
        assert len(sb.query(source="s1", field="t", start=BASE)) == 200
        sb.flush()
        assert sb.pending() == 0
        stored = sb.query(source="s1", field="t", start=BASE, limit=60)  # 5 pages, followed
    assert [r.value for r in stored] == [float(i) for i in range(250)]
    assert stored[0] == Record(bucket, "s1", "t", BASE, 0.0, None)


def test_batches_leave_by_time(live: Live) -> None:
    bucket = live.bucket()
    with Client(live.url, key=live.key, bucket=bucket, flush_interval_s=0.2) as sb:
        sb.write([{"source": "s1", "field": "t", "value": 1.5}, {"source": "s1", "field": "t",
                  "value": 2.5, "time": (BASE).isoformat()}])  # fmt: skip
        # Never flushed: the sender sends them on its own within the interval.
        until(lambda: stored(sb, "s1") == 2, "the timer's batch")


def test_a_big_batch_is_gzipped_and_taken(live: Live) -> None:
    points = [{"source": "s", "field": "f", "value": i, "bucket": "b"} for i in range(100)]
    body = write_body(points, None, gzip_min_bytes=1024)
    assert body.headers["Content-Encoding"] == "gzip"
    assert json.loads(gzip.decompress(body.content))["points"] == points
    bucket = live.bucket()
    with Client(live.url, key=live.key, bucket=bucket) as sb:
        reply = sb.write_now(
            [Point("s1", "f", float(i), BASE + timedelta(seconds=i)) for i in range(20_000)]
        )
        assert reply == {"written": 20_000, "series": 1}


def test_a_refusal_lists_every_bad_point_and_stores_nothing(live: Live) -> None:
    bucket = live.bucket()
    with Client(live.url, key=live.key, bucket=bucket) as sb:
        with pytest.raises(RequestRefused) as caught:
            sb.write_now(
                [
                    {"source": "s1", "field": "t", "value": 1.0, "time": BASE.isoformat()},
                    {"source": "s1", "field": "t", "value": "hot", "time": BASE.isoformat()},
                    {"source": "s1", "field": "t", "value": 2.0, "time": "yesterday"},
                ]
            )
        assert caught.value.status == 400
        assert [(e.index, e.field) for e in caught.value.errors] == [(1, "value"), (2, "time")]
        assert stored(sb, "s1") == 0


def test_batches_store_the_good_points_and_report_the_refused(live: Live) -> None:
    bucket = live.bucket()
    with Client(live.url, key=live.key, bucket=bucket, flush_interval_s=3600) as sb:
        sb.write({"source": "s1", "field": "t", "value": 1.0, "time": BASE.isoformat()})
        sb.write({"source": "s1", "field": "t", "value": "x"})
        with pytest.raises(PointsRejected) as caught:
            sb.flush()
        assert [(e.index, e.field) for e in caught.value.errors] == [(1, "value")]
        assert caught.value.points[0]["value"] == "x"
        assert [r.value for r in sb.query(source="s1", start=BASE)] == [1.0]
        sb.flush()  # reported once


def test_wrong_key_and_unknown_bucket_are_typed(live: Live) -> None:
    with Client(live.url, key="sb_k0000_wrong", bucket="farm") as sb, pytest.raises(Unauthorized):
        sb.query(last="1h")
    with Client(live.url, key=live.key) as sb, pytest.raises(NotFound) as caught:
        sb.query(bucket="no-such-bucket", last="1h")
    assert caught.value.status == 404
    with Client(live.url, key=live.key) as sb, pytest.raises(ValueError, match="no bucket"):
        sb.write({"source": "s", "field": "f", "value": 1})


def test_refusals_are_never_retried(live: Live) -> None:
    """A 400, 401 and 404 are final: one request each, however many tries the policy allows."""
    bucket = live.bucket()
    for key, call in [
        (live.key, lambda sb: sb.write_now([{"source": "s", "field": "f", "value": "x"}])),
        ("sb_k0000_wrong", lambda sb: sb.query(last="1h")),
        (live.key, lambda sb: sb.query(bucket="no-such-bucket", last="1h")),
    ]:
        sent: list[int] = []
        with Client(live.url, key=key, bucket=bucket, retry=RetryPolicy(attempts=5)) as sb:
            sb._http.event_hooks["response"].append(lambda r, sent=sent: sent.append(r.status_code))
            with pytest.raises(ServerError):
                call(sb)
        assert len(sent) == 1 and sent[0] in (400, 401, 404)


def test_retry_after_is_read_as_seconds_or_a_date() -> None:
    assert retry_after_s("3") == 3.0
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    assert 25 <= (retry_after_s(later) or 0) <= 31
    assert retry_after_s("soon") is None
    policy = RetryPolicy(base_delay_s=0.2, max_delay_s=5)
    assert 3.0 <= policy.delay_s(0, 3.0) <= 3.3  # the server's word, plus at most 10 %
    assert all(0 <= policy.delay_s(10, None) <= 5 for _ in range(100))  # capped, jittered


def test_naive_times_are_refused_before_queueing(live: Live) -> None:
    with Client(live.url, key=live.key, bucket="x") as sb, pytest.raises(ValueError, match="zone"):
        sb.write(Point("s", "f", 1.0, datetime(2026, 1, 1)))
    assert sb.pending() == 0


def test_aggregates_and_a_dataframe_round_trip(live: Live) -> None:
    bucket = live.bucket()
    with Client(live.url, key=live.key, bucket=bucket) as sb:
        sb.write_now(
            [Point("s1", "t", float(i), BASE + timedelta(minutes=i)) for i in range(120)]
            + [Point("s2", fields={"t": 5.0, "h": 40.0}, time=BASE)]
        )
        (whole,) = sb.query(source="s1", aggregate="min,max,count", start=BASE)
        assert whole == AggregateRecord(
            bucket, "s1", "t", None, {"min": 0.0, "max": 119.0, "count": 120}, None
        )
        hourly = sb.query(source="s1", aggregate=["count"], every="1h", start=BASE)
        assert sum(r.values["count"] for r in hourly if isinstance(r, AggregateRecord)) == 120
        # Values 0..119 a minute apart, counted up: hours after them are filled with -1.
        gappy = sb.query(source="s1", aggregate="count,increase", every="1h", fill=-1.0,
                         start=BASE, end=BASE + timedelta(hours=4))  # fmt: skip
        held = [r.values for r in gappy if isinstance(r, AggregateRecord)]
        assert held[-1] == {"count": 0, "increase": -1.0}
        rose = [v["increase"] for v in held if v["count"]]
        assert sum(v["count"] for v in held) == 120
        assert sum(rose) == 119 - (len(rose) - 1)  # within each hour: a step per minute
        (energy,) = sb.query(source="s1", aggregate="integral", integral_unit="1h", start=BASE)
        assert energy.values == {"integral": pytest.approx(119 / 2 * 119 / 60)}

        frame = sb.query_frame(start=BASE, library="pandas")
        assert isinstance(frame, pandas.DataFrame)
        assert list(frame.columns) == ["bucket", "source", "field", "time", "value"]
        assert len(frame) == 122
        assert str(frame["time"].dt.tz) == "UTC"
        # Back in: the frame's rows, written to another source, read back equal.
        rows = frame[frame.source == "s1"]
        sb.write_now(
            [Point("copy", r.field, r.value, r.time.to_pydatetime()) for r in rows.itertuples()]
        )
        again = sb.query_frame(source="copy", start=BASE, library="pandas")
        assert again["value"].tolist() == rows["value"].tolist()
        assert again["time"].tolist() == rows["time"].tolist()
