"""SQLite's store with many series (a fleet): the fold waits for points a series before it
is due and is applied in parts (reads between them read the same points, a delete between
them refuses the rest), and reads find a series' points in the write log by scanning its
columns (log.py), across rows, extras, replaced points and a fold that lands while a read
holds its view."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from functools import partial

import numpy as np
import pytest

from sensorbase.model import ResolvedBatch, TimeRange
from sensorbase.storage import log_view
from sensorbase.storage.sqlite import fold, folder
from sensorbase.storage.sqlite.store import SQLiteStore
from tests.storage.conftest import new_series
from tests.storage.test_sqlite_points import chunk_counts

ALL = TimeRange(None, None)


def series_of_one_source(store: SQLiteStore, source_id: int, n: int) -> list[int]:
    writer = store.writer()
    tx = writer.begin()
    made = tx.get_or_create_series_of([(source_id, f"f{i}", None, {}) for i in range(n)])
    writer.commit()
    return sorted(made.values())


def append(store: SQLiteStore, rows: list[tuple[int, int, float, str | None]]) -> None:
    """One group commit (one log row) of (series, time, value, extra) points."""
    writer = store.writer()
    tx = writer.begin()
    extra = [e for *_, e in rows]
    tx.append(
        ResolvedBatch(
            np.array([r[0] for r in rows], np.int64),
            np.array([r[1] for r in rows], np.int64),
            np.array([r[2] for r in rows], np.float64),
            extra if any(e is not None for e in extra) else None,
        )
    )
    writer.commit()


def test_a_fold_is_due_later_with_more_series_up_to_a_bound(sqlite_store: SQLiteStore) -> None:
    conn = sqlite_store.reader().conn
    _, source = new_series(sqlite_store)
    assert fold.due_points(conn) == fold.FOLD_POINTS
    assert fold.due_points(conn, 10) == log_view.FOLD_POINTS_PER_SERIES  # (one series)
    ids = series_of_one_source(sqlite_store, source, 1_000)
    assert fold.due_points(conn) == (max(ids)) * log_view.FOLD_POINTS_PER_SERIES
    series_of_one_source(sqlite_store, source, 2_000)
    assert fold.due_points(conn) == log_view.FOLD_POINTS_MOST


def test_reads_find_a_series_in_the_log_rows_and_keep_their_view_across_a_fold(
    sqlite_store: SQLiteStore,
) -> None:
    store = sqlite_store
    _, source = new_series(store)
    a, b, c = series_of_one_source(store, source, 3)
    append(store, [(a, 1, 1.0, None), (b, 1, 10.0, "x"), (a, 2, 2.0, None), (c, 5, 5.0, None)])
    append(store, [(b, 2, 20.0, None), (a, 2, 2.5, None)])  # a later write replaces (a, 2)
    append(store, [(c, 4, 4.0, "y"), (b, 1, 11.0, None)])  # ... and (b, 1), its extra too
    reader = store.reader()
    assert reader.read_range(a, ALL, 10).value.tolist() == [1.0, 2.5]
    got = reader.read_range(b, ALL, 10)
    assert (got.value.tolist(), got.extra) == ([11.0, 20.0], None)
    got = reader.read_range(c, ALL, 10)
    assert (got.time_us.tolist(), got.extra) == ([4, 5], ["y", None])
    assert reader.count(a, TimeRange(2, None)) == 1

    # A read transaction that began before a fold keeps seeing the log it began with.
    conn = reader.conn
    conn.execute("BEGIN")
    try:
        view = store._log.view(conn)
        assert store.fold_points() == 6
        append(store, [(a, 3, 3.0, None)])
        assert view.points(a, ALL).value.tolist() == [1.0, 2.5]
        fresh = store._connect()  # another thread's read moves the cache on
        try:
            fresh.execute("BEGIN")
            assert store._log.view(fresh).points(a, ALL).value.tolist() == [3.0]
            fresh.execute("COMMIT")
        finally:
            fresh.close()
        older = store._log.view(conn)  # so this snapshot's folded log rows are read again
        assert older.points(b, ALL).value.tolist() == [11.0, 20.0]
    finally:
        conn.execute("COMMIT")
    assert reader.read_range(a, ALL, 10).value.tolist() == [1.0, 2.5, 3.0]
    got = reader.read_range(c, ALL, 10)
    assert (got.time_us.tolist(), got.extra) == ([4, 5], ["y", None])


def apply_part(store: SQLiteStore, conn: sqlite3.Connection, part: fold.FoldPlan) -> bool:
    return folder.writer_locked(store.path)(partial(fold.apply_alone, conn, part))


def planned_parts(conn: sqlite3.Connection, series: int) -> list[fold.FoldPlan]:
    """The log's fold in parts of `series` series, all planned now (fold_once plans each
    after applying the one before)."""
    conn.execute("BEGIN")
    log = fold.read_log(conn)
    assert log is not None
    starts = range(0, log.series_count, series)
    parts = [fold.plan_part(conn, log, at, at + series) for at in starts]
    conn.execute("COMMIT")
    return parts


def test_a_fold_applied_in_parts_reads_the_same_between_them(sqlite_store: SQLiteStore) -> None:
    store = sqlite_store
    _, source = new_series(store)
    ids = series_of_one_source(store, source, 10)
    append(store, [(s, t, float(s * 100 + t), None) for s in ids for t in range(5)])
    store.fold_points()
    append(store, [(s, t, float(-s - t), None) for s in ids for t in range(3, 8)])
    want = {
        s: [float(s * 100 + t) for t in range(3)] + [float(-s - t) for t in range(3, 8)]
        for s in ids
    }
    conn = store._connect()
    try:
        parts = planned_parts(conn, 3)
        assert [len({row[0] for row in p.add}) for p in parts] == [3, 3, 3, 1]
        assert [p.last_row for p in parts[:-1]] == [None] * 3
        for part, following in zip(parts, [*parts[1:], None], strict=False):
            assert apply_part(store, conn, part)
            if following is not None:
                following.generation = part.generation
            reader = store.reader()
            for s in ids:  # the log not yet let go holds points the chunks hold too
                assert reader.read_range(s, ALL, 100).value.tolist() == want[s], s
                assert reader.count(s, ALL) == 8
        assert fold.log_size(conn) == (0, 0)

        # A delete between two parts: the rest is refused, the log stays for the next fold.
        append(store, [(s, 9, 9.0, None) for s in ids])
        first, second, *_ = planned_parts(conn, 4)
        assert apply_part(store, conn, first)
        second.generation = first.generation
        writer = store.writer()
        writer.begin().delete_points(ids, TimeRange(0, 1))
        writer.commit()
        assert not apply_part(store, conn, second)
    finally:
        conn.close()
    reader = store.reader()
    for s in ids:
        assert reader.read_range(s, ALL, 100).value.tolist() == [*want[s][1:], 9.0]


def test_fold_once_plans_each_part_after_the_one_before(
    sqlite_store: SQLiteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The folder holds one part's chunk rows at a time: each part is planned once the one
    before is written (it reads that part's series' chunks as they are then), and a delete
    between two parts refuses the rest (which the next fold, here the delete's own, writes)."""
    store = sqlite_store
    monkeypatch.setattr(fold, "FOLD_PART_SERIES", 3)
    _, source = new_series(store)
    ids = series_of_one_source(store, source, 10)
    append(store, [(s, t, float(s * 100 + t), None) for s in ids for t in range(5)])
    planned: list[int] = []
    plan_part = fold.plan_part

    def spying(
        conn: sqlite3.Connection, log: fold.LogFold, first: int, end: int, settled: bool = False
    ) -> fold.FoldPlan:
        if end - first == 3:  # fold_once's parts (a delete's own fold plans the log at once)
            planned.append(first)
        return plan_part(conn, log, first, end, settled)

    monkeypatch.setattr(fold, "plan_part", spying)
    applied: list[int] = []
    conn = store._connect()
    try:
        locked = folder.writer_locked(store.path)

        def counting(fn: Callable[[], bool]) -> bool:
            assert len(planned) == len(applied) + 1  # planned just before, not all at first
            applied.append(len(planned))
            return locked(fn)

        assert folder.fold_once(conn, counting) == 50
        assert applied == [1, 2, 3, 4]
        assert fold.log_size(conn) == (0, 0)

        append(store, [(s, 9, 9.0, None) for s in ids])
        applied.clear()
        planned.clear()

        def deleting_after_the_first(fn: Callable[[], bool]) -> bool:
            applied.append(len(planned))
            done = locked(fn)
            if len(applied) == 1:  # a delete (of nothing: it changes the chunks' generation)
                writer = store.writer()
                writer.begin().delete_points(ids[-1:], TimeRange(1_000, 2_000))
                writer.commit()
            return done

        assert folder.fold_once(conn, deleting_after_the_first) == 0
        assert applied == [1, 2]  # the second part planned, then refused; no third
    finally:
        conn.close()
    store.fold_points()
    assert fold.log_size(store._connect())[1] == 0
    reader = store.reader()
    for s in ids:
        want = [float(s * 100 + t) for t in range(5)] + [9.0]
        assert reader.read_range(s, ALL, 100).value.tolist() == want, s


@pytest.mark.parametrize("later_rows_go_back", [False, True])
def test_the_log_read_for_a_fold_is_sorted_with_the_latest_write_kept(
    sqlite_store: SQLiteStore, later_rows_go_back: bool
) -> None:
    """fold.read_log against a plain model: the points of every row, by series then time, the
    last write of each (series, time) kept; rows that go on in time (the common case: one
    stable sort by series) and rows that go back (then sorted by time within each series)."""
    store = sqlite_store
    _, source = new_series(store)
    ids = series_of_one_source(store, source, 5)
    rng = np.random.default_rng(7)
    model: dict[tuple[int, int], float] = {}
    for row in range(6):
        base = (5 - row if later_rows_go_back else row) * 10
        points = [
            (int(s), base + int(t), float(rng.integers(1000)), None)
            for s in rng.permutation(ids)[:3]
            for t in rng.integers(0, 12 if later_rows_go_back else 10, 4)  # (repeats in a
            # row; rows that go back also repeat some of the row before's times)
        ]
        append(store, points)
        for s, t, v, _ in points:
            model[(s, t)] = v
    conn = store._connect()
    try:
        log = fold.read_log(conn)
    finally:
        conn.close()
    assert log is not None
    want = sorted(model.items())
    assert log.series.tolist() == [s for (s, _), _ in want]
    assert log.new.time_us.tolist() == [t for (_, t), _ in want]
    assert log.new.value.tolist() == [v for _, v in want]
    assert log.edges == [0, *np.cumsum(np.unique(log.series, return_counts=True)[1]).tolist()]


@pytest.mark.parametrize("settled", [False, True])
def test_a_fold_once_writes_pause_takes_in_the_trailing_small_chunks(
    sqlite_store: SQLiteStore, settled: bool
) -> None:
    """A fold once writes have paused (`settled`: the folder's quiet fold, a clean stop)
    writes a series' trailing chunks of fewer than MERGE_BELOW points and its new points as
    one chunk (as the settled merge after it would: chunk_merges.settled_tail), as many as
    fit in CHUNK_POINTS; a fold while writes go on leaves chunks of REFILL_BELOW or more as
    they are. The points read the same either way."""
    store = sqlite_store
    sid, _ = new_series(store)
    step = 1_500  # >= REFILL_BELOW: each fold a chunk of its own
    for at in range(0, 7 * step, step):  # 7 chunks: 10,500 points, more than one chunk holds
        append(store, [(sid, t, float(t % 7), None) for t in range(at, at + step)])
        store.fold_points()
    assert chunk_counts(store, sid) == [step] * 7
    append(store, [(sid, t, float(t % 7), None) for t in range(7 * step, 7 * step + 100)])
    conn = store._connect()
    try:
        locked = folder.writer_locked(store.path)
        assert folder.fold_once(conn, locked, settled=settled) == 100
    finally:
        conn.close()
    # (the last 5 chunks and the 100 new points fit in 8,192; the first two are left)
    want = [step] * 2 + [5 * step + 100] if settled else [step] * 7 + [100]
    assert chunk_counts(store, sid) == want
    got = store.reader().read_range(sid, ALL, 20_000)
    assert got.time_us.tolist() == list(range(7 * step + 100))
    assert got.value.tolist() == [float(t % 7) for t in range(7 * step + 100)]
