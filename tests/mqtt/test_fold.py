"""Messages' batches folded into one: series keys shared, rows and items numbered across the
messages, and each problem traced back to its message."""

from __future__ import annotations

import numpy as np

from sensorbase.errors import Problem
from sensorbase.model import PointBatch, SeriesKey
from sensorbase.mqtt.fold import fold, refused_messages

A, B, C = (SeriesKey("farm", "s", f) for f in "abc")


def batch(keys: list[SeriesKey], index: list[int], extra: list[str | None] | None) -> PointBatch:
    n = len(index)
    return PointBatch(
        keys,
        np.array(index, np.int32),
        np.arange(n, dtype=np.int64),
        np.arange(n, dtype=np.float64) + 10 * len(keys),
        extra,
    )


def test_fold_and_trace_problems_back() -> None:
    first = batch([A, B], [0, 1, 1], None)  # three items, one row each
    second = batch([C, A], [0, 1, 0, 1], ['{"m":1}', None, None, None])  # two items of 2 rows
    third = batch([B], [0], None)
    folded = fold([(first, None), (second, np.array([0, 0, 1, 1], np.int32)), (third, None)])
    assert folded.batch.keys == [A, B, C]
    assert folded.batch.series_index.tolist() == [0, 1, 1, 2, 0, 2, 0, 1]
    assert folded.groups.tolist() == [0, 0, 0, 1, 1, 1, 1, 2]
    assert folded.origin.tolist() == [0, 1, 2, 3, 3, 4, 4, 5]
    assert folded.batch.extra == [None, None, None, '{"m":1}', None, None, None, None]
    assert folded.batch.value.tolist() == [*first.value, *second.value, *third.value]
    assert refused_messages(folded, [Problem("bad", "value", 4)]) == {1}
    assert refused_messages(folded, [Problem("bad", "time", 2), Problem("x", None, 5)]) == {0, 2}
    assert refused_messages(folded, []) == set()
