"""Point operations checked against a plain-Python model, on every backend (randomized).

The safety net for the layout of stored points: whatever the layout (rows in a B-tree, a write
log folded into compressed chunks...), a store must answer exactly as this model does. The model
holds, per series, a dict of time -> (value, extra), and answers every point read of `Reader`
(read_range, read_latest, read_range_by_value, count, aggregate, aggregate_fixed,
aggregate_bounds) with a few lines of NumPy.

`test_points_match_the_model`: Hypothesis drives a state machine, each example on a store of
its own: write transactions of several operations (appends of random rows: overwrites,
backfills, out-of-order rows, duplicates within a batch, times days away; bulk appends of
thousands of points, so that reads span several chunks of ~2,000 points; deleting a source,
also after writing its points in the same transaction; creating sources, which on SQLite may
reuse a deleted series' id; a savepoint that fails; reads while the transaction is open),
commits and rollbacks, folds (`store.fold_points()`, when the store offers it, checked before
and after) and checks of every read on random ranges: empty, inverted, unbounded, before or
after every point, on a point or next to it, with random limits and offsets; and reads that
start, end or page on the points where a layout in chunks of 2**k points cuts a series.

`test_long_series`: one series of 60,000 points over 17 hours, where SQLite answers long
aggregates from the stats of whole chunks, overwritten inside chunks, backfilled and folded.
`test_far_times`: times decades apart, before 1970 and beyond 2**53.

A failure says which read, on which range, expected what and got what, and lists the steps
that led there, with the seed that replays them: SENSORBASE_MODEL_SEED=<seed>; add
SENSORBASE_MODEL_SHRINK=1 to have Hypothesis shrink them to a minimal example (minutes).
"""

from __future__ import annotations

import itertools
import math
import os
import random
import shutil
from bisect import bisect_right
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, ExitStack, contextmanager
from itertools import pairwise
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import HealthCheck, Phase, seed
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    rule,
    run_state_machine_as_test,
)

from sensorbase.model import AggregateRow, PointColumns, ResolvedBatch, TimeRange
from sensorbase.settings import Settings
from sensorbase.storage import open_store
from sensorbase.storage.base import Reader, Store, WriteTx

SECOND = 1_000_000
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE
DAY = 24 * HOUR
YEAR = 365 * DAY
T0 = 1_735_689_600_000_000  # 2025-01-01 00:00 UTC, in microseconds
# Rare times away from the rest (years apart: see test_far_times).
FAR_WRITES = (T0 - 9 * DAY, T0 + 9 * DAY)
FAR_READS = (T0 - 20 * YEAR, T0 + 100 * YEAR, 0, -DAY, *FAR_WRITES)
AGGREGATES = ("min", "max", "avg", "sum", "count", "first", "last")
EVERY = (1, 997, SECOND, 7 * SECOND, MINUTE, HOUR, DAY, 10 * YEAR)
LIMITS = (0, 1, 2, 3, 10, 100, 2047, 2048, 2049, 1_000_000)
OFFSETS = (0, 0, 0, 1, 7, 2048, 5000)
LATEST = (0, 1, 2, 3, 50, 2049, 1_000_000)
REL_TOL = 1e-9  # sums and averages: relative to the sum of |value| (no cancellation trouble)
EXTRAS = (
    "{}",
    '{"lat":1.5,"lon":-2.25}',
    '{"label":"\\u00fcn\\u00efcode","text":"ünïcode ✓"}',
    '{"n":1,"tags":["a","b"],"meta":{"deep":[1,2,3]}}',
)
MAX_SOURCES = 4
EXAMPLES = {"sqlite": 30, "postgres": 6}  # PostgreSQL is slower: fewer examples
STEPS = 16
# Shrinking a failure to a minimal example reruns it for up to five minutes here: only when
# asked. A failure prints its steps and the seed that replays them (SENSORBASE_MODEL_SEED).
SHRINK = "SENSORBASE_MODEL_SHRINK"
PHASES = tuple(p for p in Phase if p is not Phase.shrink or os.environ.get(SHRINK) == "1")


Row = tuple[int, float, str | None]  # (time_us, value, extra): one point as the model sees it


@contextmanager
def opened(settings: Settings) -> Iterator[Store]:
    store = open_store(settings)
    store.open()
    try:
        yield store
    finally:
        store.close()


@contextmanager
def fresh_store(settings: Settings, backend: str, data_dir: Path) -> Iterator[Store]:
    """A store of its own (a new SQLite file, a new PostgreSQL database), so that an example
    replays alike: the same ids, the same state around it."""
    if backend == "postgres":
        from tests.pg import temporary_database  # the PostgreSQL backend's own helper

        with (
            temporary_database() as url,
            opened(settings.model_copy(update={"database_url": url})) as store,
        ):
            yield store
        return
    try:
        with opened(settings.model_copy(update={"data_dir": data_dir})) as store:
            yield store
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture
def store(settings: Settings) -> Iterator[Store]:
    with opened(settings) as found:
        yield found


# --- the model -----------------------------------------------------------------------------


class SeriesModel:
    """One series as a store must hold it: time -> (value, extra), the last write winning."""

    def __init__(self, points: dict[int, tuple[float, str | None]] | None = None) -> None:
        self.points = dict(points or {})
        self._columns: tuple[npt.NDArray[np.int64], npt.NDArray[np.float64], list[Any]] | None
        self._columns = None

    def copy(self) -> SeriesModel:
        return SeriesModel(self.points)

    def __len__(self) -> int:
        return len(self.points)

    def put(self, rows: Sequence[Row]) -> None:
        """Write rows in their order: a later row at the same time replaces an earlier one."""
        for t, v, e in rows:
            self.points[t] = (v, e)
        self._columns = None

    @property
    def columns(self) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64], list[Any]]:
        """Times (ascending), values and extras."""
        if self._columns is None:
            times = sorted(self.points)
            self._columns = (
                np.array(times, np.int64),
                np.array([self.points[t][0] for t in times], np.float64),
                [self.points[t][1] for t in times],
            )
        return self._columns

    def window(self, time_range: TimeRange) -> tuple[int, int]:
        """The positions [lo, hi) of the points in `time_range` (half-open)."""
        times = self.columns[0]
        lo = 0 if time_range.start_us is None else int(np.searchsorted(times, time_range.start_us))
        hi = (
            len(times)
            if time_range.end_us is None
            else int(np.searchsorted(times, time_range.end_us))
        )
        return lo, max(lo, hi)

    def rows(self, index: Sequence[int] | npt.NDArray[np.intp]) -> Want:
        """The points at these positions, in this order."""
        times, values, extras = self.columns
        index = np.asarray(index, np.intp)
        return Want(times[index], values[index], [extras[i] for i in index.tolist()])

    def describe(self) -> str:
        times = self.columns[0]
        if not len(times):
            return "no points"
        return f"{len(times)} points in [{times[0]}, {times[-1]}]"


EMPTY = SeriesModel()


class Want(NamedTuple):
    """Points a read should return, in order."""

    time_us: npt.NDArray[np.int64]
    value: npt.NDArray[np.float64]
    extra: list[str | None]

    def rows(self) -> list[Row]:
        return list(zip(self.time_us.tolist(), self.value.tolist(), self.extra, strict=True))


Expected = tuple[dict[str, float | int | None], dict[str, float]]


def expected_values(values: npt.NDArray[np.float64], aggregates: Sequence[str]) -> Expected:
    """The aggregates of `values` (in time order), and the absolute error allowed for the sum
    and the average: REL_TOL of the sum (or mean) of |value|, so that a sum that cancels to
    near zero is still judged fairly."""
    n = len(values)
    if n == 0:
        return {a: (0 if a == "count" else None) for a in aggregates}, {}
    listed = values.tolist()
    total = math.fsum(listed)
    magnitude = float(np.abs(values).sum())
    every: dict[str, float | int | None] = {
        "min": float(values.min()),
        "max": float(values.max()),
        "avg": total / n,
        "sum": total,
        "count": n,
        "first": listed[0],
        "last": listed[-1],
    }
    tolerance = {"sum": REL_TOL * magnitude, "avg": REL_TOL * magnitude / n}
    return {a: every[a] for a in aggregates}, tolerance


# --- comparing answers ----------------------------------------------------------------------


def _show(rows: list[Row], at: int) -> str:
    return repr(rows[at]) if at < len(rows) else "nothing"


def check_points(what: str, want: Want, got: PointColumns) -> None:
    """`got` holds exactly the points `want`, in that order (values compared as floats: 0.0
    equals -0.0), with `extra` None when no point has one."""
    assert isinstance(got.time_us, np.ndarray) and got.time_us.dtype == np.int64, (
        f"{what}: time_us must be an int64 array, got {type(got.time_us)} {got.time_us.dtype}"
    )
    assert isinstance(got.value, np.ndarray) and got.value.dtype == np.float64, (
        f"{what}: value must be a float64 array, got {type(got.value)} {got.value.dtype}"
    )
    n = len(got.time_us)
    assert len(got.value) == n, f"{what}: {n} times but {len(got.value)} values"
    if got.extra is not None:
        assert len(got.extra) == n, f"{what}: {n} points but {len(got.extra)} extras"
    extras = got.extra if got.extra is not None else [None] * n
    same = (
        n == len(want.time_us)
        and np.array_equal(got.time_us, want.time_us)
        and np.array_equal(got.value, want.value)
        and extras == want.extra
    )
    if not same:
        rows = list(zip(got.time_us.tolist(), got.value.tolist(), extras, strict=True))
        want_rows = want.rows()
        at = next(
            i
            for i in range(max(len(rows), len(want_rows)))
            if i >= len(rows) or i >= len(want_rows) or rows[i] != want_rows[i]
        )
        around = slice(max(at - 2, 0), at + 3)
        raise AssertionError(
            f"{what}: expected {len(want_rows)} points, got {len(rows)}; first difference at "
            f"#{at}: expected {_show(want_rows, at)}, got {_show(rows, at)}\n"
            f"  expected[{around.start}:{around.stop}] = {want_rows[around]}\n"
            f"  got[{around.start}:{around.stop}]      = {rows[around]}"
        )
    if any(e is not None for e in want.extra):
        assert got.extra is not None, f"{what}: extra is None, but points have extras"
    else:
        assert got.extra is None, f"{what}: extra must be None when no point has one: {got.extra}"


def check_values(what: str, expected: Expected, got: dict[str, float | int | None]) -> None:
    """Aggregate values: count, min, max, first and last exactly, sum and avg within REL_TOL;
    plain Python numbers (replies encode them as they are: msgspec refuses NumPy scalars), None
    for an empty range (count 0)."""
    want, tolerance = expected
    assert set(got) == set(want), f"{what}: aggregates {sorted(got)}, expected {sorted(want)}"
    for name, w in want.items():
        g = got[name]
        if w is None:
            ok = g is None
        elif name == "count":
            ok = type(g) is int and g == w
        elif type(g) is not float:
            ok = False
        elif name in ("sum", "avg"):
            assert isinstance(w, float)
            ok = math.isclose(g, w, rel_tol=REL_TOL, abs_tol=max(tolerance[name], 1e-300))
        else:
            ok = g == w
        if not ok:
            kind = "" if w is None or type(g) is type(w) else f" (a {type(g).__name__})"
            raise AssertionError(
                f"{what}: {name} expected {w!r}, got {g!r}{kind}\n"
                f"  all expected: {want}\n  all got:      {got}"
            )


def check_rows(what: str, want: list[tuple[int, Expected]], got: list[AggregateRow]) -> None:
    """Rows of aggregate_fixed/aggregate_bounds: (start_us, expected values) each."""
    starts = [r.start_us for r in got]
    assert starts == [w[0] for w in want], (
        f"{what}: {len(got)} rows starting at {starts[:20]}..., expected {len(want)} starting "
        f"at {[w[0] for w in want][:20]}..."
    )
    for (start, expected), row in zip(want, got, strict=True):
        assert type(row.start_us) is int, f"{what}: start_us {row.start_us!r} is not an int"
        check_values(f"{what}, the row starting at {start}", expected, row.values)


# --- reading everything about one range -----------------------------------------------------


class Query(NamedTuple):
    """One range and what to ask of it."""

    time_range: TimeRange
    limit: int
    offset: int
    aggregates: tuple[str, ...]
    every_us: int
    origin_shift: int  # origin_us = the first point's time in the range - shift % (2 * every)
    bounds: tuple[int, ...]
    latest: int


def check_query(reader: Reader, sid: int, model: SeriesModel, q: Query) -> None:
    """Every point read of `reader` on `q` against the model of series `sid`."""
    times, values, _ = model.columns
    lo, hi = model.window(q.time_range)
    on = f"series {sid} ({model.describe()}), {q.time_range}"

    for order in ("asc", "desc"):
        index = np.arange(lo, hi) if order == "asc" else np.arange(hi - 1, lo - 1, -1)
        want = model.rows(index[q.offset : q.offset + q.limit])
        got = reader.read_range(sid, q.time_range, q.limit, order, q.offset)
        what = f"read_range({on}, limit={q.limit}, order={order!r}, offset={q.offset})"
        check_points(what, want, got)

    by_value = lo + np.lexsort((times[lo:hi], values[lo:hi]))  # value, then time, ascending
    for order in ("asc", "desc"):
        index = by_value if order == "asc" else by_value[::-1]
        got = reader.read_range_by_value(sid, q.time_range, q.limit, order)
        what = f"read_range_by_value({on}, limit={q.limit}, order={order!r})"
        check_points(what, model.rows(index[: q.limit]), got)

    n = len(times)
    [got] = reader.read_latest([sid], q.latest)
    check_points(
        f"read_latest(series {sid} ({model.describe()}), n={q.latest})",
        model.rows(np.arange(n - 1, max(n - 1 - q.latest, -1), -1)),
        got,
    )

    counted = reader.count(sid, q.time_range)
    assert counted == hi - lo and type(counted) is int, (
        f"count({on}): expected {hi - lo}, got {counted!r}"
    )

    for aggregates in dict.fromkeys((q.aggregates, AGGREGATES)):
        row = reader.aggregate(sid, q.time_range, aggregates)
        what = f"aggregate({on}, {aggregates})"
        assert row.start_us is None, f"{what}: start_us {row.start_us}, expected None"
        check_values(what, expected_values(values[lo:hi], aggregates), row.values)

    first = int(times[lo]) if hi > lo else q.time_range.start_us
    origin = (T0 if first is None else first) - q.origin_shift % (2 * q.every_us)
    check_fixed(reader, sid, model, q.time_range, q.every_us, origin, q.aggregates)
    check_bounds(reader, sid, model, list(q.bounds), q.aggregates)


def check_fixed(
    reader: Reader,
    sid: int,
    model: SeriesModel,
    time_range: TimeRange,
    every_us: int,
    origin_us: int,
    aggregates: tuple[str, ...],
) -> None:
    """aggregate_fixed, `origin_us` at or before every point of the range. (Before the origin,
    both backends truncate the division where the docstring promises intervals: a point at
    origin - 1 falls in the interval starting at the origin. Not a layout's concern.)"""
    times, values, _ = model.columns
    lo, hi = model.window(time_range)
    buckets = (times[lo:hi] - origin_us) // every_us
    cuts = np.flatnonzero(np.diff(buckets)) + 1
    want = []
    for part in np.split(np.arange(lo, hi), cuts) if hi > lo else []:
        start = origin_us + int(buckets[part[0] - lo]) * every_us
        want.append((start, expected_values(values[part], aggregates)))
    got = reader.aggregate_fixed(sid, time_range, every_us, origin_us, aggregates)
    on = f"series {sid} ({model.describe()}), {time_range}"
    check_rows(f"aggregate_fixed({on}, {every_us}, {origin_us}, {aggregates})", want, got)


def check_bounds(
    reader: Reader, sid: int, model: SeriesModel, bounds: list[int], aggregates: tuple[str, ...]
) -> None:
    """aggregate_bounds, `bounds` ascending."""
    values = model.columns[1]
    want = []
    for a, b in pairwise(bounds):
        lo, hi = model.window(TimeRange(a, b))
        if hi > lo:
            want.append((a, expected_values(values[lo:hi], aggregates)))
    # (Both backends have aggregate_bounds; the Reader protocol does not declare it.)
    got = reader.aggregate_bounds(sid, bounds, aggregates)  # type: ignore[attr-defined]
    on = f"series {sid} ({model.describe()})"
    check_rows(f"aggregate_bounds({on}, {bounds}, {aggregates})", want, got)


def check_cuts(reader: Reader, sid: int, model: SeriesModel) -> None:
    """Reads that start, end or page exactly on the points at positions 1,024k - 1 and 1,024k
    (where a layout in chunks of 2**k points cuts a series), or right next to them."""
    times, values, _ = model.columns
    n = len(times)
    cuts = sorted({p for k in range(1, n // 1024 + 1) for p in (1024 * k - 1, 1024 * k)} | {0})
    everything = TimeRange(None, None)
    for p in (p for p in cuts if p < n):
        t = int(times[p])
        ranges = (
            TimeRange(None, t),
            TimeRange(None, t + 1),
            TimeRange(t, None),
            TimeRange(t + 1, None),
            TimeRange(t, t + 1),
        )
        for time_range in ranges:
            lo, hi = model.window(time_range)
            on = f"series {sid} ({model.describe()}), {time_range} (point #{p})"
            row = reader.aggregate(sid, time_range, AGGREGATES)
            check_values(f"aggregate({on})", expected_values(values[lo:hi], AGGREGATES), row.values)
            got = reader.read_range(sid, time_range, 2)
            check_points(f"read_range({on}, limit=2)", model.rows(range(lo, min(lo + 2, hi))), got)
            got = reader.read_range(sid, time_range, 2, "desc")
            want = model.rows(range(hi - 1, max(hi - 3, lo - 1), -1))
            check_points(f"read_range({on}, limit=2, order='desc')", want, got)
        # Pages that end on the point: in time order, and backwards.
        on = f"series {sid} ({model.describe()}), everything"
        got = reader.read_range(sid, everything, 1, "asc", p)
        check_points(f"read_range({on}, limit=1, offset={p})", model.rows([p]), got)
        got = reader.read_range(sid, everything, 1, "desc", n - 1 - p)
        what = f"read_range({on}, limit=1, order='desc', offset={n - 1 - p})"
        check_points(what, model.rows([p]), got)


def model_m4(model: SeriesModel, time_range: TimeRange, width: int) -> Want:
    """The M4 of the range, the plain way: every point put in its column [start + span*i //
    width, ...), and of each column its first, min, max and last points (the earliest of equal
    minima or maxima), in time order, each once."""
    start, end = time_range.start_us, time_range.end_us
    assert start is not None and end is not None
    edges = [start + (end - start) * i // width for i in range(width + 1)]
    columns: dict[int, list[tuple[int, float]]] = {}
    times, values, _ = model.columns
    lo, hi = model.window(time_range)
    for t, v in zip(times[lo:hi].tolist(), values[lo:hi].tolist(), strict=True):
        columns.setdefault(bisect_right(edges, t) - 1, []).append((t, v))
    picked: list[tuple[int, float]] = []
    for c in sorted(columns):
        held = columns[c]
        lowest = min(held, key=lambda p: (p[1], p[0]))
        highest = min(held, key=lambda p: (-p[1], p[0]))
        picked.extend(sorted(dict([held[0], lowest, highest, held[-1]]).items()))
    return Want(
        np.array([t for t, _ in picked], np.int64),
        np.array([v for _, v in picked], np.float64),
        [None] * len(picked),
    )


def check_m4(reader: Reader, sid: int, model: SeriesModel, what: str) -> None:
    """M4 over the whole series, a middle third of it and past its end, at widths from one
    column (a summary of everything) to more columns than points."""
    times = model.columns[0]
    if not len(times):
        asked = [(TimeRange(0, 1_000), 3)]
    else:
        lo, hi = int(times[0]), int(times[-1]) + 1
        third = (hi - lo) // 3
        asked = [(TimeRange(lo, hi), w) for w in (1, 5, 400)]
        asked += [(TimeRange(lo + third, hi - third), 3), (TimeRange(hi, hi + 10), 2)]
    for time_range, width in asked:
        if time_range.end_us <= time_range.start_us:  # type: ignore[operator]
            continue
        got = reader.m4(sid, time_range, width)
        on = f"series {sid} ({model.describe()}), {time_range}, width {width}"
        check_points(f"{what}: m4({on})", model_m4(model, time_range, width), got)


def check_all(reader: Reader, sid: int, model: SeriesModel, what: str) -> None:
    """Every point of the series, its count, its aggregates and its M4."""
    everything = TimeRange(None, None)
    got = reader.read_range(sid, everything, len(model) + 10)
    check_points(
        f"{what}: read_range(series {sid}, everything)", model.rows(range(len(model))), got
    )
    counted = reader.count(sid, everything)
    assert counted == len(model), f"{what}: count(series {sid}) = {counted}, expected {len(model)}"
    row = reader.aggregate(sid, everything, AGGREGATES)
    expected = expected_values(model.columns[1], AGGREGATES)
    check_values(f"{what}: aggregate(series {sid}, everything)", expected, row.values)
    check_m4(reader, sid, model, what)


def check_glance(reader: Reader, sid: int, model: SeriesModel, what: str) -> None:
    """A cheap look at a series: its count and its newest points."""
    counted = reader.count(sid, TimeRange(None, None))
    assert counted == len(model), f"{what}: count(series {sid}) = {counted}, expected {len(model)}"
    n = len(model)
    for k in (1, 3):
        [got] = reader.read_latest([sid], k)
        want = model.rows(range(n - 1, max(n - 1 - k, -1), -1))
        check_points(f"{what}: read_latest(series {sid}, {k})", want, got)


def fold(store: Store) -> bool:
    """Fold logged points into chunks, if the store's layout has such a step."""
    step = getattr(store, "fold_points", None)
    if step is None:
        return False
    step()
    return True


# --- strategies -----------------------------------------------------------------------------


class Bound(NamedTuple):
    """A time chosen relative to a series' points when the operation runs."""

    kind: str
    k: int

    def resolve(self, times: npt.NDArray[np.int64]) -> int | None:
        n, k = len(times), self.k
        if self.kind == "none":
            return None
        if self.kind == "far":
            return FAR_READS[k % len(FAR_READS)] + k % 1000
        if n == 0:
            return T0 + (k % 7 - 3) * HOUR
        return {
            "at": lambda: int(times[k % n]),
            "after": lambda: int(times[k % n]) + 1,
            "first": lambda: int(times[0]),
            "end": lambda: int(times[-1]) + 1,
            "before_all": lambda: int(times[0]) - 1 - k % (2 * HOUR),
            "after_all": lambda: int(times[-1]) + 1 + k % (2 * HOUR),
        }[self.kind]()


class Probe(NamedTuple):
    """A Query whose times are resolved against the series when the check runs."""

    start: Bound
    end: Bound
    limit: int
    offset: int
    aggregates: tuple[str, ...]
    every_us: int
    origin_shift: int
    bounds: tuple[Bound, ...]
    latest: int

    def query(self, times: npt.NDArray[np.int64]) -> Query:
        edges = {b.resolve(times) for b in self.bounds}
        return Query(
            TimeRange(self.start.resolve(times), self.end.resolve(times)),
            self.limit,
            self.offset,
            self.aggregates,
            self.every_us,
            self.origin_shift,
            tuple(sorted(e for e in edges if e is not None)),
            self.latest,
        )


class At(NamedTuple):
    """One appended point: its series (by position among the live ones), its time (by kind,
    relative to the series' points before the batch), value and extra."""

    slot: int
    when: str
    k: int
    value: float
    extra: str | None


class Append(NamedTuple):
    points: tuple[At, ...]
    with_extras: bool  # False: the batch's `extra` is None (so every point's extra is None)


class Bulk(NamedTuple):
    """Thousands of points on a grid of `step_us` from T0, placed after, before or across the
    series' points, in order or shuffled with ~5% rewritten later in the same batch."""

    slot: int
    n: int
    layout: str
    step_us: int
    seed: int
    with_extras: bool


class DeleteSource(NamedTuple):
    source: int


class CreateSource(NamedTuple):
    fields: int


class FailedSavepoint(NamedTuple):
    """Appends (and maybe deletes a source) in a savepoint that then fails: nothing stays."""

    points: tuple[At, ...]
    delete_source: int | None


class Peek(NamedTuple):
    """Read a series while the write transaction is open: only committed points show."""

    slot: int


class Abandoned(Exception):
    pass


WHEN = ("grid", "overwrite", "neighbour", "after", "before", "dup", "far")
values_st = st.one_of(
    st.integers(-5, 5).map(float),  # ties, for the order by value
    st.floats(-1e12, 1e12, allow_nan=False, allow_infinity=False),
)
extra_st = st.one_of(
    st.none(), st.sampled_from(EXTRAS), st.integers(0, 999).map(lambda i: f'{{"i":{i}}}')
)
at_st = st.builds(
    At,
    st.integers(0, 7),
    st.sampled_from(WHEN),
    st.integers(0, 2**32),
    values_st,
    extra_st,
)
points_st = st.lists(at_st, min_size=1, max_size=20).map(tuple)
bulk_st = st.builds(
    Bulk,
    st.integers(0, 7),
    st.sampled_from((100, 2_000, 2_100, 4_500)),
    st.sampled_from(("after", "before", "across", "shuffled")),
    st.sampled_from((1_000, 10 * SECOND, 30 * SECOND, MINUTE)),
    st.integers(0, 2**32),
    st.booleans(),
)
op_st = st.one_of(
    st.builds(Append, points_st, st.booleans()),
    st.builds(Append, points_st, st.booleans()),
    st.builds(Append, points_st, st.booleans()),
    bulk_st,
    st.builds(DeleteSource, st.integers(0, 7)),
    st.builds(CreateSource, st.integers(1, 2)),
    st.builds(FailedSavepoint, points_st, st.none() | st.integers(0, 7)),
    st.builds(Peek, st.integers(0, 7)),
)
KINDS = ("none", "at", "after", "first", "end", "before_all", "after_all", "far")
bound_st = st.builds(Bound, st.sampled_from(KINDS), st.integers(0, 2**32))
# Starts and ends drawn mostly where they leave points between them; sometimes not.
start_st = st.builds(
    Bound,
    st.sampled_from(("none", "at", "first", "before_all", "none", "at", "after", *KINDS)),
    st.integers(0, 2**32),
)
end_st = st.builds(
    Bound,
    st.sampled_from(("none", "at", "end", "after_all", "none", "at", "after", *KINDS)),
    st.integers(0, 2**32),
)
probe_st = st.builds(
    Probe,
    start_st,
    end_st,
    st.sampled_from(LIMITS),
    st.sampled_from(OFFSETS),
    st.lists(st.sampled_from(AGGREGATES), min_size=1, unique=True).map(tuple),
    st.sampled_from(EVERY),
    st.integers(0, 2**40),
    st.lists(bound_st, max_size=6).map(tuple),
    st.sampled_from(LATEST),
)


# --- the state machine ----------------------------------------------------------------------


class Source(NamedTuple):
    id: int
    series: tuple[int, ...]


class Draft:
    """A write transaction's view of the world: the committed one plus its own work."""

    def __init__(self, sources: list[Source], model: dict[int, SeriesModel]) -> None:
        self.sources = list(sources)
        self.model = dict(model)
        self._own: set[int] = set()  # series whose model this draft copied (copy on write)
        self.touched: set[int] = set()  # series written, created or deleted

    def live(self) -> list[int]:
        return [sid for source in self.sources for sid in source.series]

    def write(self, sid: int, rows: list[Row]) -> None:
        if sid not in self._own:
            self.model[sid] = self.model[sid].copy()
            self._own.add(sid)
        self.model[sid].put(rows)
        self.touched.add(sid)


class PointsMachine(RuleBasedStateMachine):
    """One example: a store of its own, an organisation, a bucket and at first two sources
    (three series)."""

    def __init__(self, store: AbstractContextManager[Store]) -> None:
        super().__init__()
        self._closing = ExitStack()
        self.store = self._closing.enter_context(store)
        self._keys = itertools.count()
        try:
            writer = self.store.writer()
            tx = writer.begin()
            org = tx.create_org("model", "model")
            self.org_id = org.id
            self.bucket_id = tx.create_bucket(org.id, "b", "b", "", {}).id
            draft = Draft([], {})
            self._create_source(tx, draft, 2)
            self._create_source(tx, draft, 1)
            writer.commit()
        except BaseException:
            self._closing.close()
            raise
        self.sources, self.model = draft.sources, draft.model

    def teardown(self) -> None:
        self._closing.close()

    def _create_source(self, tx: WriteTx, draft: Draft, fields: int) -> None:
        source = tx.create_source(self.org_id, self.bucket_id, f"s{next(self._keys)}", "", {}, None)
        ids = tx.get_or_create_series(source.id, ["temperature", "humidity"][:fields])
        series = tuple(sorted(ids.values()))
        draft.sources.append(Source(source.id, series))
        for sid in series:  # a new series starts empty, even when it reuses a deleted id
            draft.model[sid] = SeriesModel()
            draft._own.add(sid)
            draft.touched.add(sid)

    def _points(self, draft: Draft, points: tuple[At, ...]) -> list[tuple[int, Row]]:
        """The (series, point) rows of `points`, times resolved against the series as they are
        before the batch; empty when no series is live."""
        live = draft.live()
        if not live:
            return []
        found: list[tuple[int, Row]] = []
        for p in points:
            if p.when == "dup" and found:  # the same series and time again, later in the batch
                sid, (t, _, _) = found[-1]
            else:
                sid = live[p.slot % len(live)]
                t = _time(p.when, p.k, draft.model[sid].columns[0])
            found.append((sid, (t, p.value, p.extra)))
        return found

    def _append(
        self, tx: WriteTx, draft: Draft, found: list[tuple[int, Row]], extras: bool
    ) -> None:
        extra = [e for _, (_, _, e) in found] if extras else None
        tx.append(
            ResolvedBatch(
                np.array([sid for sid, _ in found], np.int64),
                np.array([t for _, (t, _, _) in found], np.int64),
                np.array([v for _, (_, v, _) in found], np.float64),
                extra,
            )
        )
        for sid in dict.fromkeys(sid for sid, _ in found):
            draft.write(sid, [(t, v, e if extras else None) for s, (t, v, e) in found if s == sid])

    def _bulk(self, tx: WriteTx, draft: Draft, op: Bulk) -> None:
        live = draft.live()
        if not live:
            return
        sid = live[op.slot % len(live)]
        times = draft.model[sid].columns[0]
        rng = np.random.default_rng(op.seed)
        step = op.step_us
        first = (int(times[0]) - T0) // step if len(times) else 0
        last = (int(times[-1]) - T0) // step if len(times) else 0
        if op.layout == "after":
            grid = np.arange(last + 1, last + 1 + op.n)
        elif op.layout == "before":
            grid = np.arange(first - op.n, first)
        else:  # across the series' points: many land on points already there
            grid = np.arange(first - op.n // 4, first - op.n // 4 + op.n)
        if op.layout == "shuffled":
            grid = rng.permutation(grid)
            again = rng.choice(grid, size=max(1, op.n // 20))  # rewritten later in the batch
            grid = np.concatenate([grid, again])
        t = T0 + grid.astype(np.int64) * step
        m = len(t)
        v = np.where(
            rng.random(m) < 0.3, rng.integers(-20, 21, m).astype(np.float64), rng.normal(0, 1e3, m)
        )
        extra = None
        if op.with_extras:
            extra = [f'{{"i":{i}}}' if r < 0.3 else None for i, r in enumerate(rng.random(m))]
        tx.append(ResolvedBatch(np.full(m, sid, np.int64), t, v, extra))
        draft.write(sid, list(zip(t.tolist(), v.tolist(), extra or [None] * m, strict=True)))

    def _delete(self, tx: WriteTx, draft: Draft, which: int) -> None:
        if not draft.sources:
            return
        source = draft.sources.pop(which % len(draft.sources))
        tx.delete_source(source.id)
        for sid in source.series:
            del draft.model[sid]
            draft._own.discard(sid)
            draft.touched.add(sid)

    @initialize(bulk=bulk_st, ops=st.lists(op_st, max_size=3), folds=st.integers(0, 1))
    def start(self, bulk: Bulk, ops: list[Any], folds: int) -> None:
        """Most examples start from thousands of points."""
        self.transaction([bulk, *ops], "commit", False, folds)

    @rule(
        ops=st.lists(op_st, min_size=1, max_size=6),
        end=st.sampled_from(("commit", "commit", "commit", "commit", "rollback")),
        in_savepoint=st.booleans(),
        folds=st.sampled_from((0, 0, 1, 1, 2)),  # a second fold finds nothing new to fold
    )
    def transaction(self, ops: list[Any], end: str, in_savepoint: bool, folds: int) -> None:
        draft = Draft(self.sources, self.model)
        writer = self.store.writer()
        tx = writer.begin()
        try:
            if in_savepoint:  # as the ingest committer runs each job
                with tx.savepoint():
                    self._run(tx, draft, ops)
            else:
                self._run(tx, draft, ops)
        except BaseException:
            writer.rollback()
            raise
        if end == "commit":
            writer.commit()
            self.sources, self.model = draft.sources, draft.model
        else:
            writer.rollback()
        reader = self.store.reader()
        for sid in sorted(draft.touched):  # written, created or deleted: every point
            check_all(reader, sid, self.model.get(sid, EMPTY), f"after {end}")
        for source in self.sources:
            for sid in source.series:  # the others, unchanged
                check_glance(reader, sid, self.model[sid], f"after {end}")
        for _ in range(folds if end == "commit" else 0):
            self._fold()

    def _run(self, tx: WriteTx, draft: Draft, ops: list[Any]) -> None:
        for op in ops:
            if isinstance(op, Append):
                found = self._points(draft, op.points)
                if found:
                    self._append(tx, draft, found, op.with_extras)
            elif isinstance(op, Bulk):
                self._bulk(tx, draft, op)
            elif isinstance(op, DeleteSource):
                self._delete(tx, draft, op.source)
            elif isinstance(op, CreateSource):
                if len(draft.sources) < MAX_SOURCES:
                    self._create_source(tx, draft, op.fields)
            elif isinstance(op, FailedSavepoint):
                self._failed_savepoint(tx, draft, op)
            elif isinstance(op, Peek):
                live = [sid for source in self.sources for sid in source.series]
                if live:
                    sid = live[op.slot % len(live)]
                    check_all(self.store.reader(), sid, self.model[sid], "during a transaction")
            else:
                raise AssertionError(op)

    def _failed_savepoint(self, tx: WriteTx, draft: Draft, op: FailedSavepoint) -> None:
        found = self._points(draft, op.points)
        try:
            with tx.savepoint():
                if found:
                    scratch = Draft(draft.sources, draft.model)  # the model stays as it was
                    self._append(tx, scratch, found, True)
                if op.delete_source is not None and draft.sources:
                    tx.delete_source(draft.sources[op.delete_source % len(draft.sources)].id)
                raise Abandoned
        except Abandoned:
            pass

    def _fold(self) -> None:
        if not fold(self.store):
            return
        reader = self.store.reader()
        for source in self.sources:
            for sid in source.series:
                check_all(reader, sid, self.model[sid], "after fold_points()")

    def _pick(self, slot: int) -> tuple[int, SeriesModel] | None:
        live = [sid for source in self.sources for sid in source.series]
        if not live:
            return None
        live.sort(key=lambda sid: -len(self.model[sid]))  # the most points first
        sid = live[slot % len(live)]
        return sid, self.model[sid]

    @rule(slot=st.integers(0, 3), probes=st.lists(probe_st, min_size=1, max_size=3))
    def check(self, slot: int, probes: list[Probe]) -> None:
        picked = self._pick(slot)
        if picked is not None:
            sid, model = picked
            reader = self.store.reader()
            for probe in probes:
                check_query(reader, sid, model, probe.query(model.columns[0]))

    @rule(slot=st.integers(0, 3))
    def sweep(self, slot: int) -> None:
        """Ranges that end or start on the points where a layout in chunks of 2**k points
        cuts a series (and next to them): their counts, aggregates and first points."""
        picked = self._pick(slot)
        if picked is not None:
            check_cuts(self.store.reader(), *picked)


def _time(when: str, k: int, times: npt.NDArray[np.int64]) -> int:
    n = len(times)
    if when == "far":
        return FAR_WRITES[k % len(FAR_WRITES)] + k % 1000
    if n == 0 or when in ("grid", "dup"):
        return T0 + (k % 401 - 200) * SECOND  # a small grid: points meet again
    if when == "overwrite":
        return int(times[k % n])
    if when == "neighbour":
        return int(times[k % n]) + (1 if k % 2 else -1)
    if when == "after":
        return int(times[-1]) + 1 + k % 1000 * SECOND
    assert when == "before"
    return int(times[0]) - 1 - k % 1000 * SECOND


@pytest.mark.slow(15)
def test_points_match_the_model(settings: Settings, backend: str, tmp_path: Path) -> None:
    examples = itertools.count()
    chosen = os.environ.get("SENSORBASE_MODEL_SEED")
    run_seed = int(chosen) if chosen else random.randrange(2**32)

    @seed(run_seed)
    def machine() -> PointsMachine:
        return PointsMachine(fresh_store(settings, backend, tmp_path / f"{next(examples)}"))

    try:
        _run(machine, backend)
    except BaseException as exc:
        again = f"SENSORBASE_MODEL_SEED={run_seed}"
        exc.add_note(f"Replay: {again}; shrink to a minimal example: {again} {SHRINK}=1")
        raise


def _run(machine: Any, backend: str) -> None:
    run_state_machine_as_test(
        machine,
        settings=hypothesis_settings(
            max_examples=EXAMPLES[backend],
            stateful_step_count=STEPS,
            deadline=None,
            database=None,  # write nothing into the checkout
            phases=PHASES,
            suppress_health_check=[
                HealthCheck.too_slow,
                HealthCheck.data_too_large,
                HealthCheck.filter_too_much,
                HealthCheck.large_base_example,
            ],
        ),
    )


# --- one long series ------------------------------------------------------------------------


def _long_queries(times: npt.NDArray[np.int64]) -> list[Query]:
    start, end = int(times[0]), int(times[-1]) + 1
    ranges = [
        TimeRange(None, None),
        TimeRange(start, end),
        TimeRange(T0 + 30 * MINUTE + 1, T0 + 15 * HOUR + 7),  # 14 whole hours and two ends
        TimeRange(T0 + HOUR, T0 + 9 * HOUR),  # exactly 8 whole hours
        TimeRange(T0 + 2 * HOUR - 1, T0 + 2 * HOUR + 1),
        TimeRange(None, T0 + 3 * HOUR + 17),
        TimeRange(T0 + 11 * HOUR, None),
        TimeRange(end, None),
    ]
    bounds = (start - 1, T0 + HOUR, T0 + 90 * MINUTE, T0 + 10 * HOUR + 1, end)
    simple = ("min", "max", "avg", "sum", "count")  # (first and last per interval cost most)
    return [
        Query(
            r,
            2049,
            k % 3 * 1000,
            AGGREGATES if k % 2 else simple,
            (10 * MINUTE, HOUR, 7 * HOUR)[k % 3],
            k,
            bounds,
            2050,
        )
        for k, r in enumerate(ranges)
    ]


def _write(store: Store, work: Any) -> Any:
    writer = store.writer()
    tx = writer.begin()
    try:
        with tx.savepoint():
            result = work(tx)
    except BaseException:
        writer.rollback()
        raise
    writer.commit()
    return result


def test_long_series(store: Store) -> None:
    """60,000 points over ~17 hours, overwritten in old hours, backfilled, folded; another
    series with the same times is deleted and its id possibly reused."""
    rng = np.random.default_rng(20250101)

    def world(tx: WriteTx) -> tuple[int, int, int, int, int]:
        org = tx.create_org("long", "long")
        bucket = tx.create_bucket(org.id, "b", "b", "", {})
        one = tx.create_source(org.id, bucket.id, "one", "", {}, None)
        two = tx.create_source(org.id, bucket.id, "two", "", {}, None)
        a = tx.get_or_create_series(one.id, ["v"])["v"]
        b = tx.get_or_create_series(two.id, ["v"])["v"]
        return org.id, bucket.id, two.id, a, b

    org_id, bucket_id, two, a, b = _write(store, world)
    n = 60_000
    times = T0 + np.arange(n, dtype=np.int64) * SECOND
    order = rng.permutation(n)
    values = np.round(rng.normal(20, 5, n), 2)
    models = {a: SeriesModel(), b: SeriesModel()}

    def first(tx: WriteTx) -> None:
        tx.append(ResolvedBatch(np.full(n, a, np.int64), times[order], values[order], None))
        tx.append(ResolvedBatch(np.full(3000, b, np.int64), times[:3000], -values[:3000], None))

    _write(store, first)
    models[a].put(list(zip(times[order].tolist(), values[order].tolist(), [None] * n, strict=True)))
    models[b].put(
        list(zip(times[:3000].tolist(), (-values[:3000]).tolist(), [None] * 3000, strict=True))
    )

    def check(what: str) -> None:
        reader = store.reader()
        for sid, model in models.items():
            check_all(reader, sid, model, what)
        for q in _long_queries(models[a].columns[0]):
            check_query(reader, a, models[a], q)

    check("written")
    if fold(store):
        check("written, folded")

    # Overwrite points in two old hours (with extras; inside folded chunks), backfill before
    # the start, all out of order.
    hours = np.concatenate([np.arange(3 * 3600, 4 * 3600), np.arange(10 * 3600, 11 * 3600)])
    picked = rng.choice(hours, 500, replace=False)
    back = T0 - 1 - np.arange(1500, dtype=np.int64) * 7 * SECOND
    t2 = np.concatenate([times[picked], back, times[picked[:10]]])
    v2 = np.concatenate([values[picked] + 100.5, rng.normal(0, 1, 1500), np.full(10, -1e9)])
    e2 = [f'{{"k":{i}}}' if i % 3 else None for i in range(len(t2))]
    _write(store, lambda tx: tx.append(ResolvedBatch(np.full(len(t2), a, np.int64), t2, v2, e2)))
    models[a].put(list(zip(t2.tolist(), v2.tolist(), e2, strict=True)))
    check("overwritten and backfilled")
    if fold(store):
        check("overwritten and backfilled, folded")

    # Deleting a source takes its points; a source made after it starts empty (on SQLite its
    # series may take the deleted one's id).
    def replace(tx: WriteTx) -> int:
        tx.delete_source(two)
        three = tx.create_source(org_id, bucket_id, "three", "", {}, None)
        return tx.get_or_create_series(three.id, ["v"])["v"]

    c = _write(store, replace)
    del models[b]
    models[c] = SeriesModel()
    fold(store)
    for sid, model in models.items():
        check_all(store.reader(), sid, model, "after deleting a source")
    if c != b:
        check_all(store.reader(), b, EMPTY, "deleted")


def test_far_times(store: Store) -> None:
    """Points decades apart, before 1970 and beyond 2**53 us (where a float64 loses microseconds),
    with values of every magnitude; then overwritten. Aggregates are asked over windows of one
    to three points around every point, and in intervals of ten years over everything."""
    far = [-(2**53) - 1, -DAY, -1, 0, 1, T0 - 20 * YEAR, T0, T0 + 1, T0 + 100 * YEAR, 2**53 + 1]
    # (Not beyond 1e150: PostgreSQL's avg() squares the values, and fails on an overflow.)
    values = [1e150, -1e150, 5e-324, -0.0, 1 / 3, float(2**53 + 1), -7.25, 1e-10, 42.0, 0.1]

    def world(tx: WriteTx) -> int:
        org = tx.create_org("far", "far")
        bucket = tx.create_bucket(org.id, "b", "b", "", {})
        source = tx.create_source(org.id, bucket.id, "s", "", {}, None)
        return tx.get_or_create_series(source.id, ["v"])["v"]

    sid = _write(store, world)
    model = SeriesModel()
    order = [7, 2, 9, 0, 4, 1, 8, 3, 6, 5]  # out of order
    extra = [EXTRAS[i % 4] if i % 3 else None for i in range(len(far))]
    batch = ResolvedBatch(
        np.full(len(far), sid, np.int64),
        np.array([far[i] for i in order], np.int64),
        np.array([values[i] for i in order], np.float64),
        [extra[i] for i in order],
    )
    _write(store, lambda tx: tx.append(batch))
    model.put([(far[i], values[i], extra[i]) for i in order])

    def check(what: str) -> None:
        reader = store.reader()
        times = model.columns[0]
        n = len(times)
        everything = TimeRange(None, None)
        for limit, offset in ((100, 0), (3, 0), (3, 4), (100, n)):
            for order in ("asc", "desc"):
                index = np.arange(n) if order == "asc" else np.arange(n - 1, -1, -1)
                got = reader.read_range(sid, everything, limit, order, offset)
                check_points(
                    f"{what}: read_range(everything, {limit}, {order}, {offset})",
                    model.rows(index[offset : offset + limit]),
                    got,
                )
        by_value = np.lexsort((times, model.columns[1]))
        for order in ("asc", "desc"):
            index = by_value if order == "asc" else by_value[::-1]
            got = reader.read_range_by_value(sid, everything, 100, order)
            check_points(
                f"{what}: read_range_by_value(everything, {order})", model.rows(index), got
            )
        check_points(
            f"{what}: read_latest",
            model.rows(np.arange(n - 1, -1, -1)),
            reader.read_latest([sid], n)[0],
        )
        assert reader.count(sid, everything) == n
        # Windows of one to three points, each side of every point.
        for t in times.tolist():
            for lo, hi in ((t, t + 1), (t - 1, t + 2), (t + 1, t + 2), (None, t), (t, None)):
                q = Query(TimeRange(lo, hi), 5, 0, AGGREGATES, HOUR, 3, (), 2)
                w_lo, w_hi = model.window(q.time_range)
                if w_hi - w_lo <= 3:
                    check_query(reader, sid, model, q)
        # Fixed intervals of ten years over everything, and bounds around every point.
        check_fixed(reader, sid, model, everything, 10 * YEAR, int(times[0]) - 3, AGGREGATES)
        bounds = sorted({t + d for t in times.tolist() for d in (-1, 0, 1)})
        check_bounds(reader, sid, model, bounds, AGGREGATES)

    check("written")
    fold(store)
    check("folded")
    again = [far[i] for i in (0, 3, 9)]
    more = [T0 - 20 * YEAR - 1, 2**53]  # (2**53 + 1 and 2**53: equal as float64)
    batch = ResolvedBatch(
        np.full(5, sid, np.int64),
        np.array([*again, *more], np.int64),
        np.array([1.0, 2.0, 3.0, 4.0, 5.0]),
        None,
    )
    _write(store, lambda tx: tx.append(batch))
    model.put(
        [(t, v, None) for t, v in zip([*again, *more], [1.0, 2.0, 3.0, 4.0, 5.0], strict=True)]
    )
    check("overwritten")
    fold(store)
    check("overwritten, folded")
