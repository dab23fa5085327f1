"""The read path's modes, through real stores (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import numpy as np
import pytest

from sensorbase.auth.keys import Principal
from sensorbase.errors import InvalidInput, NotFound
from sensorbase.model import PointBatch, PointColumns, SeriesKey, TimeRange
from sensorbase.query.service import LIGHT_POINTS, LIGHT_SERIES, light
from sensorbase.query.spec import parse_spec
from sensorbase.services import Services
from sensorbase.settings import Settings
from sensorbase.storage import open_store
from sensorbase.storage.base import Reader

S = 1_000_000
EVERYTHING = TimeRange(None, None)


@pytest.fixture
def node(settings: Settings) -> Iterator[tuple[Services, Principal]]:
    small = settings.model_copy(update={"max_result_points": 50})
    svc = Services(small, open_store(small))
    svc.start()
    org = svc.store.reader().get_org("default")
    assert org is not None
    yield svc, Principal("k", org.id, ("admin",), None, False)
    svc.stop()


async def fill(svc: Services, who: Principal) -> None:
    """Two sources: a (fields t, h) at 1..5 s, b (field t) at 2 and 4 s."""
    await svc.catalog.buckets.create(who, "farm", "Farm")
    keys = [SeriesKey("farm", "a", "t"), SeriesKey("farm", "a", "h"), SeriesKey("farm", "b", "t")]
    rows = [(0, s, float(10 - s)) for s in range(1, 6)] + [(1, s, 50.0) for s in range(1, 6)]
    rows += [(2, 2, 7.0), (2, 4, 9.0)]
    await svc.ingest.write(
        who,
        PointBatch(
            keys,
            np.array([k for k, _, _ in rows], np.int32),
            np.array([t * S for _, t, _ in rows], np.int64),
            np.array([v for _, _, v in rows]),
        ),
    )


async def test_rows_side_by_side_paged(node: tuple[Services, Principal]) -> None:
    svc, who = node
    await fill(svc, who)
    refs = await svc.query.select(who, "farm")
    page = await svc.query.rows(refs, EVERYTHING, "asc", 1, 3)
    assert [(r.time_us // S, r.source) for r in page.rows] == [(2, "a"), (2, "b"), (3, "a")]
    assert page.rows[0].values == {"t": 8.0, "h": 50.0} and page.has_more
    last = await svc.query.rows(refs, EVERYTHING, "desc", 0, 10)
    assert len(last.rows) == 7 and not last.has_more and last.rows[0].time_us == 5 * S


async def test_points_by_value_counts_and_span(node: tuple[Services, Principal]) -> None:
    svc, who = node
    await fill(svc, who)
    [t] = await svc.query.select(who, "farm", ["a"], ["t"])
    [lowest] = await svc.query.points([t], EVERYTHING, 2, "asc", by="value")
    assert lowest.value.tolist() == [5.0, 6.0]
    refs = await svc.query.select(who, "farm")
    assert sorted(await svc.query.counts(refs, EVERYTHING)) == [2, 5, 5]
    assert await svc.query.span(refs, TimeRange(2 * S, 5 * S)) == (2 * S, 4 * S)


async def test_every_mode_keeps_within_the_result_limit(node: tuple[Services, Principal]) -> None:
    svc, who = node
    await fill(svc, who)
    refs = await svc.query.select(who, "farm")
    with pytest.raises(InvalidInput):
        await svc.query.points(refs, EVERYTHING, 20)  # 3 x 20 > 50
    with pytest.raises(InvalidInput):
        await svc.query.latest(refs, 20)
    # rows counts the points it reads, not those it asks for: 12 points exist.
    assert len((await svc.query.rows(refs, EVERYTHING, "asc", 10, 10)).rows) == 0


async def test_a_spec_selects_for_the_principal(node: tuple[Services, Principal]) -> None:
    svc, who = node
    await fill(svc, who)
    result = await svc.query.query(who, parse_spec(bucket="farm", source="b", mode="latest"))
    assert [s.points.value.tolist() for s in result.series if s.points] == [[9.0]]
    with pytest.raises(NotFound):
        await svc.query.query(who, parse_spec(bucket="farm", source="nobody"))
    stranger = Principal("x", who.org_id + 1000, ("admin",), None, False)
    with pytest.raises(NotFound):
        await svc.query.query(stranger, parse_spec(bucket="farm"))


@pytest.mark.parametrize(
    ("params", "is_light"),
    [
        ({"source": "a", "field": "t", "aggregate": "count,avg"}, True),
        ({"source": "a,b", "field": "t,h", "aggregate": "min,max,first,last,sum"}, True),
        ({"source": "a", "field": "t", "mode": "latest", "limit": LIGHT_POINTS}, True),
        ({"source": "a", "field": "t", "aggregate": "count", "every": "1h"}, False),
        ({"source": "a", "field": "t", "aggregate": "count,p99"}, False),  # (every point)
        ({"source": "a", "aggregate": "count"}, False),  # (the source's fields: any number)
        ({"field": "t", "aggregate": "count"}, False),  # (the bucket's sources)
        ({"source": "a", "field": "t"}, True),  # (a raw page of the default limit)
        ({"source": "a", "field": "t", "limit": LIGHT_POINTS + 1}, False),
        ({"source": "a,b", "field": "t,h", "limit": LIGHT_POINTS // 4}, True),
        ({"source": "a", "field": "t", "mode": "m4", "width": 100, "last": "1d"}, False),
        ({"source": "a", "field": "t", "mode": "latest", "limit": LIGHT_POINTS + 1}, False),
        ({"source": "a,b", "field": "t", "mode": "latest", "limit": LIGHT_POINTS}, False),
        (
            {
                "source": [f"s{i}" for i in range(LIGHT_SERIES + 1)],
                "field": "t",
                "aggregate": "count",
            },
            False,
        ),
    ],
)
def test_which_queries_are_light(params: dict[str, Any], is_light: bool) -> None:
    assert light(parse_spec(bucket="farm", **params), 1_000) is is_light


async def test_light_queries_run_on_the_event_loop_where_the_store_allows(
    node: tuple[Services, Principal],
) -> None:
    """On SQLite a light query reads on the event loop's thread, with the answer a worker
    thread's read gives; anything else (and every read on PostgreSQL) on a worker thread,
    as does a light query while another read is on one. Tenancy is the same code either way."""
    svc, who = node
    await fill(svc, who)
    loop_thread = threading.get_ident()
    threads: list[int] = []
    hold = threading.Event()
    take = svc.query._reader

    def reader() -> Reader:
        threads.append(threading.get_ident())
        if threading.get_ident() != loop_thread and not hold.is_set():
            hold.wait(10)  # (a read kept on its worker while the light one comes)
        return take()

    svc.query._reader = reader  # type: ignore[method-assign]
    hold.set()
    spec = parse_spec(bucket="farm", source="a", field="t", aggregate="count,avg,min,last")
    on_loop = svc.store.reads_on_loop
    light_result = await svc.query.query(who, spec)
    assert (threads.pop() == loop_thread) is on_loop
    assert light_result.series[0].aggregates[0].values == {
        "count": 5, "avg": 7.0, "min": 5.0, "last": 5.0,
    }  # fmt: skip
    svc.query._on_loop = False
    threaded = await svc.query.query(who, spec)
    assert threads.pop() != loop_thread
    assert threaded == light_result
    svc.query._on_loop = on_loop

    heavy = parse_spec(bucket="farm", source="a", field="t", aggregate="count", every="1s")
    await svc.query.query(who, heavy)
    assert threads.pop() != loop_thread

    hold.clear()
    aside = asyncio.create_task(svc.query.query(who, heavy))
    while not threads:
        await asyncio.sleep(0.001)
    light_task = asyncio.create_task(svc.query.query(who, spec))
    while len(threads) < 2:
        await asyncio.sleep(0.001)
    assert threads[1] != loop_thread  # (waits for no read on a worker: a worker of its own)
    hold.set()
    await asyncio.gather(aside, light_task)
    threads.clear()

    stranger = Principal("k2", who.org_id + 1, ("admin",), None, False)
    with pytest.raises(NotFound):
        await svc.query.query(stranger, spec)
    assert threads and (threads[0] == loop_thread) is on_loop


async def test_each_read_takes_the_loop_only_when_light(node: tuple[Services, Principal]) -> None:
    """The other reads (the dialects': Datacooee's, InfluxQL's) choose alike: on SQLite a
    named selection, a few series' whole-range summaries and a few of their points by time
    on the loop's thread; a whole bucket's selection and points by value (every point of
    the range) on a worker; PostgreSQL's always on a worker. The answers are the same either way."""
    svc, who = node
    await fill(svc, who)
    loop_thread = threading.get_ident()
    threads: list[int] = []
    take = svc.query._reader

    def reader() -> Reader:
        threads.append(threading.get_ident())
        return take()

    svc.query._reader = reader  # type: ignore[method-assign]
    on_loop = svc.store.reads_on_loop
    q = svc.query
    [ref] = await q.select(who, "farm", ["a"], ["t"])
    reads: list[tuple[Callable[[], Awaitable[Any]], bool]] = [
        (lambda: q.select(who, "farm", ["a"], ["t"]), True),
        (lambda: q.select(who, "farm"), False),  # (every source of the bucket)
        (lambda: q.latest([ref], 3), True),
        (lambda: q.points([ref], EVERYTHING, 2, "desc"), True),
        (lambda: q.points([ref], EVERYTHING, 2, "asc", by="value"), False),
        (lambda: q.aggregate([ref], EVERYTHING, ("count", "max")), True),
    ]
    for read, is_light in reads:
        threads.clear()
        answer = _plain(await read())
        assert (threads == [loop_thread]) is (is_light and on_loop), read
        q._on_loop = False
        assert _plain(await read()) == answer
        q._on_loop = on_loop
    assert [p.value.tolist() for p in await q.points([ref], EVERYTHING, 2, "desc")] == [[5.0, 6.0]]


def _plain(found: list[Any]) -> list[Any]:
    """A read's answer comparable with ==: points as lists."""
    return [
        (x.time_us.tolist(), x.value.tolist()) if isinstance(x, PointColumns) else x for x in found
    ]
