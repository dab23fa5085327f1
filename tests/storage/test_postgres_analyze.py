"""The PostgreSQL fold helper analyses the tables a burst of writes has grown (autovacuum may be
off, or not come round for a minute): a fleet's new devices are then looked up by the (bucket,
key) index, not by filtering every source of the bucket."""

from __future__ import annotations

import time

import psycopg
import pytest

from sensorbase.storage import catalog_sql
from sensorbase.storage.base import WriteTx
from sensorbase.storage.postgres.folder import analyze_grown
from sensorbase.storage.postgres.reader import pg_sql
from sensorbase.storage.postgres.store import PostgresStore
from tests.storage.test_contract import write

DEVICES = 5_000


def lookup_plan(conn: psycopg.Connection, bucket_id: int, keys: list[str]) -> str:
    statement = pg_sql(catalog_sql.sources_by_keys(len(keys)))
    rows = conn.execute(f"EXPLAIN {statement}", [bucket_id, *keys]).fetchall()
    return "\n".join(str(row[0]) for row in rows)


@pytest.mark.slow(5)
def test_a_burst_of_new_devices_is_analysed_and_then_found_by_the_index(
    postgres_store: PostgresStore,
) -> None:
    store = postgres_store
    keys = [f"dev{n:05d}" for n in range(DEVICES)]

    def create(tx: WriteTx) -> int:
        org = tx.create_org("acme", "Acme")
        bucket = tx.create_bucket(org.id, "fleet", "Fleet", "", {})
        made = tx.get_or_create_sources(org.id, bucket.id, keys)
        tx.get_or_create_series_of([(s.id, "t", None, {}) for s in made.values()])
        return bucket.id

    bucket_id = write(store, create)
    with psycopg.connect(store.url, autocommit=True) as conn:
        conn.execute("SET plan_cache_mode = force_custom_plan")
        stale = lookup_plan(conn, bucket_id, keys[:500])
        # (the writer hands its row counts to the statistics at the commit: postgres/writer.py)
        analysed: set[str] = set()
        deadline = time.monotonic() + 30
        while not {"sources", "series"} <= analysed and time.monotonic() < deadline:
            analysed.update(analyze_grown(conn))
            time.sleep(0.1)
        assert {"sources", "series"} <= analysed
        assert analyze_grown(conn) == []  # nothing grew since
        fresh = lookup_plan(conn, bucket_id, keys[:500])
    # Without statistics the planner filtered the bucket's every source by key; with them it
    # probes the index for the keys.
    assert "Filter: (key = ANY" in stale, stale
    assert "Filter: (key = ANY" not in fresh and "key = ANY" in fresh, fresh


@pytest.mark.slow(5)
def test_a_fleet_created_through_the_catalog_alone_is_analysed(
    postgres_store: PostgresStore,
) -> None:
    """Sources and series made without a point (the catalog API, an import's first step) log
    nothing, yet the commit that made them starts the fold helper, which analyses them: a
    lookup no longer waits for autovacuum (off on this machine, once a minute by default)."""
    store = postgres_store
    keys = [f"dev{n:05d}" for n in range(1_500)]  # (past analyze_grown's 1,000 rows)

    def create(tx: WriteTx) -> None:
        org = tx.create_org("acme", "Acme")
        bucket = tx.create_bucket(org.id, "fleet", "Fleet", "", {})
        made = tx.get_or_create_sources(org.id, bucket.id, keys)
        tx.get_or_create_series_of([(s.id, "t", None, {}) for s in made.values()])

    write(store, create)
    with psycopg.connect(store.url, autocommit=True) as conn:
        deadline = time.monotonic() + 30
        analysed: set[str] = set()
        while not {"sources", "series"} <= analysed and time.monotonic() < deadline:
            rows = conn.execute(
                "SELECT relname FROM pg_stat_user_tables WHERE last_analyze IS NOT NULL"
            ).fetchall()
            analysed = {row[0] for row in rows}
            time.sleep(0.2)
    assert {"sources", "series"} <= analysed
