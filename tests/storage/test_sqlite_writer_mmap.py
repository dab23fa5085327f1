"""The SQLite writer reads the database through a memory map (SENSORBASE_SQLITE_MMAP_BYTES),
and two writers on one file (two workers) still see each other's commits and checkpoints."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sensorbase.model import ResolvedBatch, TimeRange
from sensorbase.settings import Settings
from sensorbase.storage.sqlite.store import SQLiteStore
from tests.storage.conftest import new_series

ALL = TimeRange(None, None)


@pytest.mark.parametrize("mmap_bytes", [0, 1 << 20, 1 << 30])
def test_the_writer_maps_what_the_setting_says(tmp_path: Path, mmap_bytes: int) -> None:
    store = SQLiteStore(
        tmp_path / "sb.db", Settings(data_dir=tmp_path, sqlite_mmap_bytes=mmap_bytes)
    )
    store.open()
    try:
        conn = store.writer().conn
        assert conn.execute("PRAGMA mmap_size").fetchone()[0] == mmap_bytes
    finally:
        store.close()


def test_mapped_writers_on_one_file_see_each_others_commits(tmp_path: Path) -> None:
    # A small map: the database outgrows it, so pages past it are read the usual way too.
    settings = Settings(data_dir=tmp_path, sqlite_mmap_bytes=64 * 1024)
    first, second = (SQLiteStore(tmp_path / "sb.db", settings) for _ in range(2))
    first.open()
    second.open()
    try:
        sid, _ = new_series(first)
        expected: dict[int, float] = {}
        for round_ in range(60):
            store = (first, second)[round_ % 2]
            writer = store.writer()
            tx = writer.begin()
            # Each round rewrites half of the last round's times and adds new ones: the writer
            # must read pages the other one changed since its own last commit.
            times = np.arange(round_ * 200, round_ * 200 + 400, dtype=np.int64)
            values = times.astype(np.float64) + round_ / 100
            tx.append(ResolvedBatch(np.full(len(times), sid, np.int64), times, values, None))
            writer.commit()
            expected.update(zip(times.tolist(), values.tolist(), strict=True))
            if round_ % 10 == 9:  # fold the WAL into the file under the other's map
                writer.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        for store in (first, second):
            cols = store.reader().read_range(sid, ALL, 100_000)
            assert dict(zip(cols.time_us.tolist(), cols.value.tolist(), strict=True)) == expected
    finally:
        first.close()
        second.close()
