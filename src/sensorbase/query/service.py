"""Running a QuerySpec against a Reader, within the result limits."""

from __future__ import annotations

from dataclasses import dataclass

from sensorbase.errors import InvalidInput, NotFound, Problem, invalid
from sensorbase.model import AggregateRow, SeriesRef, SeriesResult, TimeRange
from sensorbase.query.calendar import bounds, fixed_origin
from sensorbase.query.spec import Cursor, QuerySpec
from sensorbase.storage.base import Reader


@dataclass(slots=True)
class QueryResult:
    series: list[SeriesResult]
    next_cursor: str | None = None


class QueryService:
    def __init__(self, max_result_points: int, default_limit: int) -> None:
        self.max_result_points = max_result_points
        self.default_limit = default_limit

    def select(
        self, reader: Reader, org_id: int, bucket_id: int | None, spec: QuerySpec
    ) -> list[SeriesRef]:
        found = reader.list_series(org_id, bucket_id, spec.sources, spec.fields)
        if not found and spec.sources:
            raise NotFound(f"no series for source {', '.join(spec.sources)}")
        return found

    def run(self, reader: Reader, series: list[SeriesRef], spec: QuerySpec) -> QueryResult:
        limit = spec.limit if spec.limit is not None else self.default_limit
        limit = min(limit, self.max_result_points) if spec.limit is None else limit
        if limit > self.max_result_points:
            raise invalid(
                [Problem(f"may be at most {self.max_result_points}", "limit")],
            )
        if spec.mode == "latest":
            n = spec.limit or 1
            if n * len(series) > self.max_result_points:
                raise invalid(
                    [
                        Problem(
                            f"{n} x {len(series)} series exceeds the result limit "
                            f"of {self.max_result_points}; narrow the query",
                            "limit",
                        )
                    ]
                )
            latest = reader.read_latest([s.id for s in series], n)
            return QueryResult(
                [SeriesResult(s, points=p) for s, p in zip(series, latest, strict=True)]
            )
        if spec.mode == "aggregate":
            # The cap holds for the whole query, not each series: a bucket costs a read per
            # series, so 300 series of 6,000 calendar buckets each took 73 s on SQLite.
            results, left = [], self.max_result_points
            for ref in series:
                result, buckets = self._aggregate(reader, ref, spec, left)
                results.append(result)
                left -= buckets
            return QueryResult(results)
        return self._raw(reader, series, spec, limit)

    def _raw(
        self, reader: Reader, series: list[SeriesRef], spec: QuerySpec, limit: int
    ) -> QueryResult:
        results: list[SeriesResult] = []
        remaining = limit
        cursor = spec.cursor
        started = cursor is None
        next_cursor = None
        for ref in series:
            if not started:
                if ref.id != cursor.series_id:  # type: ignore[union-attr]
                    continue
                started = True
            time_range = spec.time_range
            if cursor is not None and ref.id == cursor.series_id:
                if spec.order == "asc":
                    time_range = TimeRange(cursor.time_us + 1, time_range.end_us)
                else:
                    time_range = TimeRange(time_range.start_us, cursor.time_us)
            if remaining == 0:
                # One more probe tells whether this series still has points to page to.
                probe = reader.read_range(ref.id, time_range, 1, spec.order)
                if len(probe):
                    next_cursor = _resume(results, ref, time_range, spec.order)
                    break
                continue
            points = reader.read_range(ref.id, time_range, remaining + 1, spec.order)
            if len(points) > remaining:
                points.time_us = points.time_us[:remaining]
                points.value = points.value[:remaining]
                if points.extra is not None:
                    points.extra = points.extra[:remaining]
                results.append(SeriesResult(ref, points=points))
                next_cursor = Cursor(ref.id, int(points.time_us[-1])).encode()
                break
            remaining -= len(points)
            results.append(SeriesResult(ref, points=points))
        if cursor is not None and not started:
            raise InvalidInput(
                "the cursor does not belong to this query", [Problem("unknown", "cursor")]
            )
        return QueryResult(results, next_cursor)

    def _aggregate(
        self, reader: Reader, ref: SeriesRef, spec: QuerySpec, cap: int
    ) -> tuple[SeriesResult, int]:
        """The series' aggregates, and the buckets they took of the `cap` left to the query."""
        if spec.every is None:
            row = reader.aggregate(ref.id, spec.time_range, spec.aggregates)
            return SeriesResult(ref, aggregates=[row]), 1
        start, end = spec.time_range.start_us, spec.time_range.end_us
        if start is None or end is None:
            first = reader.read_range(ref.id, spec.time_range, 1, "asc")
            last = reader.read_latest([ref.id], 1)[0] if end is None else None
            if not len(first):
                return SeriesResult(ref, aggregates=[]), 0
            start = start if start is not None else int(first.time_us[0])
            end = end if end is not None else int(last.time_us[0]) + 1  # type: ignore[union-attr]
        fixed = spec.every.fixed_us
        if fixed is not None:
            buckets = (end - start) // fixed
            if buckets > cap:
                raise _too_many_buckets(self.max_result_points)
            rows = reader.aggregate_fixed(
                ref.id,
                TimeRange(start, end),
                fixed,
                fixed_origin(start, fixed, spec.tz),
                spec.aggregates,
            )
            return SeriesResult(ref, aggregates=rows), buckets
        edges = bounds(start, end, spec.every.amount, spec.every.unit, spec.tz, cap)
        if edges[-1] < end:  # `bounds` stopped at the cap
            raise _too_many_buckets(self.max_result_points)
        if len(edges) < 2:
            return SeriesResult(ref, aggregates=[]), 0
        # The calendar buckets cut to the range, labelled by where the whole bucket starts.
        cut = [start, *edges[1:-1], end]
        label: dict[int | None, int] = dict(zip(cut, edges, strict=True))
        rows = reader.aggregate_bounds(ref.id, cut, spec.aggregates)
        aggregates = [AggregateRow(label[r.start_us], r.values) for r in rows]
        return SeriesResult(ref, aggregates=aggregates), len(edges) - 1


def _resume(results: list[SeriesResult], ref: SeriesRef, time_range: TimeRange, order: str) -> str:
    """A cursor that resumes at the start of `ref` (nothing of it was returned yet)."""
    if order == "asc":
        edge = (time_range.start_us if time_range.start_us is not None else -(2**62)) - 1
    else:
        edge = time_range.end_us if time_range.end_us is not None else 2**62
    return Cursor(ref.id, edge).encode()


def _too_many_buckets(cap: int) -> InvalidInput:
    reason = (
        f"gives more than {cap} buckets over the series of this query; widen 'every', "
        "narrow the range or choose fewer series"
    )
    return invalid([Problem(reason, "every")])
