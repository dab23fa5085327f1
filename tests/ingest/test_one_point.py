"""One-point writes without a batch: `decode_one` finds the key, time and value that
`decode_fast`'s one-point batch holds (and nothing for any other body); points appended as
tuples make the log row that the same points as one-point batches make, in any mix; and a
one-point write answers, stores and refuses as a batch of one does, on every backend."""

from __future__ import annotations

import json
from typing import Any

import httpx
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sensorbase.dialects.native import fast_decode
from sensorbase.model import ResolvedBatch, ResolvedPoint, SeriesKey
from sensorbase.storage.log_view import log_row
from sensorbase.times import PRECISION_US
from tests.conftest import Org

needs_module = pytest.mark.skipif(
    fast_decode.decode_columns is None, reason="the _columns module is not built"
)
NAMES = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=6)
NUMBERS = st.one_of(st.integers(-(2**64), 2**64), st.floats(allow_nan=False, allow_infinity=False))


def _body(point: dict[str, Any], wrapped: dict[str, Any] | None) -> bytes:
    return json.dumps(point if wrapped is None else {**wrapped, "points": [point]}).encode()


@needs_module
@settings(max_examples=400, deadline=None)
@given(
    point=st.fixed_dictionaries(
        {"field": NAMES, "value": NUMBERS, "time": NUMBERS},
        optional={"bucket": st.one_of(st.none(), NAMES), "source": st.one_of(st.none(), NAMES)},
    ),
    many=st.integers(1, 3),
    wrapped=st.one_of(
        st.none(), st.fixed_dictionaries({}, optional={"bucket": NAMES, "source": NAMES})
    ),
    bucket=st.one_of(st.none(), NAMES),
    source=st.one_of(st.none(), NAMES),
    precision=st.sampled_from(["s", "ms", "us", "ns"]),
)
def test_decode_one_finds_what_the_batch_holds(
    point: dict[str, Any],
    many: int,
    wrapped: dict[str, Any] | None,
    bucket: str | None,
    source: str | None,
    precision: str,
) -> None:
    points = [point] * many
    body = json.dumps(points if wrapped is None else {**wrapped, "points": points}).encode()
    one = fast_decode.decode_one(body, bucket, source, precision, 100_000)
    batch = fast_decode.decode_fast(body, bucket, source, precision, 100_000)
    if one is None:  # then not a single point the module takes
        assert fast_decode.decode_columns is not None
        scale = PRECISION_US[precision]
        taken = fast_decode.decode_columns(body, 100_000, bucket, source, SeriesKey, scale)
        assert many > 1 or taken is None
        return
    assert many == 1 and batch is not None and len(batch) == 1
    keys, time_us, value = one
    assert list(keys) == list(batch.keys) and len(keys) == 1
    assert time_us == int(batch.time_us[0])
    assert struct_bits(value) == struct_bits(float(batch.value[0]))


def struct_bits(value: float) -> bytes:
    return np.float64(value).tobytes()


def test_decode_one_takes_nothing_past_max_points_or_without_precision() -> None:
    body = b'[{"source": "a", "field": "t", "value": 1, "time": 1}]'
    assert fast_decode.decode_one(body, "farm", None, None, 100) is None
    assert fast_decode.decode_one(body, "farm", None, "s", 0) is None
    if fast_decode.decode_columns is not None:
        assert fast_decode.decode_one(body, "farm", None, "s", 1) is not None


def _as_batch(item: ResolvedBatch | ResolvedPoint) -> ResolvedBatch:
    if isinstance(item, ResolvedBatch):
        return item
    series_id, time_us, value = item
    return ResolvedBatch(
        np.array([series_id], np.int64),
        np.array([time_us], np.int64),
        np.array([value], np.float64),
        None,
    )


ROWS = st.tuples(
    st.integers(1, 5), st.integers(-(2**63), 2**63 - 1), st.floats(allow_nan=False, width=64)
)


@settings(max_examples=300, deadline=None)
@given(
    items=st.lists(
        st.one_of(ROWS, st.lists(ROWS, min_size=0, max_size=4).map(lambda rows: rows or None)),
        min_size=1,
        max_size=12,
    )
)
def test_points_make_the_log_row_their_batches_make(items: list[Any]) -> None:
    appended: list[ResolvedBatch | ResolvedPoint] = []
    for item in items:
        if isinstance(item, tuple):
            appended.append(item)
        else:  # a batch of several rows (or none)
            rows = item or []
            appended.append(
                ResolvedBatch(
                    np.array([r[0] for r in rows], np.int64),
                    np.array([r[1] for r in rows], np.int64),
                    np.array([r[2] for r in rows], np.float64),
                    None,
                )
            )
    assert log_row(appended) == log_row([_as_batch(item) for item in appended])


@pytest.mark.parametrize(
    ("point", "status"),
    [
        ('{"source": "s1", "field": "t", "value": 1.5, "time": 1700000000}', 200),
        ('{"source": "s1", "field": "t", "value": 1e400, "time": 1700000000}', 400),
        ('{"source": "s1", "field": "t", "value": 2.5, "time": -1}', 400),
        ('{"source": "s1", "field": "t", "value": 2.5, "time": 9000000000}', 400),
        ('{"source": "%s", "field": "t", "value": 2.5, "time": 1700000000}' % ("x" * 300), 400),
    ],
)
async def test_a_one_point_write_answers_as_a_batch_of_one(
    client: httpx.AsyncClient, org: Org, point: str, status: int
) -> None:
    """The same point alone (`decode_one`, then cached: `write_one`) and beside a second
    point of another series (a batch): same status and problems, and the point stored."""
    params = {"bucket": org.bucket, "precision": "s"}
    headers = {**org.headers, "content-type": "application/json"}
    replies = []
    for _ in range(2):  # (the second: its series cached, where it has one)
        alone = await client.post("/v1/write", params=params, content=f"[{point}]", headers=headers)
        replies.append(alone)
    other = '{"source": "other", "field": "t", "value": 0.0, "time": 1700000000}'
    batch = await client.post(
        "/v1/write", params=params, content=f"[{point}, {other}]", headers=headers
    )
    for alone in replies:
        assert alone.status_code == status == batch.status_code, alone.text
        if status == 200:
            assert alone.json() == {"written": 1, "series": 1}
        else:
            assert alone.json()["errors"] == batch.json()["errors"]
    if status == 200:
        read = await client.get(
            "/v1/query", params={"bucket": org.bucket, "source": "s1"}, headers=org.headers
        )
        [series] = read.json()["series"]
        assert [p["value"] for p in series["points"]] == [1.5]


async def test_a_key_limited_to_one_bucket_writes_no_other_by_one_point(
    client: httpx.AsyncClient, org: Org
) -> None:
    """A series cached by the organisation's admin write, then one point to it by a key
    limited to another bucket: refused (403) as a batch would be, alone and again (the
    cache's bucket compared on the one-point path), and nothing stored; its own bucket's
    one-point writes taken."""
    other = await client.post("/v1/buckets", json={"key": "other"}, headers=org.headers)
    assert other.status_code == 201, other.text
    point = '[{"source": "s1", "field": "t", "value": 1.5, "time": 1700000000}]'
    headers = {**org.headers, "content-type": "application/json"}
    params = {"bucket": org.bucket, "precision": "s"}
    assert (
        await client.post("/v1/write", params=params, content=point, headers=headers)
    ).status_code == 200
    limited = await org.new_key(client, ["data:write", "data:read"], bucket="other")
    as_limited = {"authorization": f"Bearer {limited['key']}", "content-type": "application/json"}
    for _ in range(2):
        reply = await client.post(
            "/v1/write", params=params, content=point.replace("1.5", "9.5"), headers=as_limited
        )
        assert reply.status_code == 403, reply.text
    read = await client.get(
        "/v1/query", params={"bucket": org.bucket, "source": "s1"}, headers=org.headers
    )
    assert [p["value"] for p in read.json()["series"][0]["points"]] == [1.5]
    own = {"bucket": "other", "precision": "s"}
    for value in ("2.5", "3.5"):
        reply = await client.post(
            "/v1/write", params=own, content=point.replace("1.5", value), headers=as_limited
        )
        assert reply.json() == {"written": 1, "series": 1}
