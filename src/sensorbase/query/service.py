"""The one read path: every dialect's reads of points go through `QueryService`, which owns
its reader (each call one thread hop and one snapshot; a light query, `light`, no hop),
selects series for the principal (auth/access.py checks the bucket) and keeps every read
within the result limits.

Modes: a QuerySpec (raw pages with a cursor, latest, aggregates by fixed or calendar buckets);
points of series by time or by value; counts, spans and whole-range aggregates; and rows, the
union of several series' points keyed by (time, source) that dakkio pages through. Every read
sees a series through its bucket's retention (query/lifecycle.py `Visible`: no expired point);
a query's aggregates are computed in query/aggregation.py."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, TypeVar

from starlette.concurrency import run_in_threadpool

from sensorbase.auth import access
from sensorbase.auth.keys import Principal
from sensorbase.errors import InvalidInput, NotFound, Problem, invalid
from sensorbase.model import AggregateRow, PointColumns, SeriesRef, SeriesResult, TimeRange
from sensorbase.query.aggregation import Scan, aggregate_series
from sensorbase.query.lifecycle import Visible
from sensorbase.query.reducers import from_points
from sensorbase.query.spec import Cursor, QuerySpec
from sensorbase.storage.base import Reader
from sensorbase.storage.m4 import MAX_WIDTH

T = TypeVar("T")
Order = Literal["asc", "desc"]
# A light query (`light`) names at most this many series (sources x fields), and a latest one
# asks for at most this many points in all: ~1-2 ms of work on the event loop.
LIGHT_SERIES = 16
LIGHT_POINTS = 10_000


@dataclass(slots=True)
class Row:
    """The points of one source at one instant, its fields side by side."""

    time_us: int
    source: str
    values: dict[str, float] = field(default_factory=dict)
    extras: list[str] = field(default_factory=list)  # the points' extras, in series order


@dataclass(slots=True)
class RowsPage:
    rows: list[Row]
    has_more: bool


@dataclass(slots=True)
class QueryResult:
    series: list[SeriesResult]
    next_cursor: str | None = None


class QueryService:
    def __init__(
        self,
        reader: Callable[[], Reader],
        max_result_points: int,
        default_limit: int,
        max_scan_points: int = 1_000_000,
        reads_on_loop: bool = False,
    ) -> None:
        self._reader = reader
        self.max_result_points = max_result_points
        self.default_limit = default_limit
        self.max_scan_points = max_scan_points
        self._on_loop = reads_on_loop  # (Store.reads_on_loop)
        self._aside = 0  # reads on worker threads now (counted on the event loop)

    async def _read(self, fn: Callable[[Reader], T], light: bool = False) -> T:
        """`fn` with a reader, on a worker thread; a `light` read (a few named series' whole-
        range summaries or a few thousand of their points: see `light`) on the event loop
        where the store allows it and no other read is on a worker thread (which may hold the
        write log cache's lock a while). Under a saturating ingest the hop to a worker and back
        waited for the loop and the GIL ~10 ms, for ~1 ms of work (benchmarks/curve.py, a
        one-series count and avg during ingest: median 17 -> 7 ms)."""
        if light and self._on_loop and not self._aside:
            return fn(self._reader())
        self._aside += 1
        try:
            return await run_in_threadpool(lambda: fn(self._reader()))
        finally:
            self._aside -= 1

    async def query(self, who: Principal, spec: QuerySpec) -> QueryResult:
        """A QuerySpec's series selected and read in one snapshot."""
        access.require(who, "data:read")

        def run(reader: Reader) -> QueryResult:
            found = _select(reader, who, spec.bucket, spec.sources, spec.fields)
            if not found and spec.sources:
                raise NotFound(
                    f"no series for source {', '.join(spec.sources)}",
                    what="source",
                    name=spec.sources[0],
                )
            return self.run(reader, found, spec)

        return await self._read(run, light(spec, self.default_limit))

    async def select(
        self,
        who: Principal,
        bucket: str | None = None,
        sources: list[str] | None = None,
        fields: list[str] | None = None,
    ) -> list[SeriesRef]:
        """The principal's series matching the names (None: any); the refs every other mode
        takes (a ref is only ever made by a tenancy-checked selection)."""
        access.require(who, "data:read")
        named = bool(sources) and len(sources or ()) <= LIGHT_SERIES  # (look-ups by name)
        return await self._read(lambda r: _select(r, who, bucket, sources, fields), named)

    async def points(
        self,
        refs: list[SeriesRef],
        time_range: TimeRange,
        limit: int,
        order: Order = "asc",
        by: Literal["time", "value"] = "time",
        offset: int = 0,
    ) -> list[PointColumns]:
        """Up to `limit` points of each series in the range, ordered by time or by value
        (ties by time); at most `max_result_points` in all."""
        self._within(limit * len(refs), "limit")

        def read(reader: Reader) -> list[PointColumns]:
            seen = Visible(reader, refs)
            if by == "value":
                return [
                    reader.read_range_by_value(r.id, seen.range(r, time_range), limit, order)
                    for r in refs
                ]
            return [
                reader.read_range(r.id, seen.range(r, time_range), limit, order, offset)
                for r in refs
            ]

        few = by == "time" and _few(len(refs), offset + limit)  # (by value: every point)
        return await self._read(read, few)

    async def latest(self, refs: list[SeriesRef], n: int) -> list[PointColumns]:
        self._within(n * len(refs), "limit")
        return await self._read(lambda r: Visible(r, refs).latest(refs, n), _few(len(refs), n))

    async def aggregate(
        self, refs: list[SeriesRef], time_range: TimeRange, aggregates: tuple[str, ...]
    ) -> list[AggregateRow]:
        """Each series' aggregates over the whole range."""

        def read(reader: Reader) -> list[AggregateRow]:
            seen = Visible(reader, refs)
            return [seen.aggregate(ref, time_range, aggregates)[0] for ref in refs]

        return await self._read(read, len(refs) <= LIGHT_SERIES)  # (the store's aggregates)

    async def aggregate_fixed(
        self,
        refs: list[SeriesRef],
        time_range: TimeRange,
        every_us: int,
        origin_us: int,
        aggregates: tuple[str, ...],
    ) -> list[list[AggregateRow]]:
        """Each series' aggregates per interval [origin + k*every, ...) holding points, the
        intervals of the whole query within `max_result_points`."""
        start, end = time_range.start_us, time_range.end_us
        if start is not None and end is not None:
            self._within(len(refs) * ((end - start) // every_us + 1), "every")

        def read(reader: Reader) -> list[list[AggregateRow]]:
            seen = Visible(reader, refs)
            return [
                seen.aggregate_fixed(ref, time_range, every_us, origin_us, aggregates)[0]
                for ref in refs
            ]

        return await self._read(read)

    async def m4(
        self, refs: list[SeriesRef], time_range: TimeRange, width: int
    ) -> list[PointColumns]:
        """Each series' M4 (storage/m4.py) of the bounded range at `width` pixel columns: up
        to 4 points per column, so at most `max_result_points` / (4 x width) series."""
        self._check_m4(len(refs), time_range, width)

        def read(reader: Reader) -> list[PointColumns]:
            seen = Visible(reader, refs)
            return [reader.m4(ref.id, seen.range(ref, time_range), width) for ref in refs]

        return await self._read(read)

    def _check_m4(self, series: int, time_range: TimeRange, width: int) -> None:
        problems = []
        if time_range.start_us is None or time_range.end_us is None:
            problems.append(Problem("M4 needs a bounded range: start and end", "start"))
        if not 1 <= width <= MAX_WIDTH:
            problems.append(Problem(f"must be an integer from 1 to {MAX_WIDTH}", "width"))
        if problems:
            raise invalid(problems)
        self._within(4 * width * series, "width")

    async def counts(self, refs: list[SeriesRef], time_range: TimeRange) -> list[int]:
        def read(reader: Reader) -> list[int]:
            seen = Visible(reader, refs)
            return [reader.count(ref.id, seen.range(ref, time_range)) for ref in refs]

        return await self._read(read)

    async def span(self, refs: list[SeriesRef], time_range: TimeRange) -> tuple[int, int] | None:
        """The first and last instant holding points of any of the series, in the range."""

        def read(reader: Reader) -> tuple[int, int] | None:
            firsts, lasts = [], []
            seen = Visible(reader, refs)
            for ref in refs:
                window = seen.range(ref, time_range)
                first = reader.read_range(ref.id, window, 1, "asc")
                if len(first):
                    firsts.append(int(first.time_us[0]))
                    last = reader.read_range(ref.id, window, 1, "desc")
                    lasts.append(int(last.time_us[0]))
            return (min(firsts), max(lasts)) if firsts else None

        return await self._read(read)

    async def rows(
        self,
        refs: list[SeriesRef],
        time_range: TimeRange,
        order: Order,
        offset: int,
        limit: int,
    ) -> RowsPage:
        """A page of the union of the series' points as rows keyed by (time, source), each
        row holding its fields' values side by side."""

        def read(reader: Reader) -> RowsPage:
            # The first offset+limit+1 rows of the union lie within the first offset+limit+1
            # points of every series, so reading that many per series is exact.
            wanted = offset + limit + 1
            found: dict[tuple[int, str], Row] = {}
            taken = 0
            seen = Visible(reader, refs)
            for ref in refs:
                points = reader.read_range(ref.id, seen.range(ref, time_range), wanted, order)
                taken += len(points)
                if taken > self.max_result_points:
                    reason = (
                        f"offset + limit over {len(refs)} series reads more than the result "
                        f"limit of {self.max_result_points} points; narrow the query or lower "
                        "limit/offset"
                    )
                    raise invalid([Problem(reason, "limit", None, "too_large")])
                extras = points.extra or [None] * len(points)
                times, values = points.time_us.tolist(), points.value.tolist()
                for t, v, e in zip(times, values, extras, strict=True):
                    row = found.get((t, ref.source))
                    if row is None:
                        row = found[(t, ref.source)] = Row(t, ref.source)
                    row.values[ref.field] = v
                    if e:
                        row.extras.append(e)
            keys = sorted(found, reverse=order == "desc")
            page = keys[offset : offset + limit]
            return RowsPage([found[k] for k in page], len(keys) > offset + limit)

        return await self._read(read)

    def _within(self, points: int, field: str) -> None:
        if points > self.max_result_points:
            reason = (
                f"asks for {points} points or buckets, more than the result limit of "
                f"{self.max_result_points}; narrow the query"
            )
            raise invalid([Problem(reason, field, None, "too_large")])

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
            latest = Visible(reader, series).latest(series, n)
            return QueryResult(
                [SeriesResult(s, points=p) for s, p in zip(series, latest, strict=True)]
            )
        if spec.mode == "m4":
            assert spec.width is not None  # parse_spec requires it
            self._check_m4(len(series), spec.time_range, spec.width)
            seen = Visible(reader, series)
            return QueryResult(
                [
                    SeriesResult(
                        s, points=reader.m4(s.id, seen.range(s, spec.time_range), spec.width)
                    )
                    for s in series
                ]
            )
        if spec.mode == "aggregate":
            # The cap holds for the whole query, not each series: a bucket costs a read per
            # series, so 300 series of 6,000 calendar buckets each took 73 s on SQLite.
            results, left = [], self.max_result_points
            seen = Visible(reader, series)
            scan = Scan(self.max_scan_points)
            for ref in series:
                result, buckets = aggregate_series(
                    seen, ref, spec, left, scan, self.max_result_points
                )
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
        seen = Visible(reader, series)
        for ref in series:
            if not started:
                if ref.id != cursor.series_id:  # type: ignore[union-attr]
                    continue
                started = True
            time_range = seen.range(ref, spec.time_range)
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


def _resume(results: list[SeriesResult], ref: SeriesRef, time_range: TimeRange, order: str) -> str:
    """A cursor that resumes at the start of `ref` (nothing of it was returned yet)."""
    if order == "asc":
        edge = (time_range.start_us if time_range.start_us is not None else -(2**62)) - 1
    else:
        edge = time_range.end_us if time_range.end_us is not None else 2**62
    return Cursor(ref.id, edge).encode()


def _select(
    reader: Reader,
    who: Principal,
    bucket: str | None,
    sources: list[str] | None,
    fields: list[str] | None,
) -> list[SeriesRef]:
    bucket_id = who.bucket_id
    if bucket is not None:
        bucket_id = access.bucket(reader, who, bucket, "data:read").id
    return reader.list_series(who.org_id, bucket_id, sources, fields)


def light(spec: QuerySpec, default_limit: int) -> bool:
    """Whether a query is a dashboard's kind that takes little work whatever the data: named
    series (at most LIGHT_SERIES), and either aggregates over the whole range that the
    chunks' summaries answer, or at most LIGHT_POINTS points in all, latest or raw (a raw
    page reads each series' chunks from its near end only as far as the page needs)."""
    if not spec.sources or not spec.fields:
        return False
    series = len(spec.sources) * len(spec.fields)
    if series > LIGHT_SERIES:
        return False
    if spec.mode == "aggregate":
        return spec.every is None and not any(from_points(a) for a in spec.aggregates)
    if spec.mode == "latest":
        return _few(series, spec.limit or 1)
    limit = spec.limit if spec.limit is not None else default_limit
    return spec.mode == "raw" and _few(series, limit)


def _few(series: int, points: int) -> bool:
    """Whether `points` of each of `series` series make a light read."""
    return series <= LIGHT_SERIES and series * points <= LIGHT_POINTS
