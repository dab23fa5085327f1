"""Several processes (the workers of `serve --workers N`) opening one new database at the same
moment: all of them open it, whichever turns it to WAL first."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from sensorbase.model import TimeRange
from sensorbase.settings import Settings
from sensorbase.storage.sqlite import store as store_module
from sensorbase.storage.sqlite.errors import retry_locked
from sensorbase.storage.sqlite.schema import SCHEMA_VERSION
from sensorbase.storage.sqlite.store import SQLiteStore
from tests.storage.conftest import new_series
from tests.storage.test_sqlite_points import write

ROUNDS = 40
OPENERS = 4


def test_stores_opening_a_new_database_together_all_open_it(tmp_path: Path) -> None:
    failures: list[str] = []
    for round_ in range(ROUNDS):
        path = tmp_path / f"round{round_}" / "sensorbase.db"
        path.parent.mkdir()
        sqlite3.connect(path).close()  # a new, empty file: the workers' first start
        stores = [SQLiteStore(path, Settings(data_dir=path.parent)) for _ in range(OPENERS)]
        together = threading.Barrier(OPENERS)

        threads = [
            threading.Thread(target=_open, args=(store, together, failures, round_))
            for store in stores
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for store in stores:
            store.close()
        with sqlite3.connect(path) as conn:
            assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
            assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert failures == []


def _open(
    store: SQLiteStore, together: threading.Barrier, failures: list[str], round_: int
) -> None:
    together.wait()
    try:
        store.open()
    except Exception as exc:  # reported by the test, with the round
        failures.append(f"round {round_}: {exc!r}")


def test_retry_locked_gives_up_after_its_time_and_passes_other_errors_on() -> None:
    attempts = 0

    def always_locked() -> None:
        nonlocal attempts
        attempts += 1
        raise sqlite3.OperationalError("database is locked")

    with pytest.raises(sqlite3.OperationalError, match="locked"):
        retry_locked(always_locked, 0.05)
    assert attempts > 1

    def broken() -> None:
        raise sqlite3.OperationalError("no such table: nowhere")

    with pytest.raises(sqlite3.OperationalError, match="no such table"):
        retry_locked(broken, 10.0)  # at once, not after ten seconds


def test_a_new_file_takes_small_pages_and_a_file_of_larger_pages_keeps_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """store.PAGE_SIZE is a new file's; a file made before (pages of 4 KiB) keeps its pages,
    and its points, written and folded, read back."""
    sizes = {}
    for name, page in (("new", store_module.PAGE_SIZE), ("older", 4096)):
        monkeypatch.setattr(store_module, "PAGE_SIZE", page)
        path = tmp_path / name / "sensorbase.db"
        store = SQLiteStore(path, Settings(data_dir=path.parent))
        store.open()
        sid, _ = new_series(store)
        write(store, sid, list(range(0, 50_000_000, 1000)), [t % 7 / 10 for t in range(50_000)])
        store.fold_points()
        store.close()
        monkeypatch.undo()
        store = SQLiteStore(path, Settings(data_dir=path.parent))
        store.open()
        try:
            assert store.reader().count(sid, TimeRange(None, None)) == 50_000
        finally:
            store.close()
        with sqlite3.connect(path) as conn:
            sizes[name] = conn.execute("PRAGMA page_size").fetchone()[0]
    assert sizes == {"new": 1024, "older": 4096}
