"""PostgreSQL's write log as reads see it (storage/log_view.py, postgres/log.py): a read keeps
the log and chunks of its moment while a fold lands; a row that commits after one with a
higher id (another node's, had it not waited for the log lock) is seen by the reads after its
commit and not by those before, and is merged in id order; and with a large fleet the fold
helper waits for more points a series before a fold is due."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import psycopg
import pytest

from sensorbase.model import ResolvedBatch, TimeRange
from sensorbase.storage import log_view
from sensorbase.storage.chunk_reads import read_range
from sensorbase.storage.postgres import fold, folder
from sensorbase.storage.postgres.chunks import PgChunks
from sensorbase.storage.postgres.log import log_size
from sensorbase.storage.postgres.store import PostgresStore

ALL = TimeRange(None, None)


def fleet(store: PostgresStore, n: int) -> list[int]:
    writer = store.writer()
    tx = writer.begin()
    org = tx.create_org("o", "o")
    bucket = tx.create_bucket(org.id, "b", "b", "", {})
    source = tx.create_source(org.id, bucket.id, "dev", "dev", {}, None)
    made = tx.get_or_create_series_of([(source.id, f"f{i}", None, {}) for i in range(n)])
    writer.commit()
    return sorted(made.values())


def append(store: PostgresStore, points: list[tuple[int, int, float]]) -> None:
    """One group commit (one log row) through the writer."""
    writer = store.writer()
    writer.begin().append(batch(points))
    writer.commit()


def batch(
    points: list[tuple[int, int, float]], extra: list[str | None] | None = None
) -> ResolvedBatch:
    s, t, v = zip(*points, strict=True)
    return ResolvedBatch(np.array(s, np.int64), np.array(t, np.int64), np.array(v), extra)


def insert_row(
    conn: psycopg.Connection,
    points: list[tuple[int, int, float]],
    extra: list[str | None] | None = None,
) -> int:
    """A log row inserted in `conn`'s open transaction without the log lock (as a node that
    did not wait for it would): its id is taken now, whenever it commits."""
    row = log_view.log_row([batch(points, extra)])
    found = conn.execute(
        "INSERT INTO point_log (points, series_id, time_us, value, extra) "
        "VALUES (%s, %s, %s, %s, %s) RETURNING id",
        row,
    ).fetchone()
    assert found is not None
    return int(found[0])


@contextmanager
def snapshot(url: str) -> Iterator[psycopg.Connection]:
    """A connection in a repeatable-read transaction, as reader.py's reads take one."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        conn.execute("SELECT 1 FROM point_chunks LIMIT 1")  # (the snapshot is taken here)
        yield conn
        conn.execute("ROLLBACK")


def values(store: PostgresStore, conn: psycopg.Connection, series_id: int) -> list[float]:
    """A series' points as a read in `conn`'s snapshot finds them (chunks and log)."""
    found = read_range(PgChunks(conn), store.log_cache.view(conn), series_id, ALL, 100, "asc", 0)
    return found.value.tolist()


def test_a_read_keeps_its_moment_while_a_fold_lands(postgres_store: PostgresStore) -> None:
    store = postgres_store
    a, b = fleet(store, 2)
    append(store, [(a, 1, 1.0), (b, 1, 10.0)])
    append(store, [(a, 2, 2.0), (a, 1, 1.5)])  # (a, 1) replaced
    with snapshot(store.url) as before:
        view = store.log_cache.view(before)
        assert values(store, before, a) == [1.5, 2.0]
        assert store.fold_points() == 3
        append(store, [(a, 3, 3.0), (b, 1, 11.0)])
        # A read after the fold: the chunks and the new row (the cache lets the folded go).
        assert store.reader().read_range(a, ALL, 10).value.tolist() == [1.5, 2.0, 3.0]
        assert store.reader().read_range(b, ALL, 10).value.tolist() == [11.0]
        # The earlier snapshot: no chunks yet, and the log rows it saw (read again).
        assert view.points(a, ALL).value.tolist() == [1.5, 2.0]
        assert values(store, before, a) == [1.5, 2.0]
        assert values(store, before, b) == [10.0]
    assert store.reader().read_range(b, ALL, 10).value.tolist() == [11.0]
    assert store.reader().count(a, ALL) == 3


def test_a_row_committed_after_a_higher_id_is_seen_from_its_commit_in_id_order(
    postgres_store: PostgresStore,
) -> None:
    store = postgres_store
    (s,) = fleet(store, 1)
    url = store.url
    with psycopg.connect(url) as late, psycopg.connect(url, autocommit=True) as other:
        append(store, [(s, 5, 5.0)])
        low = insert_row(late, [(s, 0, 0.5), (s, 1, 1.0)], ['{"late":1}', None])  # open
        append(store, [(s, 1, 2.0), (s, 2, 2.0)])  # a higher id, committed first
        append(store, [(s, 3, 3.0)])
        with snapshot(url) as earlier:  # sees the three others, not the open one
            assert values(store, earlier, s) == [2.0, 2.0, 3.0, 5.0]
            late.commit()
            with snapshot(url) as after:  # its row now among those held, between others
                got = read_range(PgChunks(after), store.log_cache.view(after), s, ALL, 10, "asc", 0)
                # Merged in id order: the lower id's (s, 1) is replaced by the later row's.
                assert got.value.tolist() == [0.5, 2.0, 2.0, 3.0, 5.0]
                assert got.extra == ['{"late":1}', None, None, None, None]
            # The earlier snapshot, a row it does not see now held among its own: a view of
            # its own rows.
            assert values(store, earlier, s) == [2.0, 2.0, 3.0, 5.0]
            insert_row(other, [(s, 4, 4.0)])  # (autocommit: committed at once)
        ids = [r[0] for r in other.execute("SELECT id FROM point_log ORDER BY id")]
        assert ids[1] == low and len(ids) == 5  # (the late row's id between the others)
        got = store.reader().read_range(s, ALL, 10)
        assert got.value.tolist() == [0.5, 2.0, 2.0, 3.0, 4.0, 5.0]
    assert store.fold_points() == 6
    got = store.reader().read_range(s, ALL, 10)
    assert got.value.tolist() == [0.5, 2.0, 2.0, 3.0, 4.0, 5.0]
    assert got.extra == ['{"late":1}', None, None, None, None, None]


def test_a_fold_is_due_later_with_more_series(
    postgres_store: PostgresStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = postgres_store
    monkeypatch.setattr(fold, "FOLD_POINTS", 100)
    ids = fleet(store, 10)
    with psycopg.connect(store.url, autocommit=True) as conn:
        assert fold.due_points(conn, 100) == max(ids) * log_view.FOLD_POINTS_PER_SERIES
        assert fold.due_points(conn, 100_000) == 100_000
        due = folder._Due()
        append(store, [(s, t, 1.0) for s in ids for t in range(15)])  # 150: past FOLD_POINTS
        assert max(ids) * log_view.FOLD_POINTS_PER_SERIES > 150
        assert not due.fold_if_due(conn)  # ...but not a fleet's share a series
        each = log_view.FOLD_POINTS_PER_SERIES + 10
        append(store, [(s, t, 1.0) for s in ids for t in range(15, each)])
        assert due.fold_if_due(conn)
        assert log_size(conn) == (0, 0)
    reader = store.reader()
    assert [reader.count(s, ALL) for s in ids] == [each] * 10
