"""The group committer runs a group optimistically in one transaction; a failing job makes it
run the group again with each job in its own savepoint, so the failure stays that job's."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable

import pytest

from sensorbase.errors import Conflict, InvalidInput
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
