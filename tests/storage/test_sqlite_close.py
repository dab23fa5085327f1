"""Closing the SQLite store while another thread reads: the read finishes (or fails) on its
own, the process does not crash, and the files are left as a clean stop leaves them."""

from __future__ import annotations

import threading
from pathlib import Path

from sensorbase.settings import Settings
from sensorbase.storage.sqlite.store import SQLiteStore

LONG_READ = (
    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3000000) "
    "SELECT count(*) FROM n"
)


def test_a_read_in_flight_outlives_the_close(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "sb.db", Settings(data_dir=tmp_path))
    store.open()
    started, outcome = threading.Event(), []

    def read() -> None:
        reader = store.reader()
        started.set()
        try:
            outcome.append(reader.conn.execute(LONG_READ).fetchone()[0])
        except Exception as exc:  # (a clean error is as good as an answer here)
            outcome.append(exc)

    thread = threading.Thread(target=read)
    thread.start()
    started.wait()
    store.close()  # closed it under the read before, and the process died of it
    thread.join()
    assert outcome == [3_000_000]
    leftovers = sorted(p.name for p in tmp_path.iterdir() if "-wal" in p.name)
    assert leftovers == []  # (the reader, closing last, took the WAL with it)
