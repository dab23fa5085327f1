"""Merging a series' adjacent small chunks into chunks of up to `CHUNK_POINTS` points, on both
backends: which chunks (`groups`), and the plan of one bounded step (`plan`); each backend
gives its chunks through `ChunkMerges` and writes the plan in its own transaction
(sqlite/merges.py, postgres/merges.py), as a fold writes its chunks.

A fold refills a series' last chunk only while it holds fewer than `REFILL_BELOW` points
(chunks.py says why), so a series ends in chunks of whatever its folds brought: a fleet's
device ~1,000-1,500 points each, a dense series written in small folds ~2,000. Each chunk
costs its row, its pcodec models and its blocks' header beside its points (~200 bytes on
SQLite), and pcodec fits a longer chunk better: the benchmark's store took 0.79 bytes a point
with its fleet in chunks of 1,000-1,200 points, 0.60 with them merged (benchmarks/README.md,
"Disk: merged chunks").

Chunks of fewer than `MERGE_BELOW` points are merged with their neighbours of the same kind,
as many as fit in `CHUNK_POINTS`. While a series is written (`settled` False) its last chunk,
the one the next fold refills, is left out, and a group is merged only once it holds
`MERGE_BELOW` points, so that a merged chunk is not merged again and each point is
re-encoded by merging once. Once writes have paused (`settled`), any two or more adjacent
small chunks are merged, the last one too; the fold at that moment (SQLite's) takes a series'
trailing small chunks in with its new points already (`settled_tail`), so that they are
encoded once there rather than by the fold and then by the merge.

A merge replaces chunks by a chunk of the same points: every read gives the same answer
before and after, and the day summaries follow by the triggers that keep them. A point of
the log that falls among merged chunks is still merged over them by reads (the log wins) and
folded later, as over any chunk; a fold or a delete planned before a merge is refused and
planned again (SQLite's generation), or waits for the merge's fold lock (PostgreSQL)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sensorbase.model import PointColumns
from sensorbase.storage.chunks import CHUNK_COLUMNS, CHUNK_POINTS, Chunk, chunk_of_row, encode

MERGE_BELOW = CHUNK_POINTS // 2  # chunks with fewer points are merged with their neighbours
MERGE_POINTS = 131_072  # most points one step merges (one transaction: bounded, ~0.1-0.3 s)


class ChunkMerges:
    """The chunks as `plan` reads them. The statements are the same on both backends
    (`?` marks); each backend's subclass runs them (`_rows`) in its transaction."""

    def _rows(self, statement: str, params: tuple[Any, ...]) -> list[Any]:
        raise NotImplementedError

    def small(self, after_series: int, limit: int, least_points: int) -> list[int]:
        """Up to `limit` series after `after_series` (ascending) that have at least two
        chunks of fewer than MERGE_BELOW points, holding `least_points` together."""
        return [
            row[0]
            for row in self._rows(
                f"SELECT series_id FROM point_chunks WHERE count < {MERGE_BELOW} "
                "AND series_id > ? GROUP BY series_id "
                "HAVING count(*) >= 2 AND sum(count) >= ? ORDER BY series_id LIMIT ?",
                (after_series, least_points, limit),
            )
        ]

    def counts(self, series_id: int) -> list[tuple[int, int]]:
        """The series' chunks as (start_us, count), in time order."""
        return [
            (int(start), int(count))
            for start, count in self._rows(
                "SELECT start_us, count FROM point_chunks WHERE series_id = ? ORDER BY start_us",
                (series_id,),
            )
        ]

    def chunks_at(self, series_id: int, starts: list[int]) -> list[Chunk]:
        """The series' chunks at these starts, in time order."""
        marks = ",".join("?" * len(starts))
        return [
            chunk_of_row(row)
            for row in self._rows(
                f"SELECT {CHUNK_COLUMNS} FROM point_chunks "
                f"WHERE series_id = ? AND start_us IN ({marks}) ORDER BY start_us",
                (series_id, *starts),
            )
        ]


def groups(counts: list[tuple[int, int]], settled: bool) -> list[list[int]]:
    """The starts of the chunks to merge, a group per chunk to make, from a series' chunks
    (`counts`: start_us and count, in time order)."""
    if not settled:
        counts = counts[:-1]  # the one the next fold refills
    found: list[list[int]] = []
    group: list[int] = []
    points = 0

    def close() -> None:
        if len(group) >= 2 and (settled or points >= MERGE_BELOW):
            found.append(list(group))

    for start_us, count in counts:
        if count >= MERGE_BELOW or points + count > CHUNK_POINTS:
            close()
            group.clear()
            points = 0
        if count < MERGE_BELOW:
            group.append(start_us)
            points += count
    close()
    return found


def settled_tail(counts: list[int], new_points: int) -> int:
    """How many of a series' chunks just before a fold's new points (`counts`, newest first)
    a fold once writes have paused takes in with those points: the adjacent ones of fewer than
    MERGE_BELOW points, as many as fit in one chunk (CHUNK_POINTS) with them. The settled merge
    after that fold would merge those chunks with the new points' chunk (`groups`): taken in
    by the fold, each of those points is encoded once there, not once by the fold and again by
    the merge (a fleet's series that got 1,000 points a fold kept chunks of ~1,000 until the
    writes paused, and then encoded the last fold's points twice)."""
    taken, points = 0, new_points
    for count in counts:
        if count >= MERGE_BELOW or points + count > CHUNK_POINTS:
            break
        taken += 1
        points += count
    return taken


@dataclass(slots=True)
class MergePlan:
    drop: list[tuple[int, int]] = field(default_factory=list)  # (series_id, start_us)
    add: list[tuple[Any, ...]] = field(default_factory=list)  # chunk rows to insert
    points: int = 0
    next_series: int | None = None  # where the next step starts (None: every series done)


def plan(
    merges: ChunkMerges, after_series: int, settled: bool, most_points: int = MERGE_POINTS
) -> MergePlan:
    """The merges of the series after `after_series`, up to about `most_points` points (at
    least one series' groups, so that every step moves on)."""
    out = MergePlan(next_series=None)
    while True:
        # (While written, a series can have a group only once its small chunks hold
        # MERGE_BELOW points: most of a fleet's series are not looked at.)
        series = merges.small(after_series, 64, 0 if settled else MERGE_BELOW)
        for series_id in series:
            for starts in groups(merges.counts(series_id), settled):
                chunks = merges.chunks_at(series_id, starts)
                points = PointColumns.concat([c.points() for c in chunks])
                out.drop.extend((series_id, c.start_us) for c in chunks)
                out.add.append(encode(series_id, points))
                out.points += len(points)
            after_series = series_id
            if out.points >= most_points:
                out.next_series = series_id
                return out
        if len(series) < 64:
            return out
