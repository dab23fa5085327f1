"""WriteOptions.groups: rows that stand or fall together inside one write (the MQTT consumer's
folded messages), on both backends."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from sensorbase.auth.keys import Principal
from sensorbase.errors import InvalidInput
from sensorbase.ingest.pipeline import WriteOptions
from sensorbase.model import PointBatch, SeriesKey
from sensorbase.services import Services
from sensorbase.settings import Settings
from sensorbase.storage import open_store

T = 1_700_000_000_000_000


@pytest.fixture
def node(settings: Settings) -> Iterator[Services]:
    svc = Services(settings, open_store(settings))
    svc.start()
    yield svc
    svc.stop()


async def test_a_problem_refuses_its_whole_group_and_nothing_else(node: Services) -> None:
    org = node.store.reader().get_org("default")
    assert org is not None
    admin = Principal("k", org.id, ("admin",), None, False)
    await node.catalog.buckets.create(admin, "farm", "Farm")
    # Three groups (messages) of two rows; the second group's second row is not finite, and
    # its first row is the only one of series 'lone' (which must not be created).
    batch = PointBatch(
        [SeriesKey("farm", "a", "t"), SeriesKey("farm", "lone", "t")],
        np.array([0, 0, 1, 0, 0, 0], np.int32),
        np.array([T, T + 1, T + 2, T + 3, T + 4, T + 5], np.int64),
        np.array([1.0, 2.0, 3.0, float("nan"), 5.0, 6.0]),
    )
    groups = np.array([0, 0, 1, 1, 2, 2], np.int32)
    options = WriteOptions(partial=True, groups=groups, origin=np.arange(6, dtype=np.int32))
    outcome = await node.ingest.write(admin, batch, options)
    assert outcome.receipt.points == 4
    assert [(p.index, p.field) for p in outcome.rejected] == [(3, "value")]
    sources = await node.catalog.sources.page(admin, "farm", 10, 0)
    assert [s.key for s in sources[0]] == ["a"]
    # Without groups, partial stores every good row (the group's other row too).
    plain = await node.ingest.write(admin, batch, WriteOptions(partial=True))
    assert plain.receipt.points == 5
    with pytest.raises(InvalidInput):
        await node.ingest.write(admin, batch)
