"""Two nodes on one store: a delete through one makes the other drop its cached series ids,
so it never acknowledges a write into a series that no longer exists."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import numpy as np
import pytest

from sensorbase.model import PointBatch, SeriesKey, TimeRange
from sensorbase.services import Services
from sensorbase.settings import Settings
from sensorbase.storage import open_store


@pytest.fixture
def two_nodes(settings: Settings) -> Iterator[tuple[Services, Services]]:
    quick = settings.model_copy(update={"key_cache_s": 0.05})
    a = Services(quick, open_store(quick))
    a.start()
    b = Services(quick, open_store(quick))
    b.start()
    yield a, b
    b.stop()
    a.stop()


def batch(time_us: int) -> PointBatch:
    return PointBatch(
        [SeriesKey("b", "dev", "t")],
        np.zeros(1, np.int32),
        np.array([time_us], np.int64),
        np.array([1.0]),
    )


async def test_a_delete_on_one_node_reaches_the_other_nodes_cache(
    two_nodes: tuple[Services, Services],
) -> None:
    a, b = two_nodes
    org = a.committer.run_sync(lambda tx: tx.get_org("default"))
    assert org is not None
    a.committer.run_sync(lambda tx: tx.create_bucket(org.id, "b", "b", "", {}))
    await a.ingest.write(org.id, batch(1_000_000))  # node A now caches the series id

    def source_id() -> int:
        bucket = b.store.reader().get_bucket(org.id, "b")
        assert bucket is not None
        found = b.store.reader().get_source(bucket.id, "dev")
        assert found is not None
        return found.id

    old = source_id()
    await b.ingest.delete(lambda tx: tx.delete_source(old))
    await asyncio.sleep(0.1)
    await a.ingest.write(org.id, batch(2_000_000))
    source_id()  # the write re-created the source instead of writing into the deleted one
    [series] = b.store.reader().list_series(org.id)
    points = b.store.reader().read_range(series.id, TimeRange(None, None), 10)
    assert points.time_us.tolist() == [2_000_000]
