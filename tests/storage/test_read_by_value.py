"""Reader.read_range_by_value on every backend: the first `limit` points of a time range in
value order, ties broken by time in the same direction (Datacooee's order_by=value)."""

from __future__ import annotations

import numpy as np

from sensorbase.model import ResolvedBatch, TimeRange
from sensorbase.services import Services
from sensorbase.storage.base import WriteTx


def test_read_range_by_value(services: Services) -> None:
    def seed(tx: WriteTx) -> int:
        org = tx.create_org("valueorder", "valueorder")
        bucket = tx.create_bucket(org.id, "b", "b", "", {})
        source = tx.create_source(org.id, bucket.id, "s", "s", {}, None)
        series_id = tx.get_or_create_series(source.id, ["v"])["v"]
        tx.append(
            ResolvedBatch(
                np.full(6, series_id, np.int64),
                np.array([10, 20, 30, 40, 50, 60], np.int64),
                np.array([5.0, 1.0, 5.0, 3.0, 9.0, 0.5]),
                [None, None, '{"lat":1,"lon":2}', None, None, None],
            )
        )
        return series_id

    series_id = services.committer.run_sync(seed)
    reader = services.store.reader()
    window = TimeRange(20, 60)  # 20 inclusive, 60 exclusive
    asc = reader.read_range_by_value(series_id, window, 10, "asc")
    assert asc.value.tolist() == [1.0, 3.0, 5.0, 9.0]
    assert asc.time_us.tolist() == [20, 40, 30, 50]
    assert asc.extra == [None, None, '{"lat":1,"lon":2}', None]
    both = reader.read_range_by_value(series_id, TimeRange(None, None), 3, "desc")
    assert list(zip(both.time_us.tolist(), both.value.tolist(), strict=True)) == [
        (50, 9.0),
        (30, 5.0),
        (10, 5.0),
    ]
    empty = reader.read_range_by_value(series_id, TimeRange(61, None), 3, "asc")
    assert len(empty) == 0
