"""Several processes on one SQLite database (uvicorn --workers N) take turns to commit through
a file lock: a second writer waits for the first one's commit, then goes on, never 'busy'."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from sensorbase.settings import Settings
from sensorbase.storage import open_store


def test_a_second_writer_waits_for_the_first_commit(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, durability="normal")
    first, second = open_store(settings), open_store(settings)
    first.open()
    second.open()
    try:
        a, b = first.writer(), second.writer()
        tx = a.begin()
        tx.set_setting("who", "first")
        done: list[float] = []

        def other() -> None:
            tx_b = b.begin()  # blocks on the lock until `a` commits
            tx_b.set_setting("who", "second")
            b.commit()
            done.append(time.monotonic())

        thread = threading.Thread(target=other)
        thread.start()
        time.sleep(0.3)
        assert done == []  # still waiting: `a` holds the lock
        committed = time.monotonic()
        a.commit()
        thread.join(5)
        assert done and done[0] >= committed
        assert first.reader().get_setting("who") == "second"

        # A rolled-back transaction releases the lock too.
        a.begin()
        a.rollback()
        b.begin()
        b.rollback()
    finally:
        first.close()
        second.close()
