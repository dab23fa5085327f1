"""The group committer runs a group optimistically in one transaction; a failing job makes it
run the group again with each job in its own savepoint, so the failure stays that job's.
On SQLite the event loop commits the groups itself (inline); on PostgreSQL a thread does."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

from sensorbase.errors import Conflict, Contended, InvalidInput, Unavailable
from sensorbase.settings import Settings
from sensorbase.storage import open_store
from sensorbase.storage.base import Store, WriteTx
from sensorbase.storage.write_queue import CONTENDED_RERUNS, Committer


@pytest.fixture
async def store(settings: Settings) -> AsyncIterator[Store]:
    store = open_store(settings)
    store.open()
    yield store
    store.close()


@pytest.fixture
async def committer(store: Store) -> AsyncIterator[Committer]:
    committer = Committer(store, queue_size=100, max_points=1_000)
    committer.start()
    yield committer
    committer.stop()


@pytest.fixture
def inline(tmp_path: Any) -> Iterator[tuple[Store, Committer]]:
    """SQLite at durability=full (its committer inline), started; the committer stopped
    after, unless the test has."""
    store = open_store(Settings(data_dir=tmp_path, durability="full"))
    store.open()
    committer = Committer(store, queue_size=100, max_points=1_000)
    committer.start()
    yield store, committer
    committer.stop()
    store.close()


async def one_group(committer: Committer, fns: list[Callable[[WriteTx], Any]]) -> list[Any]:
    """Run `fns` as one group commit; their results or errors."""
    if committer.inline:  # jobs submitted in one loop turn are committed together
        return await asyncio.gather(*(committer.run(fn) for fn in fns), return_exceptions=True)
    # Threaded: the jobs queue up behind a job that holds the committer's thread.
    hold, release = threading.Event(), threading.Event()

    def blocking(tx: WriteTx) -> None:
        hold.set()
        release.wait(10)

    try:
        first = asyncio.ensure_future(committer.run(blocking))
        await asyncio.to_thread(hold.wait, 10)
        group = asyncio.gather(*(committer.run(fn) for fn in fns), return_exceptions=True)
        await asyncio.sleep(0.05)
    finally:
        release.set()
    await first
    return await group


async def turns(n: int) -> int:
    """Let the event loop turn `n` times, 10 ms apart; how many times it did (all of them,
    unless something held the loop)."""
    ticks = 0
    for _ in range(n):
        await asyncio.sleep(0.01)
        ticks += 1
    return ticks


def writes(name: str, fail: type[Exception] | None = None) -> Callable[[WriteTx], str]:
    def job(tx: WriteTx) -> str:
        tx.set_setting(name, "written")
        if fail is not None:
            raise fail(f"{name} fails after writing")
        return name

    return job


async def test_a_failing_job_is_undone_alone(store: Store, committer: Committer) -> None:
    commits = committer.commits
    a, b, c, d = await one_group(
        committer, [writes("a"), writes("b", InvalidInput), writes("c"), writes("d", Conflict)]
    )
    assert (a, c) == ("a", "c")
    assert isinstance(b, InvalidInput) and isinstance(d, Conflict)
    assert committer.reruns == 1
    assert committer.commits - commits == (1 if committer.inline else 2)  # (+ the holding job)
    reader = store.reader()
    assert [reader.get_setting(n) for n in "abcd"] == ["written", None, "written", None]
    # A group without failures commits in one pass.
    assert await committer.run(writes("e")) == "e"
    assert committer.reruns == 1


@pytest.mark.parametrize("failure", [ValueError, KeyError])
async def test_a_bug_in_one_job_does_not_take_the_group_down(
    store: Store, committer: Committer, failure: type[Exception]
) -> None:
    def buggy(tx: WriteTx) -> None:
        tx.set_setting("buggy", "written")
        raise failure("a bug")

    results = await one_group(committer, [lambda tx: tx.set_setting("good", "yes"), buggy])
    assert results[0] is None and isinstance(results[1], failure)
    reader = store.reader()
    assert reader.get_setting("good") == "yes"
    assert reader.get_setting("buggy") is None


async def test_a_group_that_lost_to_another_transaction_runs_again(
    store: Store, committer: Committer
) -> None:
    calls: list[str] = []

    def loses_once(tx: WriteTx) -> str:
        tx.set_setting("contended", str(len(calls)))
        calls.append("run")
        if len(calls) == 1:
            raise Contended("deadlock", retry_after_s=1)
        return "won"

    results = await one_group(committer, [writes("beside"), loses_once])
    assert results == ["beside", "won"]
    assert (len(calls), committer.contended, committer.reruns) == (2, 1, 0)
    reader = store.reader()
    assert (reader.get_setting("beside"), reader.get_setting("contended")) == ("written", "1")


async def test_a_group_that_keeps_losing_is_answered_503(committer: Committer) -> None:
    def always_loses(tx: WriteTx) -> None:
        raise Contended("deadlock", retry_after_s=1)

    with pytest.raises(Contended):
        await committer.run(always_loses)
    assert committer.contended == CONTENDED_RERUNS


async def test_a_real_deadlock_on_postgresql_runs_the_group_again(
    backend: str, settings: Settings, store: Store, committer: Committer
) -> None:
    """Another session and the group lock two rows in opposite orders: PostgreSQL aborts the
    group's transaction (its deadlock_timeout is the shorter), which runs again once the other
    session commits, and the write is acknowledged and stored."""
    if backend != "postgres":
        pytest.skip("SQLite has one writer: no deadlock between writers")
    import psycopg

    other = psycopg.connect(str(settings.database_url))
    other.execute("SET deadlock_timeout = '30s'")
    other.execute(
        "INSERT INTO settings (name, value) VALUES ('y', 'other') "
        "ON CONFLICT (name) DO UPDATE SET value = excluded.value"
    )
    x_held = threading.Event()

    def cross() -> None:
        x_held.wait(10)
        other.execute(  # waits for the group's x: the deadlock, broken on the group's side
            "INSERT INTO settings (name, value) VALUES ('x', 'other') "
            "ON CONFLICT (name) DO UPDATE SET value = excluded.value"
        )
        other.commit()

    def job(tx: WriteTx) -> str:
        tx.set_setting("x", "group")
        x_held.set()
        tx.set_setting("y", "group")
        return "stored"

    crossing = threading.Thread(target=cross)
    crossing.start()
    try:
        assert await committer.run(job) == "stored"
    finally:
        crossing.join(30)
        other.close()
    # At least once: the rerun may lock x before the other session's waiting INSERT is granted
    # it (PostgreSQL does not queue a row's lockers strictly), deadlocking once more.
    assert 1 <= committer.contended <= CONTENDED_RERUNS
    reader = store.reader()
    assert (reader.get_setting("x"), reader.get_setting("y")) == ("group", "group")


async def test_a_full_queue_refuses_at_once(committer: Committer) -> None:
    committer.queue_size = 2
    if not committer.inline:
        pytest.skip("the threaded queue's bound is tested in tests/api/test_app.py")
    first, second = committer.run(writes("a")), committer.run(writes("b"))
    with pytest.raises(Unavailable, match="too many writes"):
        committer.run(writes("c"))
    assert await asyncio.gather(first, second) == ["a", "b"]


async def test_writes_arriving_during_a_sync_form_the_next_group(
    inline: tuple[Store, Committer],
) -> None:
    """Inline: one group at a time is committed and awaiting its sync; the writes that come
    meanwhile are committed together once it is done."""
    _, committer = inline
    first = committer.run(writes("a"))
    await asyncio.sleep(0)  # committed; its sync is asked of the helper process
    assert committer._syncing is not None
    later = [committer.run(writes(name)) for name in "bcd"]
    await asyncio.sleep(0)
    assert not any(w.done() for w in later) and committer.commits == 0
    assert await asyncio.gather(first, *later) == list("abcd")
    assert (committer.commits, committer.jobs_done) == (2, 4)


async def test_submit_from_another_thread_while_the_loop_commits(
    store: Store, committer: Committer
) -> None:
    """`submit` (start-up, tools) may come from any thread; it takes turns with the loop's
    groups on the one write connection."""
    names = [f"t{i}" for i in range(50)]
    threaded = asyncio.to_thread(lambda: [committer.run_sync(writes(n)) for n in names])
    looped = asyncio.gather(*(committer.run(writes(f"l{i}")) for i in range(50)))
    assert await threaded == names
    assert len(await looped) == 50
    reader = store.reader()
    assert all(reader.get_setting(n) == "written" for n in names)


async def test_stop_commits_and_answers_what_waits(inline: tuple[Store, Committer]) -> None:
    store, committer = inline
    first = committer.run(writes("a"))
    await asyncio.sleep(0)  # awaiting its sync
    second = committer.run(writes("b"))  # waiting for the next group
    committer.stop()
    assert (first.result(), second.result()) == ("a", "b")
    assert store.reader().get_setting("b") == "written"


async def test_the_loop_serves_on_while_another_process_holds_the_writer_lock(
    tmp_path: Any,
) -> None:
    """Inline (SQLite): while another process holds the writer lock (a fold's commit, another
    worker's group), the group waits for it on a thread, not on the event loop, which goes
    on answering (reads) meanwhile; the writes that came meanwhile commit together after."""
    settings = Settings(data_dir=tmp_path, durability="full")
    store, other = open_store(settings), open_store(settings)
    store.open()
    other.open()
    committer = Committer(store, queue_size=100, max_points=1_000)
    committer.start()
    holder = other.writer()
    holder.begin()  # the other process's transaction, holding the lock
    try:
        first = committer.run(writes("a"))
        ticks = await turns(20)  # 0.2 s during which the loop must keep turning
        later = committer.run(writes("b"))
        await asyncio.sleep(0.05)
        assert ticks == 20 and not first.done() and not later.done()
        assert committer._locking and committer.commits == 0
        holder.commit()
        assert await asyncio.gather(first, later) == ["a", "b"]
        assert committer.commits == 1 and not committer._locking  # one group
        assert other.reader().get_setting("b") == "written"
        holder.begin()  # held again: the next group waits on a thread again
        waiting = committer.run(writes("c"))
        await asyncio.sleep(0.05)
        assert committer._locking
        holder.commit()
        assert await waiting == "c"
    finally:
        committer.stop()
        store.close()
        other.close()


def heavy_write(name: str, running: threading.Event, release: threading.Event) -> Any:
    """A job that takes long (as creating a fleet's series does), and says on which thread."""

    def job(tx: WriteTx) -> tuple[str, int]:
        tx.set_setting(name, "written")
        running.set()
        release.wait(10)
        return name, threading.get_ident()

    return job


async def test_a_heavy_group_runs_off_the_loop_which_answers_meanwhile(
    inline: tuple[Store, Committer],
) -> None:
    """Inline (SQLite): a group with a heavy job runs on a thread; the loop keeps turning,
    the writes that come meanwhile wait for it as for a sync, then commit as the next group."""
    store, committer = inline
    running, release = threading.Event(), threading.Event()
    try:
        heavy = committer.run(heavy_write("fleet", running, release), heavy=True)
        assert await asyncio.to_thread(running.wait, 10)
        ticks = await turns(10)  # 0.1 s during which the loop must keep turning
        later = committer.run(writes("after"))
        await asyncio.sleep(0.02)
        assert ticks == 10 and not heavy.done() and not later.done()
        release.set()
        (name, thread), after = await asyncio.gather(heavy, later)
        assert (name, after) == ("fleet", "after")
        assert thread != threading.get_ident()
        assert (committer.commits, committer.jobs_done) == (2, 2)
        assert store.reader().get_setting("fleet") == "written"
    finally:
        release.set()


async def test_stop_waits_for_a_heavy_group_and_answers_it(
    inline: tuple[Store, Committer],
) -> None:
    store, committer = inline
    running, release = threading.Event(), threading.Event()
    try:
        heavy = committer.run(heavy_write("fleet", running, release), heavy=True)
        assert await asyncio.to_thread(running.wait, 10)
        waiting = committer.run(writes("next"))
        threading.Timer(0.1, release.set).start()
        committer.stop()  # on the loop, as the server's shutdown calls it
        assert heavy.result()[0] == "fleet" and waiting.result() == "next"
        reader = store.reader()
        assert reader.get_setting("fleet") == reader.get_setting("next") == "written"
    finally:
        release.set()
