"""With durability=full, a SQLite commit is reported done only once its WAL frames are synced:
the writer commits at synchronous=NORMAL, lets go of the writer lock, then fdatasyncs the WAL
itself (see storage/sqlite.py, _WalSync). A failed sync is a failed write."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import pytest

from sensorbase.errors import Unavailable
from sensorbase.ingest.committer import Committer
from sensorbase.settings import Settings
from sensorbase.storage.sqlite import SQLiteStore


def _store(tmp_path: Path, durability: Literal["full", "normal"]) -> SQLiteStore:
    store = SQLiteStore(
        tmp_path / "sensorbase.db", Settings(data_dir=tmp_path, durability=durability)
    )
    store.open()
    return store


@pytest.fixture
def synced(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The files os.fdatasync is called on, in order."""
    calls: list[str] = []
    real = os.fdatasync

    def recording(fd: int) -> None:
        calls.append(os.readlink(f"/proc/self/fd/{fd}"))
        real(fd)

    monkeypatch.setattr(os, "fdatasync", recording)
    yield calls


def test_a_commit_returns_after_its_wal_is_synced(tmp_path: Path, synced: list[str]) -> None:
    store = _store(tmp_path, "full")
    try:
        writer = store.writer()
        assert writer.conn.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
        tx = writer.begin()
        tx.set_setting("a", "1")
        writer.commit()
        assert synced == [str(tmp_path / "sensorbase.db-wal")]
        # The lock was let go before the sync: another writer could take it meanwhile.
        assert not writer._locked
    finally:
        store.close()


def test_durability_normal_leaves_the_sync_to_checkpoints(
    tmp_path: Path, synced: list[str]
) -> None:
    store = _store(tmp_path, "normal")
    try:
        writer = store.writer()
        tx = writer.begin()
        tx.set_setting("a", "1")
        writer.commit()
        assert synced == []
    finally:
        store.close()


async def test_a_failed_sync_fails_the_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = _store(tmp_path, "full")
    committer = Committer(store, queue_size=10, max_points=1_000)
    committer.start()

    def failing(fd: int) -> None:
        raise OSError(5, "Input/output error")

    try:
        monkeypatch.setattr(os, "fdatasync", failing)
        with pytest.raises(Unavailable, match="durable"):
            await committer.run(lambda tx: tx.set_setting("a", "1"))
        monkeypatch.undo()
        # The next write goes on (its sync also covers the frames of the failed one).
        await asyncio.wait_for(committer.run(lambda tx: tx.set_setting("b", "1")), 10)
        assert store.reader().get_setting("b") == "1"
    finally:
        committer.stop()
        store.close()
