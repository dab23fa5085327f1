"""SQLite's point layout (storage/sqlite/): group commits append to a log, folds move
it into compressed chunks per series, and reads merge the two. What the layout itself must
guarantee beyond the contract suite: folds that lose and replace nothing they should not,
reads that see the log and the chunks at one moment, two processes folding one file, and old
databases (a row per point) migrated."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from sensorbase.model import ResolvedBatch, TimeRange
from sensorbase.settings import Settings
from sensorbase.storage import chunks
from sensorbase.storage.sqlite import fold, folder
from sensorbase.storage.sqlite.schema import SCHEMA_VERSION
from sensorbase.storage.sqlite.store import SQLiteStore
from tests.storage.conftest import new_series
from tests.storage.test_bucket_status_migration import LATER

ALL = TimeRange(None, None)


def write(store: SQLiteStore, sid: int, times: list[int], values: list[float]) -> None:
    writer = store.writer()
    tx = writer.begin()
    n = len(times)
    tx.append(
        ResolvedBatch(
            np.full(n, sid, np.int64),
            np.array(times, np.int64),
            np.array(values, np.float64),
            None,
        )
    )
    writer.commit()


def chunk_counts(store: SQLiteStore, sid: int) -> list[int]:
    conn = store.reader().conn
    return [
        r[0]
        for r in conn.execute(
            "SELECT count FROM point_chunks WHERE series_id = ? ORDER BY start_us", (sid,)
        )
    ]


def test_folds_fill_chunks_and_a_later_write_replaces_a_folded_point(
    sqlite_store: SQLiteStore,
) -> None:
    store = sqlite_store
    sid, _ = new_series(store)
    n = chunks.CHUNK_POINTS + 500
    write(store, sid, list(range(n)), [float(i) for i in range(n)])
    assert store.fold_points() == n
    assert chunk_counts(store, sid) == [chunks.CHUNK_POINTS, 500]
    assert store.reader().conn.execute("SELECT count(*) FROM point_log").fetchone()[0] == 0

    # New points after a small last chunk fill it up; a correction inside a full chunk
    # replaces its point there; an unfolded write wins over a folded one until it is folded.
    write(store, sid, [n, n + 1, 7], [-1.0, -2.0, 70.0])
    reader = store.reader()
    assert reader.count(sid, ALL) == n + 2
    assert reader.read_range(sid, TimeRange(7, 8), 10).value.tolist() == [70.0]
    assert store.fold_points() == 3
    assert chunk_counts(store, sid) == [chunks.CHUNK_POINTS, 502]
    points = reader.read_range(sid, ALL, n + 10)
    assert points.time_us.tolist() == list(range(n + 2))
    assert points.value[7] == 70.0 and points.value[-2:].tolist() == [-1.0, -2.0]
    row = reader.aggregate(sid, ALL, ("count", "min", "max", "first", "last")).values
    assert row == {"count": n + 2, "min": -2.0, "max": float(n - 1), "first": 0.0, "last": -2.0}


def test_a_read_keeps_its_moment_while_another_thread_sees_a_fold(
    sqlite_store: SQLiteStore,
) -> None:
    """A read transaction opened before a fold still sees the folded points in its own
    snapshot of the log, even after the process's log cache let them go."""
    store = sqlite_store
    sid, _ = new_series(store)
    write(store, sid, [1, 2, 3], [1.0, 2.0, 3.0])
    old = store.reader()
    old.conn.execute("BEGIN")
    try:
        assert old.count(sid, ALL) == 3  # (the snapshot starts here)
        store.fold_points()
        write(store, sid, [4], [4.0])
        seen: list[int] = []
        fresh = threading.Thread(target=lambda: seen.append(store.reader().count(sid, ALL)))
        fresh.start()
        fresh.join(10)
        assert seen == [4]  # the fold and the new write, from a new snapshot...
        assert old.count(sid, ALL) == 3  # ...and the old snapshot: the log as it was then
        assert old.read_range(sid, ALL, 10).value.tolist() == [1.0, 2.0, 3.0]
    finally:
        old.conn.execute("COMMIT")
    assert old.count(sid, ALL) == 4


def test_a_fold_planned_before_another_fold_writes_nothing(sqlite_store: SQLiteStore) -> None:
    store = sqlite_store
    sid, _ = new_series(store)
    write(store, sid, [1, 2], [1.0, 2.0])
    conn = sqlite3.connect(store.path, isolation_level=None)
    try:
        conn.execute("BEGIN")
        plan = fold.plan_fold(conn)
        conn.execute("COMMIT")
        assert plan is not None and plan.points == 2
        write(store, sid, [2], [20.0])
        assert store.fold_points() == 2  # folds both rows meanwhile
        conn.execute("BEGIN IMMEDIATE")
        assert not fold.apply_fold(conn, plan)  # stale: nothing written
        conn.execute("COMMIT")
    finally:
        conn.close()
    reader = store.reader()
    assert reader.read_range(sid, ALL, 10).value.tolist() == [1.0, 20.0]
    assert chunk_counts(store, sid) == [2]


def test_deleting_a_source_folds_the_log_and_drops_its_points(
    sqlite_store: SQLiteStore,
) -> None:
    store = sqlite_store
    sid, source_id = new_series(store)
    write(store, sid, [1, 2], [1.0, 2.0])
    store.fold_points()
    write(store, sid, [3], [3.0])
    writer = store.writer()
    tx = writer.begin()
    tx.delete_source(source_id)
    writer.commit()
    reader = store.reader()
    assert reader.conn.execute("SELECT count(*) FROM point_chunks").fetchone()[0] == 0
    assert reader.conn.execute("SELECT count(*) FROM point_log").fetchone()[0] == 0
    assert reader.count(sid, ALL) == 0


def test_two_processes_fold_one_file(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, durability="normal")
    first = SQLiteStore(tmp_path / "sensorbase.db", settings)
    second = SQLiteStore(tmp_path / "sensorbase.db", settings)
    first.open()
    second.open()
    try:
        sid, _ = new_series(first)
        expected: dict[int, float] = {}
        for round_ in range(6):
            for store in (first, second):
                times = [round_ * 100 + i for i in range(0, 150, 3)]  # overlapping rounds
                values = [float(round_ * 1000 + t) for t in times]
                write(store, sid, times, values)
                expected.update(zip(times, values, strict=True))
            (first if round_ % 2 else second).fold_points()
        for store in (first, second):
            points = store.reader().read_range(sid, ALL, 10_000)
            assert dict(zip(points.time_us.tolist(), points.value.tolist(), strict=True)) == (
                expected
            )
    finally:
        first.close()
        second.close()


V1_POINTS = """
CREATE TABLE points (
  series_id INTEGER NOT NULL, time_us INTEGER NOT NULL, value REAL NOT NULL, extra TEXT,
  PRIMARY KEY (series_id, time_us)
) WITHOUT ROWID;
CREATE TABLE point_blocks (
  series_id INTEGER NOT NULL, block INTEGER NOT NULL,
  min REAL, max REAL, sum REAL, count INTEGER NOT NULL, PRIMARY KEY (series_id, block)
) WITHOUT ROWID;
"""


@pytest.mark.slow(4)
def test_a_database_of_one_row_per_point_is_migrated(tmp_path: Path) -> None:
    """Schema 1 kept each point in a row of `points`: opening it moves them into chunks."""
    path = tmp_path / "sensorbase.db"
    store = SQLiteStore(path, Settings(data_dir=tmp_path, durability="normal"))
    store.open()
    sid, _ = new_series(store)
    store.close()
    conn = sqlite3.connect(path, isolation_level=None)  # made into schema 1 by hand
    conn.executescript("DROP TABLE point_log; DROP TABLE point_chunks;" + V1_POINTS)
    for statement in LATER:  # what the steps after 3 add: schema 1 had none of it
        conn.execute(statement)
    n = 20_000  # (enough that the table dropped outweighs the pages later schemas add)
    conn.executemany(
        "INSERT INTO points VALUES (?, ?, ?, ?)",
        [(sid, t, t / 2, '{"n":1}' if t == 42 else None) for t in range(n)],
    )
    conn.execute("PRAGMA user_version = 1")
    conn.execute("PRAGMA auto_vacuum = NONE")  # as schema 1 made its files
    conn.execute("VACUUM")
    assert conn.execute("PRAGMA auto_vacuum").fetchone()[0] == 0
    conn.close()

    before = path.stat().st_size
    store.open()
    try:
        reader = store.reader()
        tables = {r[0] for r in reader.conn.execute("SELECT name FROM sqlite_master")}
        assert "points" not in tables and "point_blocks" not in tables
        assert reader.conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        # The dropped table's pages are given back, and the file vacuums as a new one does.
        assert reader.conn.execute("PRAGMA auto_vacuum").fetchone()[0] == 2
        assert reader.conn.execute("PRAGMA freelist_count").fetchone()[0] == 0
        store.close()
        assert path.stat().st_size < before
        store.open()
        reader = store.reader()
        points = reader.read_range(sid, ALL, n)
        assert points.time_us.tolist() == list(range(n))
        assert points.value.tolist() == [t / 2 for t in range(n)]
        assert points.extra is not None and points.extra[42] == '{"n":1}'
        assert points.extra[41] is None
    finally:
        store.close()


def test_a_clean_close_gives_back_the_pages_of_the_folded_log(tmp_path: Path) -> None:
    path = tmp_path / "sensorbase.db"
    store = SQLiteStore(path, Settings(data_dir=tmp_path, durability="normal"))
    store.open()
    sid, _ = new_series(store)
    n = 200_000
    for k in range(3):
        times = list(range(k * n, (k + 1) * n))
        write(store, sid, times, [float(t % 10) for t in times])
    store.close()
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA auto_vacuum").fetchone()[0] == 2  # incremental
        assert conn.execute("PRAGMA freelist_count").fetchone()[0] == 0
        assert conn.execute("SELECT count(*) FROM point_log").fetchone()[0] == 0
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
    finally:
        conn.close()
    # 600,000 points logged as 9.6 MB of raw columns, kept in well under a tenth of that,
    # the WAL copied in and cut to nothing.
    assert pages * 4096 < 600_000
    wal = path.with_name(path.name + "-wal")
    assert not wal.exists() or wal.stat().st_size == 0
    store.open()
    try:
        assert store.reader().count(sid, TimeRange(None, None)) == 3 * n
    finally:
        store.close()


@pytest.mark.parametrize("folded", [False, True])
def test_extras_survive_folds_and_the_log(sqlite_store: SQLiteStore, folded: bool) -> None:
    store = sqlite_store
    sid, _ = new_series(store)
    writer = store.writer()
    tx = writer.begin()
    tx.append(
        ResolvedBatch(
            np.full(3, sid, np.int64),
            np.array([1, 2, 3], np.int64),
            np.array([1.0, 2.0, 3.0]),
            ['{"lat":1}', None, '{"lat":3}'],
        )
    )
    writer.commit()
    if folded:
        store.fold_points()
    points = store.reader().read_range(sid, ALL, 10, "desc")
    assert points.extra == ['{"lat":3}', None, '{"lat":1}']


def test_a_helper_process_folds_the_log_once_due(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fold, "FOLD_POINTS", 1_000)
    monkeypatch.setattr(fold, "FOLD_ROWS", 100)
    store = SQLiteStore(tmp_path / "sensorbase.db", Settings(data_dir=tmp_path))
    store.open()
    try:
        sid, _ = new_series(store)
        for start in range(0, 1_200, 300):  # the first commit already pokes the helper
            write(store, sid, list(range(start, start + 300)), [1.0] * 300)
        reader = store.reader()
        deadline = time.monotonic() + 20
        while reader.conn.execute("SELECT count(*) FROM point_log").fetchone()[0]:
            assert time.monotonic() < deadline, "the log was not folded"
            time.sleep(0.05)
        assert sum(chunk_counts(store, sid)) == 1_200
        assert reader.count(sid, ALL) == 1_200
        helper = store._folder._helper._process  # type: ignore[union-attr]
        assert helper is not None and helper.poll() is None
    finally:
        store.close()
    assert helper.wait(10) == 0  # ends with its server process's store


def test_the_fold_helper_leaves_the_folded_log_rows_pages_unwritten(
    sqlite_store: SQLiteStore,
) -> None:
    """The helper's connection (folder.connect) deletes folded log rows without writing
    their pages again as zeros (SQLite's secure_delete, compiled in here): a fold's WAL
    frames are its chunks', not the log's bytes once more."""
    store = sqlite_store
    sid, _ = new_series(store)
    frames = {}
    for at, setting in enumerate(("ON", None)):
        times = list(range(at * 200_000, (at + 1) * 200_000))
        write(store, sid, times, [float(t % 97) for t in times])
        conn = folder.connect(store.path)
        page = conn.execute("PRAGMA page_size").fetchone()[0]
        if setting is not None:
            conn.execute(f"PRAGMA secure_delete = {setting}")
        # (the WAL emptied first; the store's checkpointer may hold it a moment)
        for _ in range(100):
            if conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0] == 0:
                break
            time.sleep(0.05)
        assert Path(f"{store.path}-wal").stat().st_size == 0
        assert folder.fold_once(conn, folder.writer_locked(store.path)) == 200_000
        frames[setting] = (Path(f"{store.path}-wal").stat().st_size - 32) // (page + 24)
        conn.close()
    log_pages = 200_000 * 24 // page
    assert frames[None] < log_pages // 4 < log_pages < frames["ON"]
    assert store.reader().count(sid, ALL) == 400_000


def test_one_fold_helper_runs_for_the_server_processes_of_a_database(tmp_path: Path) -> None:
    """Each server process's store pokes a fold helper, but one runs at a time per database
    (helper_process.py `alone`): the second store's pokes start none while the first's
    helper runs, and its own once that one has ended with its store."""
    stores = [SQLiteStore(tmp_path / "sensorbase.db", Settings(data_dir=tmp_path)) for _ in "ab"]
    for store in stores:
        store.open()
    try:
        first, second = (s._folder._helper for s in stores)  # type: ignore[union-attr]
        first.poke()
        second.poke()
        assert first.running and not second.running
        helper = first._process
        assert helper is not None
        stores[0].close()
        assert helper.wait(10) == 0
        second.poke()
        assert second.running
    finally:
        for store in stores:
            store.close()


_STOPPING = """
import sys
from pathlib import Path
from sensorbase.settings import Settings
from sensorbase.storage.sqlite.store import SQLiteStore
path = Path(sys.argv[1])
store = SQLiteStore(path, Settings(data_dir=path.parent))
store.open()
print("open", flush=True)
sys.stdin.readline()
store.close()
"""


def test_two_server_processes_stopping_together_leave_no_wal_beside_the_database(
    tmp_path: Path,
) -> None:
    """Two server processes' stores stopping at once: the last connection to close removes
    the WAL and its index (store.py closes its writer under the writer lock, so that they do
    not each close while the other is still open, and neither is the last). (The race needs
    both closes within a fraction of a millisecond, which this test does not force: bench.py
    had it in 4 of 5 runs of two workers, in none of two since.)"""
    for round_ in range(2):
        path = tmp_path / f"r{round_}" / "sensorbase.db"
        path.parent.mkdir()
        first = SQLiteStore(path, Settings(data_dir=path.parent))
        first.open()  # (the schema, before either)
        first.close()
        stopping = [
            subprocess.Popen(
                [sys.executable, "-c", _STOPPING, str(path)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
            )
            for _ in "ab"
        ]  # fmt: skip
        for process in stopping:
            assert process.stdout is not None and process.stdout.readline() == "open\n"
        for process in stopping:
            assert process.stdin is not None
            process.stdin.write("\n")
            process.stdin.flush()
        for process in stopping:
            process.communicate(timeout=30)
            assert process.returncode == 0
        assert (
            sorted(p.name for p in path.parent.iterdir() if p.name.endswith(("-wal", "-shm"))) == []
        )


def test_the_fold_helper_starts_light(tmp_path: Path) -> None:
    """The helper (started by each server process) imports neither pydantic nor the storage
    interfaces, and runs numpy's OpenBLAS on one thread (helper_process.py: its start took
    0.27 s of CPU, now ~0.10)."""
    found = subprocess.run(
        [sys.executable, "-c", "import sys, sensorbase.storage.sqlite.folder; print(*sys.modules)"],
        capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    assert "numpy" in found and "pcodec" in found
    assert not [m for m in found if m.startswith(("pydantic", "sensorbase.settings"))]
    assert "sensorbase.storage.base" not in found
    store = SQLiteStore(tmp_path / "sensorbase.db", Settings(data_dir=tmp_path))
    store.open()
    try:
        store._folder.poke()  # type: ignore[union-attr]
        helper = store._folder._helper._process  # type: ignore[union-attr]
        assert helper is not None
        deadline = time.monotonic() + 20  # (until it has exec'd: its command line is ours)
        while b"sqlite.folder" not in Path(f"/proc/{helper.pid}/cmdline").read_bytes():
            assert time.monotonic() < deadline
            time.sleep(0.01)
        environ = Path(f"/proc/{helper.pid}/environ").read_bytes().split(b"\0")
        assert b"OPENBLAS_NUM_THREADS=1" in environ
    finally:
        store.close()
