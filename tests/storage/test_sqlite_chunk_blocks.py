"""Chunks in blocks with their own summaries (storage/chunks.py), and the
day summaries over them (storage/rollups.py): aggregates per interval and over ranges
(storage/chunk_reads.py) read summaries where they can and decode the rest, and must equal a
brute-force computation over the points, on random series (decimal and arbitrary values,
gaps, days, the log over chunks) with random edges, on SQLite and PostgreSQL."""

from __future__ import annotations

import math

import numpy as np
import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pcodec import ModeSpec

from sensorbase.model import PointColumns, ResolvedBatch, TimeRange
from sensorbase.storage import chunks, rollups
from sensorbase.storage.postgres.store import PostgresStore
from sensorbase.storage.rollups import DAY_US
from sensorbase.storage.sqlite.store import SQLiteStore
from tests.storage.conftest import Folding, another_series

T0 = 1_700_000_000_000_000
AGGREGATES = ("count", "min", "max", "sum", "avg", "first", "last")


def _series(seed: int, n: int, decimal: bool) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    steps = rng.choice(
        [1, 1_000_000, 7_000_000, 3 * 3_600_000_000], size=n, p=[0.2, 0.6, 0.19, 0.01]
    )
    times = T0 - DAY_US // 3 + np.cumsum(steps)
    values = rng.normal(20, 5, n)
    return times.astype(np.int64), np.round(values, 2) if decimal else values


def _write(store: Folding, sid: int, times: np.ndarray, values: np.ndarray) -> None:
    writer = store.writer()
    tx = writer.begin()
    tx.append(ResolvedBatch(np.full(len(times), sid, np.int64), times, values, None))
    writer.commit()


def _expected(
    times: np.ndarray, values: np.ndarray, lo: int, hi: int, every: int, origin: int
) -> dict[int, dict[str, float]]:
    inside = (times >= lo) & (times < hi)
    t, v = times[inside], values[inside]
    found: dict[int, dict[str, float]] = {}
    keys = (t - origin) // every
    for k in np.unique(keys).tolist():
        x = v[keys == k]
        found[origin + k * every] = {
            "count": len(x),
            "min": x.min(),
            "max": x.max(),
            "sum": x.sum(),
            "avg": x.mean(),
            "first": x[0],
            "last": x[-1],
        }
    return found


def _same(got: dict[str, float | int | None], want: dict[str, float], on: str) -> None:
    for name in ("count", "min", "max", "first", "last"):
        assert got[name] == want[name], f"{name} {on}: {got[name]} != {want[name]}"
    for name in ("sum", "avg"):
        assert math.isclose(got[name], want[name], rel_tol=1e-9, abs_tol=1e-9), f"{name} {on}"  # type: ignore[arg-type]


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.one_of(
        st.integers(1, 600), st.integers(chunks.CHUNK_POINTS - 300, 3 * chunks.CHUNK_POINTS)
    ),
    decimal=st.booleans(),
    corrections=st.integers(0, 40),
    edges=st.lists(st.floats(0, 1), min_size=2, max_size=2),
    every=st.sampled_from([1, 997, 1_000_000, 60_000_000, 3_600_000_000, DAY_US, 7 * DAY_US]),
    origin_shift=st.integers(0, 10**12),
)
def test_aggregates_equal_the_points(
    store: Folding,
    seed: int,
    n: int,
    decimal: bool,
    corrections: int,
    edges: list[float],
    every: int,
    origin_shift: int,
) -> None:
    sid = another_series(store)
    times, values = _series(seed, n, decimal)
    _write(store, sid, times, values)
    store.fold_points()
    rng = np.random.default_rng(seed + 1)
    if corrections:  # the log over chunks: points replaced and points added between them
        at = rng.integers(0, n, corrections)
        fix_t = np.r_[times[at], times[at[: corrections // 2]] + 1]
        fix_v = np.round(rng.normal(0, 50, len(fix_t)), 1)
        _write(store, sid, fix_t, fix_v)
        every_t = np.r_[times, fix_t]
        every_v = np.r_[values, fix_v]
        order = np.lexsort((np.arange(len(every_t)), every_t))
        every_t, every_v = every_t[order], every_v[order]
        last = np.r_[every_t[1:] != every_t[:-1], True]  # a later write wins
        times, values = every_t[last], every_v[last]
    span = int(times[-1] - times[0]) + 2
    lo, hi = sorted(int(times[0]) - 1 + int(e * span) for e in edges)
    hi += 1
    reader = store.reader()
    origin = T0 - origin_shift
    got = reader.aggregate_fixed(sid, TimeRange(lo, hi), every, origin, AGGREGATES)
    want = _expected(times, values, lo, hi, every, origin)
    assert [row.start_us for row in got] == sorted(want)
    for row in got:
        assert row.start_us is not None
        _same(row.values, want[row.start_us], f"interval {row.start_us}")
    for time_range in (TimeRange(lo, hi), TimeRange(None, None), TimeRange(lo, None)):
        whole = reader.aggregate(sid, time_range, AGGREGATES).values
        rlo = time_range.start_us if time_range.start_us is not None else -(2**62)
        rhi = time_range.end_us if time_range.end_us is not None else 2**62
        found = _expected(times, values, rlo, rhi, 2**63 - 1, -(2**62))
        if not found:
            assert whole["count"] == 0 and whole["min"] is None
        else:
            _same(whole, next(iter(found.values())), f"range {time_range}")


def _rows(store: Folding, sql: str, sid: int) -> list[tuple[float, ...]]:
    if isinstance(store, SQLiteStore):
        return [tuple(r) for r in store.reader().conn.execute(sql, (sid,)).fetchall()]
    with psycopg.connect(store.url) as conn:
        return [tuple(r) for r in conn.execute(sql.replace("?", "%s"), (sid,)).fetchall()]


def _rollups(store: Folding, sid: int) -> list[tuple[float, ...]]:
    return _rows(
        store,
        "SELECT day_us, start_us, end_us, count, min, max, round(sum::numeric, 6)::float, "
        "first, last FROM point_rollups WHERE series_id = ? ORDER BY day_us"
        if isinstance(store, PostgresStore)
        else "SELECT day_us, start_us, end_us, count, min, max, round(sum, 6), first, last "
        "FROM point_rollups WHERE series_id = ? ORDER BY day_us",
        sid,
    )


def _made_again(store: Folding, sid: int) -> list[tuple[float, ...]]:
    rows = _rows(
        store,
        "SELECT start_us, end_us, count, min, max, sum, first, last FROM point_chunks "
        "WHERE series_id = ? ORDER BY start_us",
        sid,
    )
    days: dict[int, list[tuple[float, ...]]] = {}
    for row in rows:
        days.setdefault(int(row[0] - row[0] % DAY_US), []).append(row)
    return [
        (
            day,
            d[0][0],
            d[-1][1],
            sum(r[2] for r in d),
            min(r[3] for r in d),
            max(r[4] for r in d),
            round(math.fsum(r[5] for r in d), 6),
            d[0][6],
            d[-1][7],
        )
        for day, d in sorted(days.items())
        if len(d) > 1  # (a day of one chunk has no row: the chunk's own says the same)
    ]


def test_day_summaries_follow_folds_deletes_and_expiry(store: Folding) -> None:
    """The rows the triggers keep (sqlite/rollups.py, postgres/rollups.py) equal rows made
    again from the chunks, after each path that changes chunks."""
    sid = another_series(store)
    other = another_series(store)  # deleted whole at the end
    times, values = _series(5, 10 * chunks.CHUNK_POINTS, True)
    times = T0 - DAY_US // 3 + np.arange(len(times), dtype=np.int64) * 2_000_000  # 3 days
    _write(store, sid, times, values)
    _write(store, other, times, values)
    store.fold_points()
    assert _rollups(store, sid) == _made_again(store, sid) and len(_rollups(store, sid)) > 1
    _write(store, sid, times[::500] + 1, values[::500])  # folded into existing chunks
    store.fold_points()
    assert _rollups(store, sid) == _made_again(store, sid)
    writer = store.writer()
    tx = writer.begin()
    tx.delete_points([sid], TimeRange(int(times[100]), int(times[9000])))
    writer.commit()
    assert _rollups(store, sid) == _made_again(store, sid)
    tx = writer.begin()
    tx.expire_points([sid], int(times[12_000]), True, 64)
    writer.commit()
    assert _rollups(store, sid) == _made_again(store, sid)
    assert _rollups(store, other) == _made_again(store, other) != []
    ((org,),) = _rows(
        store,
        "SELECT o.org_id FROM series s JOIN sources o ON o.id = s.source_id WHERE s.id = ?",
        other,
    )
    tx = writer.begin()
    tx.delete_org(int(org))  # its series' chunks and rows go
    writer.commit()
    assert _rollups(store, other) == [] == _made_again(store, other)
    assert _rollups(store, sid) == _made_again(store, sid) != []


def _reads_agree(store: Folding, sid: int, times: np.ndarray, values: np.ndarray) -> None:
    """Aggregates over the whole series, by day and by hour, and from inside a day on, equal
    those of the points, and the day rows those made again from the chunks."""
    assert _rollups(store, sid) == _made_again(store, sid)
    reader = store.reader()
    ranges = [(None, None), (None, int(times[-1]))]
    for at in (len(times) // 2, len(times) * 9 // 10, len(times) - 5):  # (past the last row too)
        ranges += [(int(times[at]), None), (int(times[at]), int(times[-1]))]
    for lo, hi in ranges:
        got = reader.aggregate(sid, TimeRange(lo, hi), AGGREGATES).values
        rlo, rhi = lo if lo is not None else -(2**62), hi if hi is not None else 2**62
        want = _expected(times, values, rlo, rhi, 2**63 - 1, -(2**62))
        _same(got, next(iter(want.values())), f"range {lo} {hi}")
    for every in (DAY_US, 3_600_000_000):
        rows = reader.aggregate_fixed(sid, TimeRange(None, None), every, 0, AGGREGATES)
        want = _expected(times, values, -(2**62), 2**62, every, 0)
        assert [row.start_us for row in rows] == sorted(want)
        for row in rows:
            assert row.start_us is not None
            _same(row.values, want[row.start_us], f"interval {row.start_us}")


def test_a_day_of_one_chunk_has_no_row(store: Folding) -> None:
    """A day's row is made when a second chunk starts in the day and removed when one is left
    (deletes, expiry); reads answer alike from rows and from the chunks of days without one."""
    sid = another_series(store)
    day = T0 - T0 % DAY_US + DAY_US
    times = day + 3_600_000_000 + np.arange(500, dtype=np.int64) * 1_000_000
    values = np.round(np.sin(np.arange(500) / 9) * 10, 1)
    others = day + 2 * DAY_US + np.arange(300, dtype=np.int64) * 1_000_000  # another day
    times, values = np.r_[times, others], np.r_[values, np.arange(300) / 4]
    _write(store, sid, times, values)
    store.fold_points()
    assert _rollups(store, sid) == []  # two days, a chunk each
    _reads_agree(store, sid, times, values)
    more = times[499] + 1_000_000 + np.arange(2 * chunks.CHUNK_POINTS, dtype=np.int64) * 1_000_000
    more_values = np.round(np.cos(np.arange(len(more)) / 7) * 5, 1)
    _write(store, sid, more, more_values)
    store.fold_points()
    times, values = (
        np.r_[times[:500], more, times[500:]],
        np.r_[values[:500], more_values, values[500:]],
    )
    assert len(_rollups(store, sid)) == 1  # the first day has three chunks now
    _reads_agree(store, sid, times, values)
    writer = store.writer()
    tx = writer.begin()  # the first day's points but its first hour's: one chunk left
    tx.delete_points([sid], TimeRange(int(times[400]), int(day + DAY_US)))
    writer.commit()
    kept = (times < times[400]) | (times >= day + DAY_US)
    times, values = times[kept], values[kept]
    assert _rollups(store, sid) == []
    _reads_agree(store, sid, times, values)
    _write(store, sid, more, more_values)  # three chunks again, then two expire
    store.fold_points()
    times, values = (
        np.r_[times[:400], more, times[400:]],
        np.r_[values[:400], more_values, values[400:]],
    )
    assert len(_rollups(store, sid)) == 1
    tx = writer.begin()
    tx.expire_points([sid], int(more[chunks.CHUNK_POINTS + 10]), True, 64)
    writer.commit()
    kept = times >= more[chunks.CHUNK_POINTS + 10]
    _reads_agree(store, sid, times[kept], values[kept])


@pytest.mark.parametrize("max_gaps", [rollups.MAX_GAPS, 0])
def test_a_day_of_one_chunk_between_days_of_several(
    store: Folding, max_gaps: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A day without a row between two rows of days not consecutive is read, by an index
    range of its own or (more spans than MAX_GAPS) among every chunk between the rows."""
    monkeypatch.setattr(rollups, "MAX_GAPS", max_gaps)
    sid = another_series(store)
    day = T0 - T0 % DAY_US + DAY_US
    parts = [
        day + np.arange(2 * chunks.CHUNK_POINTS, dtype=np.int64) * 1_000_000,
        day + 2 * DAY_US + np.arange(5000, dtype=np.int64) * 1_000_000,  # (not merged away)
        day + 4 * DAY_US + np.arange(2 * chunks.CHUNK_POINTS, dtype=np.int64) * 1_000_000,
        day + 6 * DAY_US + np.arange(5000, dtype=np.int64) * 1_000_000,  # and one after them
    ]
    for part in parts:  # a fold each: the day between starts a chunk of its own
        _write(store, sid, part, np.round(np.cos(part / 7e9) * 40, 1))
        store.fold_points()
    times = np.concatenate(parts)
    values = np.round(np.cos(times / 7e9) * 40, 1)
    assert [r[0] for r in _rollups(store, sid)] == [day, day + 4 * DAY_US]
    _reads_agree(store, sid, times, values)
    after = int(times[-5000])  # past the last row: the chunk after it read once
    got = store.reader().aggregate(sid, TimeRange(after - 1, None), ("count",)).values
    assert got == {"count": 5000}
    _write(store, sid, times[:3] + 1, values[:3])  # the log over the rows' chunks too
    every_t, every_v = np.r_[times, times[:3] + 1], np.r_[values, values[:3]]
    order = np.argsort(every_t, kind="stable")
    _reads_agree(store, sid, every_t[order], every_v[order])


@pytest.mark.parametrize("block_points", [512, chunks.BLOCK_POINTS])  # (512: chunks before)
def test_blocks_decode_exactly(block_points: int) -> None:
    rng = np.random.default_rng(3)
    cases = [
        rng.normal(0, 1, 5000),  # floats
        np.round(rng.normal(0, 1, 9000), 3),  # decimals
        np.array([-0.0, 1.5, 2.25]),  # a negative zero: kept as floats
        np.array([1e300, 3.0]),  # too large for integers
        np.array([5.0]),
    ]
    for values in cases:
        times = np.cumsum(rng.integers(1, 10**9, len(values))).astype(np.int64)
        row = chunks.encode(1, PointColumns(times, values, None), block_points)
        chunk = chunks.chunk_of_row(row[1:])
        found = chunk.points()
        assert np.array_equal(found.time_us, times)
        assert np.array_equal(found.value.view(np.int64), values.view(np.int64))
        blocks = chunks.blocks_of([chunk.blobs[3], chunk.blobs[3]])  # the same chunk twice
        n = len(blocks.count) // 2
        assert blocks.count[:n].sum() == len(values)
        which = [n - 1, n, 2 * n - 1]
        some = blocks.points([chunk.blobs[:2]] * 2, which)
        parts = [
            values[(b % n) * block_points : (b % n) * block_points + block_points] for b in which
        ]
        assert np.array_equal(some.value.view(np.int64), np.concatenate(parts).view(np.int64))
        first_block = values[:block_points]
        assert blocks.min[0] == first_block.min() and blocks.max[0] == first_block.max()
        assert blocks.first[0] == first_block[0] and blocks.last[0] == first_block[-1]
        assert math.isclose(blocks.sum[0], first_block.sum(), rel_tol=1e-12, abs_tol=1e-300)


def test_chunks_of_both_block_sizes_are_read_together() -> None:
    """A store holds chunks written with blocks of 512 points (before) beside chunks of
    BLOCK_POINTS: their blocks decode together (an aggregate over both reads them at once)."""
    rng = np.random.default_rng(5)
    values = np.round(rng.normal(20, 1, 5000), 1)
    times = np.cumsum(rng.integers(1, 10**9, len(values))).astype(np.int64)
    old = chunks.chunk_of_row(chunks.encode(1, PointColumns(times, values, None), 512)[1:])
    new = chunks.chunk_of_row(chunks.encode(1, PointColumns(times, values, None))[1:])
    assert len(new.blobs[3]) < len(old.blobs[3])
    blocks = chunks.blocks_of([old.blobs[3], new.blobs[3]])
    n_old = -(-len(values) // 512)
    assert len(blocks.count) == n_old + -(-len(values) // chunks.BLOCK_POINTS)
    assert blocks.count[:n_old].sum() == blocks.count[n_old:].sum() == len(values)
    assert blocks.max[:n_old].max() == blocks.max[n_old:].max() == values.max()
    every = blocks.points([old.blobs[:2], new.blobs[:2]], list(range(len(blocks.count))))
    assert every.value.tolist() == values.tolist() * 2
    assert every.time_us.tolist() == times.tolist() * 2


def test_a_regular_time_column_takes_a_few_bytes_and_a_millisecond_one_is_divided() -> None:
    """The time column's mode (chunks._paged_times): pcodec's own choice divided 1,000 times
    10 s apart by the interval into 310 bytes, the classic mode's deltas take 29; times of
    millisecond precision are the other way round. Both decode exactly."""
    rng = np.random.default_rng(4)
    regular = (1_577_836_800 + np.arange(1000, dtype=np.int64) * 10) * 1_000_000
    millis = (1_577_836_800_000 + np.cumsum(rng.integers(900, 1100, 1000))) * 1_000
    for times, most in ((regular, 64), (millis, 1200)):
        values = np.round(rng.normal(20, 1, len(times)), 1)
        row = chunks.encode(1, PointColumns(times, values, None))
        assert len(row[9]) <= most
        back = chunks.chunk_of_row(row[1:]).points()
        assert back.time_us.tolist() == times.tolist()
        assert back.value.tolist() == values.tolist()


@pytest.mark.parametrize("points", [3, 500, 1_024, 1_500, 8_192])
@pytest.mark.parametrize("step_us", [1, 1_000, 123_457, 10_000_000, 3_600_000_000])
def test_times_at_one_interval_take_the_classic_mode_alone(points: int, step_us: int) -> None:
    """chunks._paged_times encodes times at one interval throughout in the classic mode only:
    never more bytes than pcodec's own choice would take, and they decode exactly."""
    times = 1_577_836_800_123_456 + np.arange(points, dtype=np.int64) * step_us
    sizes = [min(chunks.BLOCK_POINTS, points - at) for at in range(0, points, chunks.BLOCK_POINTS)]
    blob = chunks._paged_times(times, sizes)[0]
    assert blob == chunks._paged(times, sizes, ModeSpec.classic())[0]
    assert len(blob) <= len(chunks._paged(times, sizes)[0])
    values = np.arange(points, dtype=np.float64)
    back = chunks.chunk_of_row(chunks.encode(1, PointColumns(times, values, None))[1:]).points()
    assert back.time_us.tolist() == times.tolist()
