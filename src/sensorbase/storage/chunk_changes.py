"""Deleting a range of points and expiring old ones, chunk by chunk (docs/lifecycle.md): one
implementation for both backends, each giving its chunks and the changes to them through
`ChunkChanges`, inside the caller's transaction. What each backend does around it (folding
the log first, locks, a fold's generation) is its lifecycle module's.

A delete drops each chunk the range covers and writes again, with the points outside the
range, each chunk the range cuts. Expiry cuts a series' oldest chunks at the cutoff, a
bounded number per transaction, and leaves their summaries where the bucket keeps them (a
wholly expired chunk's own stats are its summary: storage/chunks.expire_chunk)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

import numpy as np

from sensorbase.model import PointColumns, TimeRange
from sensorbase.storage.chunks import Chunk, Summary, expire_chunk


class ChunkChanges(Protocol):
    def chunks(self, series_id: int, time_range: TimeRange, order: str = "asc") -> Iterable[Chunk]:
        """The series' chunks holding points of the range, in time order."""

    def oldest(self, series_id: int, before_us: int, limit: int) -> list[Chunk]:
        """Up to `limit` of the series' chunks that start before `before_us`, oldest first."""

    def replace(self, series_id: int, start_us: int, kept: PointColumns) -> None:
        """The chunk at `start_us` replaced by the points `kept` of it (none: deleted)."""

    def add_summary(self, series_id: int, summary: Summary) -> None:
        """An expired part's summary, added to a summary of the same start if there is one
        (a late point written below an expired one)."""


def delete_range(changes: ChunkChanges, series_ids: list[int], time_range: TimeRange) -> None:
    for series_id in series_ids:
        for chunk in list(changes.chunks(series_id, time_range)):
            if time_range.contains(chunk.start_us) and time_range.contains(chunk.end_us):
                changes.replace(series_id, chunk.start_us, PointColumns.empty())
                continue
            points = chunk.points()
            inside = time_range.mask(points.time_us)
            changes.replace(series_id, chunk.start_us, points.take(np.flatnonzero(~inside)))


def expire(
    changes: ChunkChanges,
    series_ids: list[int],
    cutoff_us: int,
    keep_summaries: bool,
    max_chunks: int,
) -> tuple[int, int]:
    """Expire the points before `cutoff_us` of up to `max_chunks` chunks of the series: the
    chunks and points expired (fewer chunks than `max_chunks`: the series are done)."""
    done_chunks = done_points = 0
    for series_id in series_ids:
        left = max_chunks - done_chunks
        if left <= 0:
            break
        for chunk in changes.oldest(series_id, cutoff_us, left):
            summary, kept, expired = expire_chunk(chunk, cutoff_us)
            changes.replace(series_id, chunk.start_us, kept)
            if keep_summaries:
                changes.add_summary(series_id, summary)
            done_chunks += 1
            done_points += expired
    return done_chunks, done_points
