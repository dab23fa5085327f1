"""The read path's modes, through real stores (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from sensorbase.auth.keys import Principal
from sensorbase.errors import InvalidInput, NotFound
from sensorbase.model import PointBatch, SeriesKey, TimeRange
from sensorbase.query.spec import parse_spec
from sensorbase.services import Services
from sensorbase.settings import Settings
from sensorbase.storage import open_store

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
