"""What only the PostgreSQL backend has: its own migrations, partitions created on demand, several
stores (nodes) on one database, and recovery from killed connections without a false ack."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import psycopg
import pytest

from sensorbase.errors import SensorbaseError, Unavailable
from sensorbase.model import ResolvedBatch, TimeRange
from sensorbase.settings import Settings
from sensorbase.storage.postgres import schema as pg_schema
from sensorbase.storage.postgres.log import PgLogCache
from sensorbase.storage.postgres.pool import Pool
from sensorbase.storage.postgres.reader import PgReader
from sensorbase.storage.postgres.store import PostgresStore
from tests.pg import temporary_database
from tests.storage.test_contract import T0, WEEK_US, batch, write


@pytest.fixture
def url() -> Iterator[str]:
    with temporary_database(migrated=False) as found:
        yield found


def open_store(url: str) -> PostgresStore:
    store = PostgresStore(url, Settings(data_dir=Path("/nonexistent"), database_url=url))
    store.open()
    return store


@pytest.fixture
def store(url: str) -> Iterator[PostgresStore]:
    found = open_store(url)
    yield found
    found.close()


def sql(url: str, query: str) -> list[tuple[object, ...]]:
    with psycopg.connect(url, autocommit=True) as conn:
        cur = conn.execute(query)
        return cur.fetchall() if cur.description else []


def terminate(url: str, application: str) -> int:
    """Kill this database's backends of one application; how many were killed."""
    found = sql(
        url,
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = "
        f"current_database() AND application_name = '{application}' AND pid <> pg_backend_pid()",
    )
    return len(found)


def wait_until_blocked(url: str) -> None:
    """Until a writer of this database waits on a lock (another transaction's row)."""
    deadline = time.monotonic() + 10
    while not sql(
        url,
        "SELECT 1 FROM pg_stat_activity WHERE datname = current_database() "
        "AND application_name = 'sensorbase-writer' AND wait_event_type = 'Lock'",
    ):
        assert time.monotonic() < deadline, "the second writer never waited on the first"
        time.sleep(0.01)


def series(store: PostgresStore, source: str = "s") -> int:
    def make(tx: object) -> int:
        org = tx.get_org("o") or tx.create_org("o", "o")  # type: ignore[attr-defined]
        bucket = tx.get_bucket(org.id, "b") or tx.create_bucket(org.id, "b", "", "", {})  # type: ignore[attr-defined]
        found = tx.get_or_create_source(org.id, bucket.id, source)  # type: ignore[attr-defined]
        return int(tx.get_or_create_series(found.id, ["f"])["f"])  # type: ignore[attr-defined]

    return write(store, make)  # type: ignore[arg-type]


def test_the_schema_is_created_versioned_and_shared_by_nodes(url: str) -> None:
    stores = []
    errors: list[BaseException] = []

    def start() -> None:
        try:
            stores.append(open_store(url))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(3)]  # nodes starting together
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and len(stores) == 3
    assert sql(url, "SELECT max(version) FROM sensorbase_schema") == [(pg_schema.SCHEMA_VERSION,)]
    assert sql(url, "SELECT to_regclass('points')") == [(None,)]  # points are chunks now
    s = series(stores[0])
    write(stores[1], lambda tx: tx.append(batch([s, s], [T0, T0 + 3 * WEEK_US], [1.0, 2.0])))
    write(stores[2], lambda tx: tx.append(batch([s], [T0 + 1], [3.0])))
    assert stores[0].reader().count(s, TimeRange(None, None)) == 3
    for found in stores:
        found.close()


def test_a_newer_schema_is_refused(store: PostgresStore, url: str) -> None:
    sql(url, "INSERT INTO sensorbase_schema VALUES (999, 0)")
    with pytest.raises(SensorbaseError, match="upgrade Sensorbase"):
        open_store(url)


def test_two_nodes_creating_one_sensor_get_one_series(url: str) -> None:
    a, b = open_store(url), open_store(url)
    series(a, "existing")  # the organisation and bucket exist
    writer = a.writer()
    tx = writer.begin()
    org = tx.get_org("o")
    assert org is not None
    bucket = tx.get_bucket(org.id, "b")
    assert bucket is not None
    mine = tx.get_or_create_series(tx.get_or_create_source(org.id, bucket.id, "new").id, ["x", "y"])
    theirs: dict[str, int] = {}

    def other_node() -> None:
        theirs.update(series_ids(b, org.id, bucket.id))

    thread = threading.Thread(target=other_node)
    thread.start()
    wait_until_blocked(url)  # waiting for the first node's transaction, not failing
    writer.commit()
    thread.join(5)
    assert theirs == mine
    assert sql(url, "SELECT count(*) FROM sources WHERE key = 'new'") == [(1,)]
    assert sql(url, "SELECT count(*) FROM series") == [(3,)]
    a.close()
    b.close()


def series_ids(store: PostgresStore, org_id: int, bucket_id: int) -> dict[str, int]:
    def make(tx: object) -> dict[str, int]:
        source = tx.get_or_create_source(org_id, bucket_id, "new")  # type: ignore[attr-defined]
        return dict(tx.get_or_create_series(source.id, ["y", "x"]))  # type: ignore[attr-defined]

    return write(store, make)  # type: ignore[arg-type]


def test_a_killed_writer_never_acknowledges_and_recovers(store: PostgresStore, url: str) -> None:
    s = series(store)
    writer = store.writer()
    tx = writer.begin()
    tx.append(batch([s], [T0], [1.0]))
    assert terminate(url, "sensorbase-writer") == 1
    with pytest.raises(Unavailable) as caught, tx.savepoint():
        tx.append(batch([s], [T0 + 1], [2.0]))
    assert caught.value.retry_after_s == 1
    with pytest.raises(Unavailable):
        writer.commit()
    writer.rollback()
    # The next transaction reconnects by itself; nothing of the killed one was stored.
    write(store, lambda tx: tx.append(batch([s], [T0 + 2], [3.0])))
    assert store.reader().read_range(s, TimeRange(None, None), 10).value.tolist() == [3.0]


def test_a_commit_on_a_dead_connection_is_not_an_ack(store: PostgresStore, url: str) -> None:
    s = series(store)
    writer = store.writer()
    tx = writer.begin()
    tx.append(batch([s], [T0], [1.0]))
    terminate(url, "sensorbase-writer")
    with pytest.raises(Unavailable):
        writer.commit()
    assert store.reader().count(s, TimeRange(None, None)) == 0


def test_an_idle_connection_killed_between_writes_is_replaced(
    store: PostgresStore, url: str
) -> None:
    s = series(store)
    store.reader().get_org("o")  # the pool holds a connection
    terminate(url, "sensorbase-writer")
    terminate(url, "sensorbase")
    write(store, lambda tx: tx.append(batch([s], [T0], [1.0])))
    assert store.reader().count(s, TimeRange(None, None)) == 1


def test_an_unreachable_database_is_unavailable_and_reads_fail_fast(
    store: PostgresStore,
) -> None:
    nowhere = "postgresql://postgres@127.0.0.1:1/nowhere"  # as if the server went away
    store.url = nowhere
    writer = store.writer()
    writer._drop()
    with pytest.raises(Unavailable) as caught:
        writer.begin()
    assert caught.value.retry_after_s == 1
    with pytest.raises(Unavailable):
        PostgresStore(nowhere, Settings(data_dir=Path("/nonexistent"))).open()
    pool = Pool(nowhere, 2)
    pool.open()
    try:
        reader = PgReader(pool, PgLogCache())
        with pytest.raises(Unavailable):
            reader.get_org("o")  # waits out the pool's timeout once
        started = time.monotonic()
        with pytest.raises(Unavailable):
            reader.get_key("k")
        assert time.monotonic() - started < 0.1  # then fails fast while it is down
    finally:
        pool.close()


def test_durability_and_timeouts_reach_the_writer_session(url: str) -> None:
    settings = Settings(data_dir=Path("/nonexistent"), database_url=url, durability="normal")
    store = PostgresStore(url, settings)
    store.open()
    try:
        tx = store.writer().begin()
        assert tx._all("SHOW synchronous_commit") == [("off",)]
        assert tx._all("SHOW statement_timeout") == [("30s",)]
        store.writer().rollback()
    finally:
        store.close()


def test_batches_with_and_without_extras_in_one_transaction(store: PostgresStore) -> None:
    s = series(store)
    n = 10_000
    times = T0 + np.arange(n, dtype=np.int64)
    plain = ResolvedBatch(np.full(n, s, np.int64), times, np.ones(n), None)
    extra: list[str | None] = [None] * n
    extra[5] = '{"lat":1.0}'
    rich = ResolvedBatch(np.full(n, s, np.int64), times, np.full(n, 2.0), extra)

    def both(tx: object) -> None:
        tx.append(plain)  # type: ignore[attr-defined]
        tx.append(rich)  # type: ignore[attr-defined]

    write(store, both)  # type: ignore[arg-type]
    points = store.reader().read_range(s, TimeRange(T0, T0 + 10), 10)
    assert points.value.tolist() == [2.0] * 10
    assert points.extra is not None and points.extra[5] == '{"lat":1.0}'


def test_a_point_stored_meanwhile_by_another_node_is_replaced_in_commit_order(url: str) -> None:
    a, b = open_store(url), open_store(url)
    s = series(a)
    writer = a.writer()
    tx = writer.begin()
    tx.append(batch([s, s], [T0, T0 + 1], [1.0, 1.0]))
    tx.flush()  # written (as a commit would), not committed yet
    errors: list[BaseException] = []

    def other_node() -> None:
        # It waits for the first transaction's commit (the log lock: postgres/log.py), so
        # its log row comes after that one's and wins.
        try:
            write(b, lambda tx: tx.append(batch([s, s], [T0 + 1, T0 + 2], [2.0, 2.0])))
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=other_node)
    thread.start()
    wait_until_blocked(url)
    writer.commit()
    thread.join(5)
    assert errors == []
    assert a.reader().read_range(s, TimeRange(None, None), 10).value.tolist() == [1.0, 2.0, 2.0]
    a.close()
    b.close()


def test_a_setting_swapped_meanwhile_by_another_node_is_the_one_replaced(url: str) -> None:
    # What tells a node's alert engine that another node changed a rule meanwhile
    # (alerts/engine.py): the later swap waits for the earlier and sees its value.
    a, b = open_store(url), open_store(url)
    write(a, lambda tx: tx.swap_setting("alerts_version", "v0"))
    writer = a.writer()
    tx = writer.begin()
    assert tx.swap_setting("alerts_version", "v1") == "v0"
    seen: list[str | None] = []

    def other_node() -> None:
        seen.append(write(b, lambda tx: tx.swap_setting("alerts_version", "v2")))

    thread = threading.Thread(target=other_node)
    thread.start()
    wait_until_blocked(url)
    writer.commit()
    thread.join(5)
    assert seen == ["v1"]
    assert b.reader().get_setting("alerts_version") == "v2"
    a.close()
    b.close()
