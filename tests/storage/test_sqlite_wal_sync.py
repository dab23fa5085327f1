"""With durability=full, a SQLite commit is reported done only once its WAL frames are synced.
The writer commits at synchronous=NORMAL and lets go of the writer lock; then either it
fdatasyncs the WAL itself (`commit(durable=True)`: `submit`, start-up) or, for the event
loop's group commits, a helper process does (storage/sqlite/wal_sync.py) and the group is answered
when the helper says so. A failed sync is a failed write."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import pytest

from sensorbase.errors import Unavailable
from sensorbase.settings import Settings
from sensorbase.storage.sqlite.store import SQLiteStore
from sensorbase.storage.sqlite.wal_sync import WalSyncer
from sensorbase.storage.write_queue import Committer


def _store(tmp_path: Path, durability: Literal["full", "normal"]) -> SQLiteStore:
    store = SQLiteStore(
        tmp_path / "sensorbase.db", Settings(data_dir=tmp_path, durability=durability)
    )
    store.open()
    return store


@pytest.fixture
def synced(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The files os.fdatasync is called on in this process, in order."""
    calls: list[str] = []
    real = os.fdatasync

    def recording(fd: int) -> None:
        calls.append(os.readlink(f"/proc/self/fd/{fd}"))
        real(fd)

    monkeypatch.setattr(os, "fdatasync", recording)
    yield calls


def test_a_durable_commit_returns_after_its_wal_is_synced(
    tmp_path: Path, synced: list[str]
) -> None:
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


async def test_loop_commits_are_answered_after_the_helper_syncs(
    tmp_path: Path, synced: list[str]
) -> None:
    store = _store(tmp_path, "full")
    committer = Committer(store, queue_size=10, max_points=1_000)
    committer.start()
    try:
        assert committer.inline
        writes = [committer.run(lambda tx, n=n: tx.set_setting(f"k{n}", "1")) for n in range(5)]
        await asyncio.sleep(0)  # the loop commits the five as one group...
        assert committer._syncing is not None and not any(w.done() for w in writes)
        await asyncio.wait_for(asyncio.gather(*writes), 10)  # ...answered after the sync
        assert (committer.commits, committer.jobs_done) == (1, 5)
        assert synced == []  # the helper process synced, not this one
        helper = store._syncer._process  # type: ignore[union-attr]
        assert helper is not None and helper.poll() is None
    finally:
        committer.stop()
        store.close()
    assert helper.wait(5) == 0  # closing the store ends the helper


async def test_a_dead_helper_fails_its_writes_and_is_started_again(tmp_path: Path) -> None:
    store = _store(tmp_path, "full")
    committer = Committer(store, queue_size=10, max_points=1_000)
    committer.start()
    try:
        await asyncio.wait_for(committer.run(lambda tx: tx.set_setting("a", "1")), 10)
        helper = store._syncer._process  # type: ignore[union-attr]
        assert helper is not None
        os.kill(helper.pid, signal.SIGSTOP)  # it cannot answer the next request...
        write = committer.run(lambda tx: tx.set_setting("b", "1"))
        await asyncio.sleep(0.05)
        os.kill(helper.pid, signal.SIGKILL)  # ...and dies before it does
        with pytest.raises(Unavailable, match="durable"):
            await asyncio.wait_for(write, 10)
        # The next write starts a new helper and goes on (its sync also covers "b").
        await asyncio.wait_for(committer.run(lambda tx: tx.set_setting("c", "1")), 10)
        assert store._syncer._process is not helper  # type: ignore[union-attr]
        assert store.reader().get_setting("c") == "1"
    finally:
        committer.stop()
        store.close()


async def test_a_failed_sync_is_reported_with_its_error() -> None:
    syncer = WalSyncer("/dev/null")  # fdatasync of a character device: EINVAL
    outcome: asyncio.Future[OSError | None] = asyncio.get_running_loop().create_future()
    try:
        syncer.request(outcome.set_result)
        error = await asyncio.wait_for(outcome, 10)
        assert isinstance(error, OSError) and error.errno == 22
    finally:
        syncer.close()


async def test_a_failed_sync_fails_the_write_and_the_next_goes_on(tmp_path: Path) -> None:
    store = _store(tmp_path, "full")
    committer = Committer(store, queue_size=10, max_points=1_000)
    committer.start()
    try:
        await asyncio.wait_for(committer.run(lambda tx: tx.set_setting("a", "1")), 10)
        syncer = store._syncer
        assert syncer is not None
        syncer._stop()
        syncer.wal_path, real = "/dev/null", syncer.wal_path  # the next sync fails
        with pytest.raises(Unavailable, match="durable"):
            await asyncio.wait_for(committer.run(lambda tx: tx.set_setting("b", "1")), 10)
        syncer._stop()
        syncer.wal_path = real
        await asyncio.wait_for(committer.run(lambda tx: tx.set_setting("c", "1")), 10)
        assert store.reader().get_setting("c") == "1"
    finally:
        committer.stop()
        store.close()
