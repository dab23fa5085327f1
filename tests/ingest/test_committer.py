"""The group committer runs a group optimistically in one transaction; a failing job makes it
run the group again with each job in its own savepoint, so the failure stays that job's."""

from __future__ import annotations

import asyncio
import errno
import os
import threading
from collections.abc import Callable

import pytest

from sensorbase.errors import Conflict, InvalidInput, Unavailable
from sensorbase.ingest.committer import Committer
from sensorbase.settings import Settings
from sensorbase.storage import open_store
from sensorbase.storage.base import WriteTx


async def test_a_failing_job_is_undone_alone(settings: Settings) -> None:
    store = open_store(settings)
    store.open()
    committer = Committer(store, queue_size=100, max_points=1_000)
    committer.start()
    hold, release = threading.Event(), threading.Event()

    def blocking(tx: WriteTx) -> None:
        hold.set()
        release.wait(10)

    def writes(name: str, fail: type[Exception] | None = None) -> Callable[[WriteTx], str]:
        def job(tx: WriteTx) -> str:
            tx.set_setting(name, "written")
            if fail is not None:
                raise fail(f"{name} fails after writing")
            return name

        return job

    try:
        first = asyncio.ensure_future(committer.run(blocking))
        await asyncio.to_thread(hold.wait, 10)
        # These four queue up behind the blocked commit and are committed as one group.
        jobs = [
            committer.run(writes("a")),
            committer.run(writes("b", InvalidInput)),
            committer.run(writes("c")),
            committer.run(writes("d", Conflict)),
        ]
        group = asyncio.gather(*jobs, return_exceptions=True)
        await asyncio.sleep(0.05)
        release.set()
        await first
        a, b, c, d = await group
        assert (a, c) == ("a", "c")
        assert isinstance(b, InvalidInput) and isinstance(d, Conflict)
        assert committer.reruns == 1
        reader = store.reader()
        assert [reader.get_setting(n) for n in "abcd"] == ["written", None, "written", None]
        # A group without failures commits in one pass.
        assert await committer.run(writes("e")) == "e"
        assert committer.reruns == 1
    finally:
        release.set()
        committer.stop()
        store.close()


@pytest.mark.parametrize("failure", [ValueError, KeyError])
async def test_a_bug_in_one_job_does_not_take_the_group_down(
    settings: Settings, failure: type[Exception]
) -> None:
    store = open_store(settings)
    store.open()
    committer = Committer(store, queue_size=100, max_points=1_000)
    committer.start()

    def buggy(tx: WriteTx) -> None:
        tx.set_setting("buggy", "written")
        raise failure("a bug")

    try:
        results = await asyncio.gather(
            committer.run(lambda tx: tx.set_setting("good", "yes")),
            committer.run(buggy),
            return_exceptions=True,
        )
        assert results[0] is None and isinstance(results[1], failure)
        reader = store.reader()
        assert reader.get_setting("good") == "yes"
        assert reader.get_setting("buggy") is None
    finally:
        committer.stop()
        store.close()


@pytest.fixture
def durable(settings: Settings) -> Settings:
    return settings.model_copy(update={"durability": "full"})


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_the_answer_waits_for_the_wal_to_be_synced(
    durable: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite commits without syncing; the committer's second thread fdatasyncs the WAL and
    only then answers (while the committer goes on with the next group)."""
    synced: list[str] = []
    entered, release = threading.Event(), threading.Event()
    real_fdatasync = os.fdatasync

    def held_fdatasync(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        entered.set()
        release.wait(10)
        real_fdatasync(fd)

    store = open_store(durable)
    store.open()
    committer = Committer(store, queue_size=100, max_points=1_000)
    committer.start()
    monkeypatch.setattr(os, "fdatasync", held_fdatasync)
    try:
        first = committer.run(lambda tx: tx.set_setting("first", "1"))
        await asyncio.to_thread(entered.wait, 10)
        # Committed (a reader sees it) but not yet durable: no answer yet.
        assert store.reader().get_setting("first") == "1"
        # The committer is free: the next group commits while the sync is held.
        second = committer.run(lambda tx: tx.set_setting("second", "2"))
        for _ in range(200):
            if store.reader().get_setting("second") == "2":
                break
            await asyncio.sleep(0.01)
        assert store.reader().get_setting("second") == "2"
        await asyncio.sleep(0.05)
        assert not first.done() and not second.done()
        release.set()
        await asyncio.gather(first, second)
        assert all(path == str(durable.data_dir / "sensorbase.db-wal") for path in synced)
        # The second commit waited for the first sync and was served by one of its own.
        assert len(synced) == 2
    finally:
        release.set()
        committer.stop()
        store.close()


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_a_failed_sync_is_never_acknowledged(
    durable: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    def failing_fdatasync(fd: int) -> None:
        raise OSError(errno.EIO, "I/O error")

    store = open_store(durable)
    store.open()
    committer = Committer(store, queue_size=100, max_points=1_000)
    committer.start()
    monkeypatch.setattr(os, "fdatasync", failing_fdatasync)
    try:
        with pytest.raises(Unavailable, match="durable"):
            await committer.run(lambda tx: tx.set_setting("lost", "1"))
        monkeypatch.undo()
        await committer.run(lambda tx: tx.set_setting("kept", "1"))
        assert store.reader().get_setting("kept") == "1"
    finally:
        committer.stop()
        store.close()
