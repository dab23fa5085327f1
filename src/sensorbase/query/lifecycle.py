"""What the read path does about retention (docs/lifecycle.md).

Expired points are hidden here, at read, whether or not the retention job has removed them
yet: every read's range starts no earlier than its bucket's cutoff (now - retention), and
latest values older than it are dropped. Aggregates of a bucket that keeps summaries are the
exception: they read the raw points in the whole range (those past the cutoff that the job has
not reached yet included, so that an answer never drops what neither the points nor the
summaries hold yet) and add the summaries that start in the range, at their resolution (a
chunk, or an hour on PostgreSQL): a summary counts in the interval where it starts."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Iterable

from sensorbase.model import AggregateRow, Lifecycle, PointColumns, SeriesRef, Summary, TimeRange
from sensorbase.storage.base import Reader
from sensorbase.times import now_us

# What a summary holds; any other aggregate cannot be answered from one (None where one
# contributed).
FROM_SUMMARIES = ("count", "min", "max", "sum", "avg", "first", "last")
_NEEDED = ("count", "min", "max", "sum", "first", "last")


def visible(time_range: TimeRange, lifecycle: Lifecycle | None, now_us: int) -> TimeRange:
    """The part of the range whose points have not expired."""
    if lifecycle is None:
        return time_range
    cutoff = lifecycle.cutoff_us(now_us)
    if time_range.start_us is not None and time_range.start_us >= cutoff:
        return time_range
    end = time_range.end_us
    return TimeRange(cutoff, end if end is None or end > cutoff else cutoff)


def unexpired(points: PointColumns, lifecycle: Lifecycle | None, now_us: int) -> PointColumns:
    """Newest-first points without the expired ones (which are the last)."""
    if lifecycle is None or not len(points):
        return points
    cutoff = lifecycle.cutoff_us(now_us)
    kept = int((points.time_us >= cutoff).sum())
    return points if kept == len(points) else points.take(slice(0, kept)).trimmed()


def with_needed(aggregates: tuple[str, ...]) -> tuple[str, ...]:
    """The aggregates to ask of the raw points when summaries are to be added to them."""
    return (*aggregates, *(a for a in _NEEDED if a not in aggregates))


def combine(
    row: AggregateRow | None, summaries: list[Summary], aggregates: tuple[str, ...]
) -> dict[str, float | int | None]:
    """The aggregates of raw points (`row`, asked `with_needed`) and summaries together.
    Summaries are older than the raw points (they are what expired), so the first value is
    theirs when there are any and the last the raw points' when there are any."""
    raw = row.values if row is not None else {}
    count = int(raw.get("count") or 0) + sum(s.count for s in summaries)
    if not summaries:
        return {a: raw.get(a) for a in aggregates}
    mins = [s.min for s in summaries] + ([raw["min"]] if raw.get("min") is not None else [])
    maxs = [s.max for s in summaries] + ([raw["max"]] if raw.get("max") is not None else [])
    total = sum(s.sum for s in summaries) + float(raw.get("sum") or 0.0)
    every: dict[str, float | int | None] = {
        "count": count,
        "min": min(mins),  # type: ignore[type-var]
        "max": max(maxs),  # type: ignore[type-var]
        "sum": total,
        "avg": total / count,
        "first": summaries[0].first,
        "last": raw["last"] if raw.get("last") is not None else summaries[-1].last,
    }
    return {a: every.get(a) for a in aggregates}


def by_interval(
    summaries: Iterable[Summary], interval_of: Callable[[int], int | None]
) -> dict[int, list[Summary]]:
    """Summaries grouped by the interval their start falls in (None: outside every one)."""
    found: dict[int, list[Summary]] = {}
    for summary in summaries:
        at = interval_of(summary.start_us)
        if at is not None:
            found.setdefault(at, []).append(summary)
    return found


def bound_of(bounds: list[int]) -> Callable[[int], int | None]:
    """The start of the interval [bounds[i], bounds[i+1]) holding a time."""

    def find(time_us: int) -> int | None:
        at = bisect_right(bounds, time_us) - 1
        return bounds[at] if 0 <= at < len(bounds) - 1 else None

    return find


def summaries_until(summaries: Iterable[Summary]) -> int | None:
    """The instant before which an answer came from summaries (None: none did)."""
    ends = [s.end_us for s in summaries]
    return max(ends) + 1 if ends else None


class Visible:
    """One read's view of its series' retention: ranges cut to what has not expired, and
    aggregates with the summaries added where the bucket keeps them."""

    def __init__(self, reader: Reader, refs: list[SeriesRef]) -> None:
        self.reader = reader
        self.now_us = now_us()
        self.of = reader.series_lifecycle([r.id for r in refs]) if refs else {}

    def range(self, ref: SeriesRef, time_range: TimeRange) -> TimeRange:
        return visible(time_range, self.of.get(ref.id), self.now_us)

    def latest(self, refs: list[SeriesRef], n: int) -> list[PointColumns]:
        found = self.reader.read_latest([r.id for r in refs], n)
        return [
            unexpired(points, self.of.get(ref.id), self.now_us)
            for ref, points in zip(refs, found, strict=True)
        ]

    def _summarised(self, ref: SeriesRef) -> bool:
        found = self.of.get(ref.id)
        return found is not None and found.keep_summaries

    def _aggregated(self, ref: SeriesRef, time_range: TimeRange) -> TimeRange:
        return time_range if self._summarised(ref) else self.range(ref, time_range)

    def _summaries(self, ref: SeriesRef, time_range: TimeRange) -> list[Summary]:
        if not self._summarised(ref):
            return []
        return self.reader.read_summaries(ref.id, time_range)

    def summarised(
        self, ref: SeriesRef, time_range: TimeRange, interval_of: Callable[[int], int | None]
    ) -> tuple[set[int], int | None]:
        """The intervals (by `interval_of` a summary's start) where summaries take part in the
        aggregates, and the instant before which they do (None: nowhere). There, the
        aggregates no summary holds (FROM_SUMMARIES) cannot be answered."""
        summaries = self._summaries(ref, time_range)
        return set(by_interval(summaries, interval_of)), summaries_until(summaries)

    def edges(self, ref: SeriesRef, time_range: TimeRange) -> tuple[int, int] | None:
        """The first and last instant holding points or summaries of the series."""
        span = self._aggregated(ref, time_range)
        times: list[int] = []
        first = self.reader.read_range(ref.id, span, 1, "asc")
        if len(first):
            if span.end_us is None and ref.id not in self.of:
                last = self.reader.read_latest([ref.id], 1)[0]
            else:
                last = self.reader.read_range(ref.id, span, 1, "desc")
            times += [int(first.time_us[0]), int(last.time_us[0])]
        summaries = self._summaries(ref, time_range)
        if summaries:
            times += [summaries[0].start_us, max(s.end_us for s in summaries)]
        return (min(times), max(times)) if times else None

    def aggregate(
        self, ref: SeriesRef, time_range: TimeRange, aggregates: tuple[str, ...]
    ) -> tuple[AggregateRow, int | None]:
        summaries = self._summaries(ref, time_range)
        if not summaries:
            span = self._aggregated(ref, time_range)
            return self.reader.aggregate(ref.id, span, aggregates), None
        row = self.reader.aggregate(ref.id, time_range, with_needed(aggregates))
        return AggregateRow(None, combine(row, summaries, aggregates)), summaries_until(summaries)

    def aggregate_fixed(
        self,
        ref: SeriesRef,
        time_range: TimeRange,
        every_us: int,
        origin_us: int,
        aggregates: tuple[str, ...],
    ) -> tuple[list[AggregateRow], int | None]:
        summaries = self._summaries(ref, time_range)
        span = self._aggregated(ref, time_range)
        if not summaries:
            found = self.reader.aggregate_fixed(ref.id, span, every_us, origin_us, aggregates)
            return found, None
        rows = self.reader.aggregate_fixed(
            ref.id, span, every_us, origin_us, with_needed(aggregates)
        )
        grouped = by_interval(
            summaries, lambda t: origin_us + (t - origin_us) // every_us * every_us
        )
        return _merged(rows, grouped, aggregates), summaries_until(summaries)

    def aggregate_bounds(
        self, ref: SeriesRef, bounds: list[int], aggregates: tuple[str, ...]
    ) -> tuple[list[AggregateRow], int | None]:
        whole = TimeRange(bounds[0], bounds[-1])
        summaries = self._summaries(ref, whole)
        if not self._summarised(ref) and ref.id in self.of:  # cut to what has not expired
            cutoff = self.of[ref.id].cutoff_us(self.now_us)
            if cutoff >= bounds[-1]:
                return [], None
            cut = [max(bounds[0], cutoff), *(b for b in bounds[1:] if b > cutoff)]
            label = bound_of(bounds)
            found = self.reader.aggregate_bounds(ref.id, cut, aggregates)
            return [AggregateRow(label(r.start_us or 0), r.values) for r in found], None
        if not summaries:
            return self.reader.aggregate_bounds(ref.id, bounds, aggregates), None
        rows = self.reader.aggregate_bounds(ref.id, bounds, with_needed(aggregates))
        grouped = by_interval(summaries, bound_of(bounds))
        return _merged(rows, grouped, aggregates), summaries_until(summaries)


def _merged(
    rows: list[AggregateRow], grouped: dict[int, list[Summary]], aggregates: tuple[str, ...]
) -> list[AggregateRow]:
    raw = {r.start_us: r for r in rows}
    starts = sorted({*(s for s in raw if s is not None), *grouped})
    return [AggregateRow(s, combine(raw.get(s), grouped.get(s, []), aggregates)) for s in starts]
