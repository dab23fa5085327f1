"""The log cache (storage/log_view.py) shared by both backends: every view handed out keeps the
points it was given while folds let rows go and later rows are appended and the arrays grow,
without the lock (a reading thread may still be scanning an old view); the rows a process
commits are put in its cache by its writer, read lately or not, and the rows folded let go."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from sensorbase.model import ResolvedBatch, TimeRange
from sensorbase.settings import Settings
from sensorbase.storage import log_view
from sensorbase.storage.log_view import LogCache, LogRow, LogView
from sensorbase.storage.postgres.store import PostgresStore
from sensorbase.storage.sqlite.store import SQLiteStore
from tests.pg import temporary_database
from tests.storage.conftest import Folding, another_series

SERIES = 7
POINTS = 300  # a row's


def _row(row_id: int) -> tuple[Any, ...]:
    """Log row `row_id`: POINTS points over SERIES series, sorted by (series, time)."""
    series = np.sort(np.arange(POINTS, dtype=np.int64) % SERIES)
    times = row_id * 1_000_000 + np.arange(POINTS, dtype=np.int64)
    order = np.lexsort((times, series))
    values = (row_id * 1000 + np.arange(POINTS)).astype(np.float64)
    return (row_id, series[order].tobytes(), times[order].tobytes(), values.tobytes(), None)


def _read(ids: list[int]) -> Iterable[tuple[Any, ...]]:
    return [_row(i) for i in ids]


def _expected(first: int, last: int, series: int) -> list[tuple[int, float]]:
    found = []
    for row_id in range(first, last + 1):
        _, s, t, v, _ = _row(row_id)
        at = np.frombuffer(s, np.int64) == series
        found += zip(
            np.frombuffer(t, np.int64)[at].tolist(),
            np.frombuffer(v, np.float64)[at].tolist(),
            strict=True,
        )
    return sorted(found)


def _points(view: LogView, series: int) -> list[tuple[int, float]]:
    got = view.points(series, TimeRange(None, None))
    return list(zip(got.time_us.tolist(), got.value.tolist(), strict=True))


def _logged(row_id: int) -> LogRow:
    """Row `row_id` as its writer hands it to `LogCache.committed`."""
    _, series, times, values, extra = _row(row_id)
    return (POINTS, series, times, values, extra)


@pytest.mark.parametrize("room", [0, None], ids=["doubling", "default-room"])
def test_views_keep_their_points_through_folds_and_growth(
    room: int | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Views handed out keep their points while folds let rows go (the columns then views
    past them), rows are put in by the writer or fetched, and the columns grow."""
    if room is not None:
        monkeypatch.setattr(log_view, "_ROOM_AT_LEAST", room)
    cache = LogCache()
    views = [(1, 10, cache.view_of(1, 10, None, _read))]
    first, last = 1, 10
    for step in range(40):  # folds let rows go, writes add them: the arrays grow and move
        first += 3 + step % 5
        fed_to = last + 5 + step % 4  # rows this process committed, in place past the views
        for row_id in range(last + 1, fed_to + 1):
            cache.committed(row_id, _logged(row_id))
        last += 8 + step % 3  # and some another process did, fetched
        views.append((first, last, cache.view_of(first, last, None, _read)))
    for a, b, view in views:  # each as it was handed out
        for series in range(SERIES):
            assert _points(view, series) == _expected(a, b, series), (a, b, series)


def test_rows_committed_while_a_read_holds_the_lock_wait_for_the_next_one() -> None:
    """The writer (on the event loop) does not wait for the lock a read holds: its rows are
    held once the lock is free, not fetched back; after a row from elsewhere, fetched."""
    cache = LogCache()
    fetched: list[int] = []

    def read(ids: list[int]) -> Iterable[tuple[Any, ...]]:
        fetched.extend(ids)
        return _read(ids)

    cache.view_of(1, 3, None, read)
    holding, release = threading.Event(), threading.Event()

    def a_read_holding_the_lock() -> None:
        with cache._lock:
            holding.set()
            release.wait(10)

    reader = threading.Thread(target=a_read_holding_the_lock)
    reader.start()
    holding.wait(10)
    writer = threading.Thread(target=lambda: [cache.committed(i, _logged(i)) for i in (4, 5)])
    writer.start()
    writer.join(5)
    still_waiting = writer.is_alive()
    release.set()
    reader.join()
    writer.join()
    assert not still_waiting, "the writer waited for the read's lock"
    fetched.clear()
    view = cache.view_of(1, 5, None, read)
    assert fetched == []
    for series in range(SERIES):
        assert _points(view, series) == _expected(1, 5, series)
    cache.committed(7, _logged(7))  # row 6 is another process's: 7 is not held
    view = cache.view_of(2, 7, None, read)
    assert fetched == [6, 7]
    for series in range(SERIES):
        assert _points(view, series) == _expected(2, 7, series)


def test_the_writer_leaves_new_arrays_to_a_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    """Rows past the columns' room are put in by a thread of the cache's, not by the writer
    (the event loop, which copying the rows held stalled), and are held all the same."""
    monkeypatch.setattr(log_view, "_ROOM_AT_LEAST", 0)  # (grown by doubling: often)
    grown_on: list[threading.Thread] = []
    grown = log_view._grown

    def recorded(*args: Any) -> Any:
        grown_on.append(threading.current_thread())
        return grown(*args)

    monkeypatch.setattr(log_view, "_grown", recorded)
    cache = LogCache()
    for row_id in range(1, 40):
        cache.committed(row_id, _logged(row_id), 1)
        if cache._grower is not None:
            cache._grower.join(10)
    assert len(grown_on) >= 5 and threading.current_thread() not in grown_on
    assert cache._ids == list(range(1, 40)) and not cache._fed

    def read(ids: list[int]) -> Iterable[tuple[Any, ...]]:
        raise AssertionError(f"fetched {ids}")

    view = cache.view_of(1, 39, None, read)
    for series in range(SERIES):
        assert _points(view, series) == _expected(1, 39, series)


# --- the rows a process commits, put in its cache by its writer (SQLite) ---------------------


def _fetches(store: Folding) -> list[int]:
    """The log rows `store`'s reads fetch from the database from now on, by id."""
    fetched: list[int] = []
    cache = store.log_cache if isinstance(store, PostgresStore) else store._log
    view_of = cache.view_of

    def counted(first: int, last: int, ids: Any, read: Any) -> LogView:
        def reading(wanted: list[int]) -> Iterable[tuple[Any, ...]]:
            rows = list(read(wanted))
            fetched.extend(row[0] for row in rows)
            return rows

        return view_of(first, last, ids, reading)

    cache.view_of = counted  # type: ignore[method-assign]
    return fetched


def _commit(store: Folding, sid: int, start_s: int, n: int = 5) -> None:
    writer = store.writer()
    tx = writer.begin()
    times = (start_s + np.arange(n, dtype=np.int64)) * 1_000_000
    tx.append(ResolvedBatch(np.full(n, sid, np.int64), times, times / 1e6, None))
    writer.commit()


def _stored(store: Folding, sid: int) -> list[float]:
    return store.reader().read_range(sid, TimeRange(None, None), 10_000).value.tolist()


@pytest.fixture(params=["sqlite", "postgres"])
def two_stores(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Folding, Folding]]:
    """Two stores on one database: two worker processes, or two nodes."""
    if request.param == "sqlite":
        settings = Settings(data_dir=tmp_path, durability="normal")
        yield from _opened(
            SQLiteStore(tmp_path / "sb.db", settings), SQLiteStore(tmp_path / "sb.db", settings)
        )
        return
    with temporary_database() as url:
        settings = Settings(data_dir=tmp_path, database_url=url)
        yield from _opened(PostgresStore(url, settings), PostgresStore(url, settings))


def _opened(a: Folding, b: Folding) -> Iterator[tuple[Folding, Folding]]:
    a.open()
    b.open()
    try:
        yield a, b
    finally:
        a.close()
        b.close()


def _cache(store: Folding) -> LogCache:
    return store.log_cache if isinstance(store, PostgresStore) else store._log


def test_rows_a_process_commits_are_read_from_its_cache_and_others_rows_fetched(
    two_stores: tuple[Folding, Folding],
) -> None:
    """Two stores on one database (two worker processes, two nodes): each one's reads take
    the rows its own writer committed from its cache, the first before any read too, and
    fetch the other's, so that both read every point; a writer's row that does not follow
    the rows read is left to be fetched."""
    a, b = two_stores
    sid = another_series(a)
    _commit(a, sid, 0)
    fetched = _fetches(a)
    assert _stored(a, sid) == [0, 1, 2, 3, 4]
    assert fetched == []  # the first row, committed before any read, held too
    for start in (10, 20, 30):
        _commit(a, sid, start)
    every = [0, 1, 2, 3, 4] + [s + i for s in (10, 20, 30) for i in range(5)]
    assert _stored(a, sid) == every and fetched == []  # none fetched back
    _commit(b, sid, 40)  # another process's row, then this one's: both fetched
    _commit(a, sid, 50)
    every += [40, 41, 42, 43, 44, 50, 51, 52, 53, 54]
    assert _stored(a, sid) == every and len(fetched) == 2
    assert _stored(b, sid) == every  # its own cache: fetched what `a` wrote
    _commit(a, sid, 60)  # following every row read: held
    assert _cache(a)._read_to == max(fetched) + 1
    assert _stored(a, sid) == [*every, 60, 61, 62, 63, 64] and len(fetched) == 2


def test_a_read_after_writes_without_reads_and_folds_fetches_nothing(
    two_stores: tuple[Folding, Folding],
) -> None:
    """Rows committed while no read used the cache, with folds between, are held, and the
    folded ones let go by the writer: the first read after them (once a read of the whole
    unfolded log) fetches none, and reads every point, from chunks and log; the cache holds
    the rows the log holds, no more."""
    a, _ = two_stores
    sid = another_series(a)
    _commit(a, sid, 0)
    fetched = _fetches(a)
    assert _stored(a, sid) == [0, 1, 2, 3, 4]
    every = [0, 1, 2, 3, 4]
    for fold_turn in range(3):
        for start in range(10, 50, 10):
            _commit(a, sid, 100 * fold_turn + start)
            every += [100 * fold_turn + start + i for i in range(5)]
        assert a.fold_points() > 0  # (the writer's next commit says which rows are left)
    _commit(a, sid, 1000)
    every += [1000, 1001, 1002, 1003, 1004]
    cache = _cache(a)
    with cache._lock:
        cache._take_fed()
        held = list(cache._ids)
    assert len(held) == 1  # the folds' rows were let go: the log holds one row
    assert _stored(a, sid) == every
    assert fetched == []


def test_a_cache_no_read_used_stays_the_size_of_the_log() -> None:
    """The writer's rows are held and let go as folds take them with no read at all: the
    cache holds the rows from the log's first on, and a read then fetches none."""
    cache = LogCache()
    fetched: list[int] = []

    def read(ids: list[int]) -> Iterable[tuple[Any, ...]]:
        fetched.extend(ids)
        return _read(ids)

    first = 1
    for row_id in range(1, 200):
        if row_id % 25 == 0:
            first = row_id - 3  # a fold took every row but the last three
        cache.committed(row_id, _logged(row_id), first)
    assert cache._ids == list(range(first, 200))
    assert cache._size == POINTS * len(cache._ids)
    view = cache.view_of(first, 199, None, read)
    assert fetched == []
    for series in range(SERIES):
        assert _points(view, series) == _expected(first, 199, series)


def test_a_cache_started_by_the_writer_fetches_the_rows_below_its_first() -> None:
    """A cache that held no rows starts from its writer's row (rows from before the process
    started, or another's, lie below): a read fetches those below once, and they are put in
    place; rows another process commits later are fetched too."""
    cache = LogCache()
    fetched: list[int] = []

    def read(ids: list[int]) -> Iterable[tuple[Any, ...]]:
        fetched.extend(ids)
        return _read(ids)

    for row_id in (11, 12, 13):
        cache.committed(row_id, _logged(row_id), 5)  # rows 5-10 committed before it began
    view = cache.view_of(5, 13, None, read)
    assert fetched == [5, 6, 7, 8, 9, 10]
    for series in range(SERIES):
        assert _points(view, series) == _expected(5, 13, series)
    cache.committed(15, _logged(15), 9)  # a fold took 5-8; 14 is another process's
    fetched.clear()
    view = cache.view_of(9, 15, None, read)
    assert fetched == [14, 15]
    for series in range(SERIES):
        assert _points(view, series) == _expected(9, 15, series)
