"""Merging small chunks (storage/chunk_merges.py, sqlite/merges.py, postgres/merges.py): a
series written over many folds ends in chunks of up to CHUNK_POINTS, with every point, every
aggregate and every day summary as before, on SQLite and PostgreSQL; merges beside the log,
deletes and another node's fold lock; a store from before opens and merges."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np
import psycopg
import pytest

from sensorbase.model import PointColumns, ResolvedBatch, TimeRange
from sensorbase.settings import Settings
from sensorbase.storage import open_store
from sensorbase.storage.chunk_merges import MERGE_BELOW, groups
from sensorbase.storage.chunks import CHUNK_POINTS
from sensorbase.storage.postgres import fold as pg_fold
from sensorbase.storage.postgres import folder as pg_folder
from sensorbase.storage.postgres.store import PostgresStore
from sensorbase.storage.rollups import DAY_US
from sensorbase.storage.sqlite import folder as sqlite_folder
from sensorbase.storage.sqlite import merges as sqlite_merges
from sensorbase.storage.sqlite import store as sqlite_store
from sensorbase.storage.sqlite.store import SQLiteStore
from tests.storage.conftest import Folding, another_series
from tests.storage.test_sqlite_chunk_blocks import _made_again, _rollups, _rows

T0 = 1_700_000_000_000_000 - DAY_US // 2  # (the series crosses days)
AGGREGATES = ("count", "min", "max", "sum", "avg", "first", "last")


def test_groups_leave_a_written_series_last_chunk_and_wait_for_enough_points() -> None:
    small = MERGE_BELOW // 3
    counts = [(i, c) for i, c in enumerate([small, small, small, small, CHUNK_POINTS, 10, 10])]
    # While written: the last chunk is left; a group waits until it holds MERGE_BELOW.
    assert groups(counts, settled=False) == [[0, 1, 2, 3]]
    assert groups(counts[:3], settled=False) == []
    # Settled: any two or more neighbours, the last too; never across a large chunk.
    assert groups(counts, settled=True) == [[0, 1, 2, 3], [5, 6]]
    # At most CHUNK_POINTS a group.
    many = [(i, MERGE_BELOW - 1) for i in range(5)]
    assert groups(many, settled=True) == [[0, 1], [2, 3]]


def _write(store: Folding, sid: int, points: PointColumns) -> None:
    writer = store.writer()
    tx = writer.begin()
    series = np.full(len(points), sid, np.int64)
    tx.append(ResolvedBatch(series, points.time_us, points.value, points.extra))
    writer.commit()


def _points(seed: int, n: int) -> PointColumns:
    """A 1 s series (a few gaps) of thermometer values, some points with extras."""
    rng = np.random.default_rng(seed)
    steps = np.where(rng.random(n) < 0.002, 3_600_000_000, 1_000_000)
    times = (T0 + np.cumsum(steps)).astype(np.int64)
    values = np.round(20 + np.cumsum(rng.normal(0, 0.1, n)), 1)
    extra = [f'{{"i":{i}}}' if i % 997 == 0 else None for i in range(n)]
    return PointColumns(times, values, extra)


def _in_folds(store: Folding, sid: int, points: PointColumns, per_fold: int) -> None:
    for at in range(0, len(points), per_fold):
        _write(store, sid, points.take(slice(at, at + per_fold)))
        store.fold_points()


def _counts(store: Folding, sid: int) -> list[int]:
    rows = _rows(store, "SELECT count FROM point_chunks WHERE series_id = ? ORDER BY start_us", sid)
    return [int(r[0]) for r in rows]


def _seen(store: Folding, sid: int) -> tuple[Any, ...]:
    """Every read of the series that chunks answer: points (with extras), aggregates over
    the whole and a part, per hour, and the day summaries."""
    reader = store.reader()
    every = reader.read_range(sid, TimeRange(None, None), 10**7)
    lo, hi = int(every.time_us[len(every) // 5]), int(every.time_us[-len(every) // 3])
    return (
        every.time_us.tolist(),
        every.value.tolist(),
        every.extra,
        reader.aggregate(sid, TimeRange(None, None), AGGREGATES).values,
        reader.aggregate(sid, TimeRange(lo, hi), AGGREGATES).values,
        [
            (r.start_us, r.values)
            for r in reader.aggregate_fixed(sid, TimeRange(lo, hi), 3_600_000_000, 0, AGGREGATES)
        ],
        reader.read_latest([sid], 1000)[0].time_us.tolist(),
    )


def _same(a: tuple[Any, ...], b: tuple[Any, ...]) -> None:
    """Equal, sums and means to rounding (a merged chunk adds its points in another order)."""
    assert a[:3] == b[:3]
    for whole_a, whole_b in ((a[3], b[3]), (a[4], b[4])):
        for name in AGGREGATES:
            assert whole_a[name] == pytest.approx(whole_b[name], rel=1e-12), name
    assert [s for s, _ in a[5]] == [s for s, _ in b[5]]
    for (_, x), (_, y) in zip(a[5], b[5], strict=True):
        assert {k: pytest.approx(v, rel=1e-12) for k, v in x.items()} == y
    assert a[6] == b[6]


def test_chunks_of_many_folds_merge_with_every_read_the_same(store: Folding) -> None:
    sid = another_series(store)
    points = _points(1, 30_000)
    _in_folds(store, sid, points, 700)  # chunks of ~1,400 points
    before = _counts(store, sid)
    assert len(before) > 15 and max(before) < MERGE_BELOW
    seen = _seen(store, sid)

    assert store.merge_chunks(settled=False) > 0
    written = _counts(store, sid)
    assert written[-1] == before[-1]  # the chunk the next fold refills is left
    assert sum(written) == len(points) and len(written) < len(before) / 2
    assert all(c <= CHUNK_POINTS for c in written)
    _same(_seen(store, sid), seen)
    assert _rollups(store, sid) == _made_again(store, sid)

    store.merge_chunks(settled=True)
    settled = _counts(store, sid)
    assert sum(settled) == len(points) and len(settled) <= len(written)
    assert sum(c < MERGE_BELOW for c in settled) <= 1
    _same(_seen(store, sid), seen)
    assert _rollups(store, sid) == _made_again(store, sid)
    assert store.merge_chunks(settled=True) == 0  # nothing left


def test_merges_beside_the_log_and_deletes(store: Folding) -> None:
    sid = another_series(store)
    points = _points(2, 12_000)
    _in_folds(store, sid, points, 900)
    # Points in the log (not folded) among the chunks merged: replacing and added ones.
    late = PointColumns(points.time_us[::50] + 1, points.value[::50] * 2, None)
    again = PointColumns(points.time_us[100::300], points.value[100::300] + 1, None)
    _write(store, sid, late)
    _write(store, sid, again)
    model = PointColumns.concat([points, late, again])
    order = np.lexsort((np.arange(len(model)), model.time_us))
    model = model.take(order).latest_wins()
    assert store.merge_chunks(settled=True) > 0
    got = store.reader().read_range(sid, TimeRange(None, None), 10**7)
    assert got.time_us.tolist() == model.time_us.tolist()
    assert got.value.tolist() == model.value.tolist()
    # A delete after the merge, a fold and a merge again.
    cut = TimeRange(int(points.time_us[3000]), int(points.time_us[7000]))
    writer = store.writer()
    tx = writer.begin()
    tx.delete_points([sid], cut)
    writer.commit()
    store.fold_points()
    store.merge_chunks(settled=True)
    kept = model.take(np.flatnonzero(~cut.mask(model.time_us)))
    got = store.reader().read_range(sid, TimeRange(None, None), 10**7)
    assert got.time_us.tolist() == kept.time_us.tolist()
    assert got.value.tolist() == kept.value.tolist()
    assert sum(_counts(store, sid)) == len(kept)
    assert _rollups(store, sid) == _made_again(store, sid)


def _merged_with_a_change_between(store: SQLiteStore, change: Callable[[], None]) -> int:
    """Merge every small chunk of `store`, `change` made between the first step's plan and its
    writing; the points merged (the first step refused, so planned again)."""
    calls = []
    lock = sqlite_folder.writer_locked(store.path)

    def locked(fn: Any) -> bool:
        if not calls:  # between the plan and its writing
            change()
        calls.append(1)
        return bool(lock(fn))

    conn = store._connect()
    try:
        merged = sqlite_merges.merge(conn, locked, settled=True, most_steps=8)
    finally:
        conn.close()
    assert len(calls) >= 2
    return merged


def test_a_merge_planned_before_a_delete_is_planned_again(sqlite_store: SQLiteStore) -> None:
    """SQLite plans a step from a snapshot and applies it under the writer lock: a delete in
    between changes the chunks' generation, and the step is refused and planned again (else it
    would bring the deleted points back)."""
    store = sqlite_store
    sid = another_series(store)
    points = _points(3, 10_000)
    _in_folds(store, sid, points, 800)
    cut = TimeRange(int(points.time_us[2000]), int(points.time_us[2500]))

    def delete() -> None:
        writer = store.writer()
        tx = writer.begin()
        tx.delete_points([sid], cut)
        writer.commit()

    assert _merged_with_a_change_between(store, delete) > 0
    kept = points.take(np.flatnonzero(~cut.mask(points.time_us)))
    got = store.reader().read_range(sid, TimeRange(None, None), 10**7)
    assert got.time_us.tolist() == kept.time_us.tolist()
    assert _rollups(store, sid) == _made_again(store, sid)


@pytest.mark.parametrize("backend", ["postgres"])
def test_a_node_holding_the_fold_lock_keeps_a_merge_out(store: Folding) -> None:
    assert isinstance(store, PostgresStore)
    sid = another_series(store)
    _in_folds(store, sid, _points(4, 6000), 700)
    before = _counts(store, sid)
    with psycopg.connect(store.url) as other, other.transaction():
        assert pg_fold.try_lock(other)
        assert store.merge_chunks() == 0
        assert _counts(store, sid) == before
    assert store.merge_chunks() > 0


def test_a_clean_stop_merges(settings: Settings) -> None:
    store = open_store(settings)
    assert isinstance(store, SQLiteStore | PostgresStore)
    store.open()
    sid = another_series(store)
    points = _points(5, 8000)
    _in_folds(store, sid, points, 600)
    seen = _seen(store, sid)
    assert len(_counts(store, sid)) > 5
    store.close()
    store = open_store(settings)
    assert isinstance(store, SQLiteStore | PostgresStore)
    store.open()
    try:
        assert len(_counts(store, sid)) == 1
        _same(_seen(store, sid), seen)
    finally:
        store.close()


def test_a_store_from_before_opens_and_merges(
    settings: Settings, backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A store of schema 7 (no index of small chunks, chunks never merged): opened, it gets
    the index, and its chunks merge."""
    store = open_store(settings)
    assert isinstance(store, SQLiteStore | PostgresStore)
    store.open()
    sid = another_series(store)
    _in_folds(store, sid, _points(6, 9000), 700)
    seen = _seen(store, sid)
    before = _counts(store, sid)
    with monkeypatch.context() as patched:  # (a stop of schema 7 merged nothing)
        patched.setattr(sqlite_store, "CLOSE_MERGE_STEPS", 0)
        patched.setattr(pg_folder, "CLOSE_MERGE_STEPS", 0)
        store.close()
    if isinstance(store, SQLiteStore):
        conn = sqlite3.connect(store.path)
        conn.executescript("DROP INDEX point_chunks_small; PRAGMA user_version = 7;")
        conn.close()
    else:
        with psycopg.connect(store.url, autocommit=True) as conn:
            conn.execute("DROP INDEX point_chunks_small")
            conn.execute("DELETE FROM sensorbase_schema WHERE version >= 8")
    store = open_store(settings)
    assert isinstance(store, SQLiteStore | PostgresStore)
    store.open()
    try:
        assert _counts(store, sid) == before
        indexes = _rows(
            store,
            "SELECT count(*) FROM pg_indexes WHERE indexname = 'point_chunks_small' AND 0 < ?"
            if isinstance(store, PostgresStore)
            else "SELECT count(*) FROM sqlite_master WHERE name = 'point_chunks_small' AND 0 < ?",
            1,
        )
        assert indexes == [(1,)]
        assert store.merge_chunks() > 0
        assert len(_counts(store, sid)) < len(before)
        _same(_seen(store, sid), seen)
        assert _rollups(store, sid) == _made_again(store, sid)
    finally:
        store.close()


def _expire(store: Folding, sid: int, cutoff_us: int) -> None:
    writer = store.writer()
    tx = writer.begin()
    while tx.expire_points([sid], cutoff_us, True, 64)[0] == 64:
        pass
    writer.commit()


def _expired_count(store: Folding, sid: int) -> int:
    return sum(s.count for s in store.reader().read_summaries(sid, TimeRange(None, None)))


def test_expiry_beside_merges(store: Folding) -> None:
    """Expiry cuts merged chunks and chunks about to be merged alike: the points after the
    cutoff stay, those before leave their summaries, and merging what is left loses none."""
    sid = another_series(store)
    points = _points(7, 12_000)
    _in_folds(store, sid, points, 700)
    store.merge_chunks(settled=False)  # some merged, the newest still small
    cutoff = int(points.time_us[9_500])  # (inside the small chunks)
    _expire(store, sid, cutoff)
    store.merge_chunks(settled=True)
    kept = points.take(np.flatnonzero(points.time_us >= cutoff))
    got = store.reader().read_range(sid, TimeRange(None, None), 10**7)
    assert got.time_us.tolist() == kept.time_us.tolist()
    assert got.value.tolist() == kept.value.tolist()
    assert _expired_count(store, sid) == len(points) - len(kept)
    assert _rollups(store, sid) == _made_again(store, sid)


def test_a_merge_planned_before_an_expiry_is_planned_again(sqlite_store: SQLiteStore) -> None:
    """Expiry leaves the generation as it is (folds keep up during a long pass), so a step is
    refused because a chunk it replaces is gone (cut at the cutoff: written again from its
    first kept point); planned again, it brings no expired point back."""
    store = sqlite_store
    sid = another_series(store)
    points = _points(8, 10_000)
    _in_folds(store, sid, points, 800)
    cutoff = int(points.time_us[2_500])
    assert _merged_with_a_change_between(store, partial(_expire, store, sid, cutoff)) > 0
    kept = points.take(np.flatnonzero(points.time_us >= cutoff))
    got = store.reader().read_range(sid, TimeRange(None, None), 10**7)
    assert got.time_us.tolist() == kept.time_us.tolist()
    assert _expired_count(store, sid) == len(points) - len(kept)
    assert _rollups(store, sid) == _made_again(store, sid)
