"""Several processes (the workers of `serve --workers N`) opening one new database at the same
moment: all of them open it, whichever turns it to WAL first."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from sensorbase.settings import Settings
from sensorbase.storage.sqlite.errors import retry_locked
from sensorbase.storage.sqlite.schema import SCHEMA_VERSION
from sensorbase.storage.sqlite.store import SQLiteStore

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
