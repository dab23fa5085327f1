"""WriteOptions.source_meta: the meta of a source a write creates, asked only then; a source
that exists keeps its meta, on both backends."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from sensorbase.auth.keys import Principal
from sensorbase.ingest.pipeline import WriteOptions
from sensorbase.model import PointBatch, SeriesKey
from sensorbase.services import Services
from sensorbase.settings import Settings
from sensorbase.storage import open_store


@pytest.fixture
def node(settings: Settings) -> Iterator[Services]:
    svc = Services(settings, open_store(settings))
    svc.start()
    yield svc
    svc.stop()


def two_sources() -> PointBatch:
    return PointBatch(
        [SeriesKey("farm", "new", "t"), SeriesKey("farm", "old", "t")],
        np.array([0, 1], np.int32),
        np.array([1_000_000, 1_000_000], np.int64),
        np.array([1.0, 2.0]),
    )


async def test_a_created_source_gets_its_meta_and_an_existing_one_keeps_its_own(
    node: Services,
) -> None:
    org = node.store.reader().get_org("default")
    assert org is not None
    admin = Principal("k", org.id, ("admin",), None, False)
    bucket = await node.catalog.buckets.create(admin, "farm", "Farm")
    await node.catalog.sources.create(admin, bucket, "old", meta={"mine": 1})
    asked: list[tuple[str, str]] = []

    def meta(bucket: str, source: str) -> dict[str, object]:
        asked.append((bucket, source))
        return {"influx": {"measurement": source}}

    await node.ingest.write(admin, two_sources(), WriteOptions(source_meta=meta))
    assert asked == [("farm", "new")]
    assert (await node.catalog.sources.get(admin, "farm", "new")).meta == {
        "influx": {"measurement": "new"}
    }
    assert (await node.catalog.sources.get(admin, "farm", "old")).meta == {"mine": 1}
    await node.ingest.write(admin, two_sources(), WriteOptions(source_meta=meta))
    assert asked == [("farm", "new")]  # cached series: nothing is created, nothing asked
