"""A burst of messages folded into one batch for one `Ingest.write`, each message a group of
rows that stands or falls alone (`WriteOptions.groups`), and the write's problems traced back
to the messages they came from.

Folding is where MQTT's throughput comes from: a message of 100 points written alone costs a
write's fixed price (the checks, the series lookup, a job in the group commit) for few points;
a burst of them pays it once."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from sensorbase.errors import Problem
from sensorbase.model import PointBatch, SeriesKey


@dataclass(frozen=True, slots=True)
class Folded:
    batch: PointBatch
    origin: npt.NDArray[np.int32]  # row -> item, items numbered across the messages
    groups: npt.NDArray[np.int32]  # row -> message
    first_items: npt.NDArray[np.int64]  # message -> the number of its first item


def fold(parts: list[tuple[PointBatch, npt.NDArray[np.int32] | None]]) -> Folded:
    """The messages' batches (with the item of each row, None: one item a row) as one."""
    keys: dict[SeriesKey, int] = {}
    series_index, origin, groups, first_items = [], [], [], []
    extras: list[str | None] = []
    has_extra = any(batch.extra for batch, _ in parts)
    items = 0
    for number, (batch, rows_items) in enumerate(parts):
        n = len(batch)
        remap = np.array([keys.setdefault(k, len(keys)) for k in batch.keys], np.int32)
        series_index.append(remap[batch.series_index] if n else np.empty(0, np.int32))
        local = np.arange(n, dtype=np.int32) if rows_items is None else rows_items
        origin.append(local + items)
        groups.append(np.full(n, number, np.int32))
        first_items.append(items)
        items += int(local.max()) + 1 if n else 0
        if has_extra:
            extras.extend(batch.extra if batch.extra is not None else [None] * n)
    batch = PointBatch(
        list(keys),
        np.concatenate(series_index).astype(np.int32),
        np.concatenate([b.time_us for b, _ in parts]),
        np.concatenate([b.value for b, _ in parts]),
        extras if has_extra else None,
    )
    return Folded(
        batch,
        np.concatenate(origin).astype(np.int32),
        np.concatenate(groups),
        np.array(first_items, np.int64),
    )


def refused_messages(folded: Folded, problems: list[Problem]) -> set[int]:
    """The messages a write's problems name (each by one of its items)."""
    items = [p.index for p in problems if p.index is not None]
    if not items:
        return set()
    found = np.searchsorted(folded.first_items, np.array(items), side="right") - 1
    return set(found.tolist())
