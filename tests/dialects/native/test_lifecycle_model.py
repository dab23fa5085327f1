"""A read never shows a deleted or expired point and always shows every other one: Hypothesis
drives writes, range deletes, folds and retention passes through the native API on every
backend, and every read is checked against a dict of what should be there."""

from __future__ import annotations

import itertools
from typing import Any

import httpx
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from sensorbase.services import Services
from sensorbase.times import format_us, now_us
from tests.conftest import Org

HOUR = 3_600_000_000
DAY = 24 * HOUR
RETENTION_DAYS = 10
SOURCES = ("a", "b")
FIELDS = ("t", "h")
_buckets = itertools.count()

# Hours before now (and half an hour more, so no point lies on the moving cutoff).
hours = st.integers(0, 20 * 24)
write = st.tuples(
    st.just("write"),
    st.lists(
        st.tuples(st.sampled_from(SOURCES), st.sampled_from(FIELDS), hours, st.integers(-50, 50)),
        min_size=1,
        max_size=30,
    ),
)
delete = st.tuples(
    st.just("delete"),
    st.lists(st.sampled_from(SOURCES), max_size=2, unique=True),
    st.lists(st.sampled_from(FIELDS), max_size=2, unique=True),
    hours,
    st.integers(1, 200),
)
operation = st.one_of(write, delete, st.just(("fold",)), st.just(("expire",)))


@hypothesis_settings(
    max_examples=10,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(operations=st.lists(operation, min_size=1, max_size=8), summaries=st.booleans())
async def test_reads_show_exactly_the_points_neither_deleted_nor_expired(
    client: httpx.AsyncClient,
    org: Org,
    services: Services,
    operations: list[tuple[Any, ...]],
    summaries: bool,
) -> None:
    bucket = f"m{next(_buckets)}"
    made = await client.post(
        "/v1/buckets",
        json={"key": bucket, "retention": f"{RETENTION_DAYS}d", "keep_summaries": summaries},
        headers=org.headers,
    )
    assert made.status_code == 201, made.text
    now = now_us()

    def at(hours_ago: int) -> int:
        return now - hours_ago * HOUR - HOUR // 2

    model: dict[tuple[str, str, int], float] = {}
    for op in operations:
        if op[0] == "write":
            body = [
                {"source": s, "fields": {f: float(v)}, "time": format_us(at(h))}
                for s, f, h, v in op[1]
            ]
            reply = await client.post(
                "/v1/write", json={"bucket": bucket, "points": body}, headers=org.headers
            )
            assert reply.status_code == 200, reply.text
            model.update({(s, f, at(h)): float(v) for s, f, h, v in op[1]})
        elif op[0] == "delete":
            _, sources, fields, hours_ago, span = op
            start, end = at(hours_ago + span), at(hours_ago)
            params: dict[str, Any] = {
                "bucket": bucket, "start": format_us(start), "end": format_us(end)
            }  # fmt: skip
            if sources:
                params["source"] = sources
            if fields:
                params["field"] = fields
            reply = await client.delete("/v1/points", params=params, headers=org.headers)
            known = {s for s, _, _ in model} | {s for s, _, _ in _written(operations, op)}
            if any(s not in known for s in sources):
                assert reply.status_code == 404, reply.text
                continue
            assert reply.status_code == 200, reply.text
            for key in list(model):
                s, f, t = key
                chosen = (not sources or s in sources) and (not fields or f in fields)
                if chosen and start <= t < end:
                    del model[key]
        elif op[0] == "fold":
            fold_points = getattr(services.store, "fold_points", None)
            if fold_points is not None:
                fold_points()
        else:
            assert (await services.retention.run_once()).ran
        await _check(client, org, bucket, model)


def _written(operations: list[tuple[Any, ...]], upto: tuple[Any, ...]) -> set[tuple[str, str, int]]:
    """Sources written before `upto` (a source stays once created, even if its points go)."""
    found = set()
    for op in operations:
        if op is upto:
            break
        if op[0] == "write":
            found |= {(s, f, 0) for s, f, _, _ in op[1]}
    return found


async def _check(
    client: httpx.AsyncClient, org: Org, bucket: str, model: dict[tuple[str, str, int], float]
) -> None:
    cutoff = now_us() - RETENTION_DAYS * DAY
    reply = await client.get(
        "/v1/query", params={"bucket": bucket, "limit": 10_000}, headers=org.headers
    )
    assert reply.status_code == 200, reply.text
    found = {
        (s["source"], s["field"], p["time"]): p["value"]
        for s in reply.json()["series"]
        for p in s["points"]
    }
    expected = {(s, f, format_us(t)): v for (s, f, t), v in model.items() if t >= cutoff}
    assert found == expected
