"""The storage contract: every Store/Reader/Writer/WriteTx method, on every backend.

A backend passes this suite or it does not ship. The `store` fixture is parametrised by the
`backend`/`settings` fixtures of conftest.py (SQLite, and PostgreSQL when it is reachable).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TypeVar

import numpy as np
import pytest

from sensorbase.errors import Conflict
from sensorbase.model import FieldSpec, ResolvedBatch, TimeRange
from sensorbase.settings import Settings
from sensorbase.storage import open_store
from sensorbase.storage.base import Store, WriteTx

T = TypeVar("T")
WEEK_US = 7 * 86_400 * 1_000_000
T0 = 1_800_000_000_000_000  # 2027-01-15, in microseconds


@pytest.fixture
def store(settings: Settings) -> Iterator[Store]:
    found = open_store(settings)
    found.open()
    yield found
    found.close()


def write(store: Store, fn: Callable[[WriteTx], T]) -> T:
    """Run `fn` in a savepoint of one committed transaction, as the committer does."""
    writer = store.writer()
    tx = writer.begin()
    try:
        with tx.savepoint():
            result = fn(tx)
    except BaseException:
        writer.rollback()
        raise
    writer.commit()
    return result


def batch(
    series_id: list[int],
    time_us: list[int],
    value: list[float],
    extra: list[str | None] | None = None,
) -> ResolvedBatch:
    return ResolvedBatch(
        np.array(series_id, np.int64),
        np.array(time_us, np.int64),
        np.array(value, np.float64),
        extra,
    )


@pytest.fixture
def world(store: Store) -> dict[str, int]:
    """Two organisations, each with a bucket, a source and a series."""

    def make(tx: WriteTx) -> dict[str, int]:
        acme = tx.create_org("acme", "Acme")
        globex = tx.create_org("globex", "Globex")
        farm = tx.create_bucket(acme.id, "farm", "Farm", "fields", {"site": 1})
        plant = tx.create_bucket(globex.id, "plant", "Plant", "", {})
        sensor = tx.create_source(acme.id, farm.id, "ESP32-001", "Sensor", {"room": "a"}, None)
        other = tx.create_source(globex.id, plant.id, "ESP32-001", "Theirs", {}, None)
        ids = tx.get_or_create_series(sensor.id, ["temperature"], {"temperature": "°C"})
        theirs = tx.get_or_create_series(other.id, ["temperature"])
        return {
            "acme": acme.id,
            "globex": globex.id,
            "farm": farm.id,
            "plant": plant.id,
            "sensor": sensor.id,
            "other": other.id,
            "temp": ids["temperature"],
            "their_temp": theirs["temperature"],
        }

    return write(store, make)


def test_organisations(store: Store, world: dict[str, int]) -> None:
    reader = store.reader()
    acme = reader.get_org("acme")
    assert acme is not None and acme.id == world["acme"] and acme.name == "Acme"
    assert reader.get_org_by_id(world["globex"]) == reader.get_org("globex")
    assert [o.key for o in reader.list_orgs()] == ["acme", "globex"]
    assert reader.get_org("nope") is None and reader.get_org_by_id(999_999) is None
    with pytest.raises(Conflict):
        write(store, lambda tx: tx.create_org("acme", "again"))


def test_buckets_are_scoped_by_organisation(store: Store, world: dict[str, int]) -> None:
    reader = store.reader()
    farm = reader.get_bucket(world["acme"], "farm")
    assert farm is not None
    assert (farm.id, farm.name, farm.description, farm.meta) == (
        world["farm"],
        "Farm",
        "fields",
        {"site": 1},
    )
    assert reader.get_bucket(world["globex"], "farm") is None
    assert reader.get_bucket_by_id(world["globex"], world["farm"]) is None
    assert reader.get_bucket_by_id(world["acme"], world["farm"]) == farm
    write(store, lambda tx: tx.create_bucket(world["acme"], "barn", "Barn", "", {}))
    found, total = reader.list_buckets(world["acme"], 1, 1)
    assert [b.key for b in found] == ["barn"] and total == 2
    # The same key in another organisation is fine; in the same one it conflicts.
    write(store, lambda tx: tx.create_bucket(world["globex"], "farm", "Farm", "", {}))
    with pytest.raises(Conflict):
        write(store, lambda tx: tx.create_bucket(world["acme"], "farm", "Farm", "", {}))
    write(store, lambda tx: tx.update_bucket(world["farm"], meta={"site": 2}))
    updated = reader.get_bucket(world["acme"], "farm")
    assert updated is not None and updated.meta == {"site": 2}
    assert write(store, lambda tx: tx.get_bucket(world["acme"], "farm")) == updated


def test_sources_are_scoped(store: Store, world: dict[str, int]) -> None:
    reader = store.reader()
    sensor = reader.get_source(world["farm"], "ESP32-001")
    assert sensor is not None and sensor.id == world["sensor"] and sensor.meta == {"room": "a"}
    assert reader.find_source(world["acme"], "ESP32-001") == sensor
    theirs = reader.find_source(world["globex"], "ESP32-001")
    assert theirs is not None and theirs.id == world["other"]
    assert reader.get_source_by_id(world["acme"], world["other"]) is None
    assert reader.get_source_by_id(world["acme"], world["sensor"]) == sensor
    assert reader.find_source(world["acme"], "nope") is None
    with pytest.raises(Conflict):
        write(
            store,
            lambda tx: tx.create_source(world["acme"], world["farm"], "ESP32-001", "", {}, None),
        )
    schema = {"temperature": FieldSpec("number", "°C", "air"), "door": FieldSpec("boolean")}

    def update(tx: WriteTx) -> None:
        tx.update_source(world["sensor"], name="Renamed", meta={"room": "b"}, schema=schema)

    write(store, update)
    changed = reader.get_source(world["farm"], "ESP32-001")
    assert changed is not None
    assert (changed.name, changed.meta, changed.schema) == ("Renamed", {"room": "b"}, schema)
    write(store, lambda tx: tx.create_source(world["acme"], world["farm"], "B", "B", {}, None))
    found, total = reader.list_sources(world["farm"], 10, 0)
    assert [s.key for s in found] == ["ESP32-001", "B"] and total == 2
    assert reader.list_sources(world["farm"], 1, 1)[0][0].key == "B"


def test_get_or_create_is_idempotent(store: Store, world: dict[str, int]) -> None:
    def twice(tx: WriteTx) -> tuple[int, int, dict[str, int], dict[str, int]]:
        first = tx.get_or_create_source(world["acme"], world["farm"], "new")
        again = tx.get_or_create_source(world["acme"], world["farm"], "new")
        a = tx.get_or_create_series(first.id, ["a", "b"], {"a": "V"}, {"a": {"calibrated": True}})
        b = tx.get_or_create_series(first.id, ["b", "a", "c"], {"a": "ignored"})
        return first.id, again.id, a, b

    first, again, a, b = write(store, twice)
    assert first == again
    assert b["a"] == a["a"] and b["b"] == a["b"] and len(set(b.values())) == 3
    reader = store.reader()
    series = reader.get_series(a["a"])
    assert series is not None
    assert (series.source_id, series.field, series.unit, series.meta) == (
        first,
        "a",
        "V",
        {"calibrated": True},
    )
    assert [s.field for s in reader.list_source_series(first)] == ["a", "b", "c"]
    write(store, lambda tx: tx.update_series(a["b"], meta={"x": 1}))
    updated = reader.get_series(a["b"])
    assert updated is not None and updated.meta == {"x": 1}
    assert reader.get_series(999_999) is None


def test_list_series_is_scoped_and_filtered(store: Store, world: dict[str, int]) -> None:
    def more(tx: WriteTx) -> None:
        other = tx.create_source(world["acme"], world["farm"], "ESP32-002", "", {}, None)
        tx.get_or_create_series(other.id, ["temperature", "humidity"])

    write(store, more)
    reader = store.reader()
    every = reader.list_series(world["acme"])
    assert [(s.bucket, s.source, s.field) for s in every] == [
        ("farm", "ESP32-001", "temperature"),
        ("farm", "ESP32-002", "humidity"),
        ("farm", "ESP32-002", "temperature"),
    ]
    assert every[0].unit == "°C" and every[0].id == world["temp"]
    assert len(reader.list_series(world["acme"], world["farm"], ["ESP32-002"])) == 2
    assert [s.field for s in reader.list_series(world["acme"], None, None, ["humidity"])] == [
        "humidity"
    ]
    assert reader.list_series(world["acme"], world["plant"]) == []
    assert [s.id for s in reader.list_series(world["globex"])] == [world["their_temp"]]


def test_points_upsert_and_read(store: Store, world: dict[str, int]) -> None:
    s = world["temp"]
    write(store, lambda tx: tx.append(batch([s, s, s], [T0 + 2, T0, T0 + 1], [3.0, 1.0, 2.0])))
    # The same (series, time) again replaces; inside one batch the last write wins.
    write(
        store,
        lambda tx: tx.append(batch([s, s, s], [T0 + 1, T0 + 3, T0 + 1], [20.0, 4.0, 22.0])),
    )
    reader = store.reader()
    points = reader.read_range(s, TimeRange(None, None), 100)
    assert points.time_us.tolist() == [T0, T0 + 1, T0 + 2, T0 + 3]
    assert points.value.tolist() == [1.0, 22.0, 3.0, 4.0]
    assert points.extra is None
    desc = reader.read_range(s, TimeRange(T0 + 1, T0 + 3), 10, "desc")
    assert desc.time_us.tolist() == [T0 + 2, T0 + 1]
    assert reader.read_range(s, TimeRange(None, None), 2, "asc", 1).value.tolist() == [22.0, 3.0]
    assert reader.read_latest([s], 2)[0].time_us.tolist() == [T0 + 3, T0 + 2]
    by_value = reader.read_range_by_value(s, TimeRange(T0, None), 3, "desc")
    assert by_value.value.tolist() == [22.0, 4.0, 3.0]
    assert reader.read_range_by_value(s, TimeRange(None, T0 + 3), 2).value.tolist() == [1.0, 3.0]
    assert reader.count(s, TimeRange(T0 + 1, None)) == 3
    assert reader.count(world["their_temp"], TimeRange(None, None)) == 0
    assert len(reader.read_range(world["their_temp"], TimeRange(None, None), 10)) == 0


def test_read_values_gives_times_and_values_in_order(store: Store, world: dict[str, int]) -> None:
    """What the aggregates that read every point read: no extras, the range, the limit."""
    s = world["temp"]
    extra: list[str | None] = ['{"lat":1.5,"lon":2.5}', None, None, None]
    write(store, lambda tx: tx.append(batch([s] * 4, [T0 + 3, T0, T0 + 2, T0 + 1],
                                            [4.0, -1.5, 3.0, 2.0], extra)))  # fmt: skip
    reader = store.reader()
    every = reader.read_values(s, TimeRange(None, None), 100)
    assert every.time_us.tolist() == [T0, T0 + 1, T0 + 2, T0 + 3]
    assert every.value.tolist() == [-1.5, 2.0, 3.0, 4.0] and every.extra is None
    some = reader.read_values(s, TimeRange(T0 + 1, T0 + 3), 1)
    assert some.time_us.tolist() == [T0 + 1] and some.value.tolist() == [2.0]
    assert len(reader.read_values(world["their_temp"], TimeRange(None, None), 10)) == 0
    assert len(reader.read_values(s, TimeRange(T0 + 10, None), 10)) == 0


def test_extras_are_kept_and_replaced(store: Store, world: dict[str, int]) -> None:
    s = world["temp"]
    extra: list[str | None] = ['{"lat":1.5,"lon":2.5}', None]
    write(store, lambda tx: tx.append(batch([s, s], [T0, T0 + 1], [1.0, 2.0], extra)))
    points = store.reader().read_range(s, TimeRange(None, None), 10)
    assert points.extra == ['{"lat":1.5,"lon":2.5}', None]
    write(store, lambda tx: tx.append(batch([s], [T0], [5.0])))
    [points] = store.reader().read_latest([s], 5)
    assert points.value.tolist() == [2.0, 5.0] and points.extra is None


def test_points_across_many_partitions_in_one_transaction(
    store: Store, world: dict[str, int]
) -> None:
    s, t = world["temp"], world["their_temp"]
    times = [T0 + k * WEEK_US for k in range(6)]

    def appends(tx: WriteTx) -> None:
        tx.append(batch([s], [times[0]], [0.0]))
        # Later appends in the same transaction reach weeks (partitions) not seen before.
        tx.append(batch([s, s], [times[1], times[3]], [1.0, 3.0]))
        tx.append(batch([t, s, s], [times[5], times[2], times[4]], [50.0, 2.0, 4.0]))

    write(store, appends)
    reader = store.reader()
    assert reader.read_range(s, TimeRange(None, None), 10).value.tolist() == [0, 1, 2, 3, 4]
    assert reader.read_latest([t], 1)[0].value.tolist() == [50.0]


def test_latest_of_many_series_in_one_read(store: Store, world: dict[str, int]) -> None:
    s, t = world["temp"], world["their_temp"]

    def more(tx: WriteTx) -> int:
        empty = tx.get_or_create_series(world["sensor"], ["humidity"])["humidity"]
        tx.append(batch([s, t, s, s], [T0, T0 + 5, T0 + 2, T0 + 1], [1.0, 50.0, 3.0, 2.0]))
        tx.append(batch([s], [T0 + 2], [30.0], ['{"lat":1.0,"lon":2.0}']))
        return empty

    empty = write(store, more)
    reader = store.reader()
    found = reader.read_latest([t, empty, s], 2)
    assert [p.time_us.tolist() for p in found] == [[T0 + 5], [], [T0 + 2, T0 + 1]]
    assert [p.value.tolist() for p in found] == [[50.0], [], [30.0, 2.0]]
    assert found[2].extra == ['{"lat":1.0,"lon":2.0}', None]
    [newest] = reader.read_latest([s], 1)
    assert (newest.time_us.tolist(), newest.value.tolist()) == ([T0 + 2], [30.0])
    assert newest.extra == ['{"lat":1.0,"lon":2.0}']
    assert reader.read_latest([], 1) == []


def test_large_batch(store: Store, world: dict[str, int]) -> None:
    n = 50_000
    sids = np.where(np.arange(n) % 2 == 0, world["temp"], world["their_temp"]).astype(np.int64)
    times = T0 + (np.arange(n, dtype=np.int64) // 2) * 1_000_000
    values = np.arange(n, dtype=np.float64)
    write(store, lambda tx: tx.append(ResolvedBatch(sids, times, values, None)))
    reader = store.reader()
    assert reader.count(world["temp"], TimeRange(None, None)) == n // 2
    assert reader.aggregate(world["their_temp"], TimeRange(None, None), ("sum",)).values == {
        "sum": float(values[1::2].sum())
    }


def test_aggregates(store: Store, world: dict[str, int]) -> None:
    s = world["temp"]
    times = [T0 + k * 10 for k in range(6)]  # T0, +10, ..., +50
    write(store, lambda tx: tx.append(batch([s] * 6, times, [4.0, 2.0, 6.0, 1.0, 5.0, 3.0])))
    reader = store.reader()
    every = ("min", "max", "avg", "sum", "count", "first", "last")
    whole = reader.aggregate(s, TimeRange(None, None), every)
    assert whole.start_us is None
    assert whole.values == {
        "min": 1.0,
        "max": 6.0,
        "avg": 3.5,
        "sum": 21.0,
        "count": 6,
        "first": 4.0,
        "last": 3.0,
    }
    part = reader.aggregate(s, TimeRange(T0 + 10, T0 + 30), ("count", "first", "last"))
    assert part.values == {"count": 2, "first": 2.0, "last": 6.0}
    empty = reader.aggregate(s, TimeRange(T0 + 100, None), ("min", "count", "last"))
    assert empty.values == {"min": None, "count": 0, "last": None}

    fixed = reader.aggregate_fixed(s, TimeRange(T0, T0 + 60), 20, T0 - 5, ("min", "first", "last"))
    # Buckets start at T0-5, T0+15, T0+35: points {T0, T0+10}, {T0+20, T0+30}, {T0+40, T0+50}
    assert [(r.start_us, r.values) for r in fixed] == [
        (T0 - 5, {"min": 2.0, "first": 4.0, "last": 2.0}),
        (T0 + 15, {"min": 1.0, "first": 6.0, "last": 1.0}),
        (T0 + 35, {"min": 3.0, "first": 5.0, "last": 3.0}),
    ]
    sparse = reader.aggregate_fixed(s, TimeRange(T0, T0 + 60), 1000, T0 - 500, ("count",))
    assert [(r.start_us, r.values) for r in sparse] == [(T0 - 500, {"count": 6})]

    bounds = [T0 - 100, T0 + 15, T0 + 16, T0 + 45, T0 + 1000]
    rows = reader.aggregate_bounds(s, bounds, ("count", "max", "last"))
    # [T0-100, T0+15): 2 points; [T0+15, T0+16): none (left out); [T0+16, T0+45): 3; then 1.
    assert [(r.start_us, r.values) for r in rows] == [
        (T0 - 100, {"count": 2, "max": 4.0, "last": 2.0}),
        (T0 + 16, {"count": 3, "max": 6.0, "last": 5.0}),
        (T0 + 45, {"count": 1, "max": 3.0, "last": 3.0}),
    ]


def test_m4(store: Store, world: dict[str, int]) -> None:
    s = world["temp"]
    # Columns of 100 us over [T0, T0 + 500): points in columns 0, 1 and 3; column 2 and 4 empty.
    times = [T0, T0 + 10, T0 + 20, T0 + 30, T0 + 99, T0 + 100, T0 + 150, T0 + 350]
    values = [5.0, 1.0, 9.0, 1.0, 5.0, 7.0, 7.0, 3.0]
    write(store, lambda tx: tx.append(batch([s] * 8, times, values)))
    reader = store.reader()
    got = reader.m4(s, TimeRange(T0, T0 + 500), 5)
    # Column 0: first, min (the earliest of the two 1.0), max, last; the others once each.
    assert got.time_us.tolist() == [T0, T0 + 10, T0 + 20, T0 + 99, T0 + 100, T0 + 150, T0 + 350]
    assert got.value.tolist() == [5.0, 1.0, 9.0, 5.0, 7.0, 7.0, 3.0]
    assert got.extra is None
    # The range's edges: start inclusive, end exclusive.
    edge = reader.m4(s, TimeRange(T0 + 10, T0 + 350), 1)
    assert edge.time_us.tolist() == [T0 + 10, T0 + 20, T0 + 150]
    assert len(reader.m4(s, TimeRange(T0 + 351, T0 + 1000), 3)) == 0
    # More columns than microseconds: empty columns, the points still each in one.
    narrow = reader.m4(s, TimeRange(T0, T0 + 3), 10)
    assert narrow.time_us.tolist() == [T0]


def test_savepoint_rolls_back_only_its_own_work(store: Store, world: dict[str, int]) -> None:
    s = world["temp"]

    def jobs(tx: WriteTx) -> None:
        with tx.savepoint():
            tx.append(batch([s], [T0], [1.0]))
        with pytest.raises(Conflict), tx.savepoint():
            tx.create_org("solo", "kept? no")
            tx.append(batch([s], [T0 + 1], [2.0]))
            tx.create_org("acme", "duplicate")  # the conflict undoes this savepoint only
        with pytest.raises(RuntimeError), tx.savepoint():
            tx.create_bucket(world["acme"], "doomed", "", "", {})
            raise RuntimeError("a bug in a job")
        with tx.savepoint():  # the transaction is still usable
            tx.create_org("after", "After")

    write(store, jobs)
    reader = store.reader()
    assert reader.read_range(s, TimeRange(None, None), 10).value.tolist() == [1.0]
    assert reader.get_org("solo") is None
    assert reader.get_bucket(world["acme"], "doomed") is None
    assert reader.get_org("after") is not None


def test_rollback_and_visibility(store: Store, world: dict[str, int]) -> None:
    writer = store.writer()
    tx = writer.begin()
    tx.create_org("pending", "Pending")
    assert tx.get_org("pending") is not None  # a transaction sees its own work
    assert store.reader().get_org("pending") is None  # nobody else does before the commit
    writer.rollback()
    assert store.reader().get_org("pending") is None
    tx = writer.begin()  # the writer goes on after a rollback
    tx.create_org("pending", "Pending")
    writer.commit()
    assert store.reader().get_org("pending") is not None


def test_keys_and_refresh_tokens(store: Store, world: dict[str, int]) -> None:
    acme, farm = world["acme"], world["farm"]

    def keys(tx: WriteTx) -> None:
        tx.create_key(acme, "k1", "hash1", "admin", ("admin",), None, True)
        tx.create_key(acme, "k2", "hash2", "writer", ("data:write", "data:read"), farm, False)
        tx.create_key(world["globex"], "k3", "hash3", "theirs", ("data:read",), None, False)

    write(store, keys)
    reader = store.reader()
    k2 = reader.get_key("k2")
    assert k2 is not None
    assert (k2.org_id, k2.scopes, k2.bucket_id, k2.server_admin, k2.revoked_us) == (
        acme,
        ("data:write", "data:read"),
        farm,
        False,
        None,
    )
    assert k2.secret_hash == "hash2"
    k1 = reader.get_key("k1")
    assert k1 is not None and k1.server_admin is True
    assert [k.key_id for k in reader.list_keys(acme)] == ["k1", "k2"]
    assert [k.key_id for k in reader.list_keys(acme, farm)] == ["k2"]
    assert reader.get_key("nope") is None
    with pytest.raises(Conflict):
        write(store, lambda tx: tx.create_key(acme, "k1", "h", "", ("admin",), None, False))

    write(store, lambda tx: tx.put_refresh_token("r1", "k2", T0))
    write(store, lambda tx: tx.put_refresh_token("r2", "k2", T0))
    write(store, lambda tx: tx.put_refresh_token("old", "k1", T0 - 10))
    assert write(store, lambda tx: tx.take_refresh_token("r1", T0 - 1)) == "k2"
    assert write(store, lambda tx: tx.take_refresh_token("r1", T0 - 1)) is None  # single use
    assert write(store, lambda tx: tx.take_refresh_token("old", T0 - 1)) is None  # expired
    write(store, lambda tx: tx.revoke_key("k2", T0))
    revoked = reader.get_key("k2")
    assert revoked is not None and revoked.revoked_us == T0
    assert write(store, lambda tx: tx.take_refresh_token("r2", T0 - 1)) is None  # revoked with it
    write(store, lambda tx: tx.revoke_key("k2", T0 + 5))  # a second revocation keeps the first
    again = reader.get_key("k2")
    assert again is not None and again.revoked_us == T0


def test_users(store: Store, world: dict[str, int]) -> None:
    user = write(store, lambda tx: tx.create_user(world["acme"], "Ann@Example.com", "ph", "writer"))
    reader = store.reader()
    found = reader.get_user("ann@example.COM")  # email is case-insensitive
    assert found is not None and found == user and found.password_hash == "ph"
    assert found.role == "writer" and found.org_id == world["acme"]
    assert reader.get_user_by_id(user.id) == user
    with pytest.raises(Conflict):
        write(store, lambda tx: tx.create_user(world["globex"], "ANN@example.com", "x", "reader"))
    write(store, lambda tx: tx.create_user(world["acme"], "bob@example.com", "x", "reader"))
    assert [u.email for u in reader.list_users(world["acme"])] == [
        "Ann@Example.com",
        "bob@example.com",
    ]
    assert reader.list_users(world["globex"]) == []
    write(store, lambda tx: tx.delete_user(user.id))
    assert reader.get_user("ann@example.com") is None


def test_update_user_always_gives_a_new_token_generation(
    store: Store, world: dict[str, int]
) -> None:
    user = write(store, lambda tx: tx.create_user(world["acme"], "ann@example.com", "ph", "reader"))
    other = write(
        store, lambda tx: tx.create_user(world["acme"], "bob@example.com", "ph", "reader")
    )
    assert len(user.token_generation) >= 32 and user.token_generation != other.token_generation
    reader = store.reader()
    assert reader.get_user_by_id(user.id) == user  # (the generation compared too)

    promoted = write(store, lambda tx: tx.update_user(user.id, role="admin"))
    assert promoted is not None and promoted.role == "admin" and promoted.password_hash == "ph"
    assert promoted.token_generation not in (user.token_generation, "")
    moved = write(store, lambda tx: tx.update_user(user.id, password_hash="new"))
    assert moved is not None and (moved.role, moved.password_hash) == ("admin", "new")
    assert moved.token_generation != promoted.token_generation
    touched = write(store, lambda tx: tx.update_user(user.id))  # even a change of nothing
    assert touched is not None and touched.token_generation != moved.token_generation
    assert reader.get_user("ann@example.com") == touched
    assert reader.get_user_by_id(other.id) == other  # nobody else changed
    write(store, lambda tx: tx.delete_user(user.id))
    assert write(store, lambda tx: tx.update_user(user.id, role="admin")) is None


def test_ids_are_never_given_twice(settings: Settings, store: Store) -> None:
    """Deleting the newest organisation, bucket, source, series, key, user or group never
    frees its id for the next one: not in the same run, not after the store is opened again
    (SQLite gives a deleted largest rowid again, unless the table is AUTOINCREMENT)."""

    def make(tx: WriteTx, n: int) -> dict[str, int]:
        org = tx.create_org(f"org{n}", "")
        bucket = tx.create_bucket(org.id, "b", "", "", {})
        source = tx.create_source(org.id, bucket.id, "s", "", {}, None)
        return {
            "org": org.id,
            "bucket": bucket.id,
            "source": source.id,
            "series": tx.get_or_create_series(source.id, ["t"])["t"],
            "key": tx.create_key(org.id, f"k{n}", "h", "", ("admin",), None, False).id,
            "user": tx.create_user(org.id, f"u{n}@example.com", "h", "admin").id,
            "group": tx.create_group(org.id, "g", {}, [source.id]).id,
        }

    def delete(tx: WriteTx, ids: dict[str, int]) -> None:
        tx.delete_group(ids["group"])
        tx.delete_user(ids["user"])
        tx.delete_org(ids["org"])  # with its bucket, source, series and key

    first = write(store, lambda tx: make(tx, 1))
    write(store, lambda tx: delete(tx, first))
    second = write(store, lambda tx: make(tx, 2))
    assert all(second[kind] > first[kind] for kind in first), (first, second)
    write(store, lambda tx: delete(tx, second))
    store.close()
    store.open()  # what the store remembers survives a restart
    third = write(store, lambda tx: make(tx, 3))
    assert all(third[kind] > second[kind] for kind in first), (second, third)


def test_refresh_tokens_go_with_their_key_however_it_goes(
    store: Store, world: dict[str, int]
) -> None:
    acme, farm = world["acme"], world["farm"]

    def keys(tx: WriteTx) -> None:
        tx.create_key(acme, "kb", "h", "", ("data:read",), farm, False)
        tx.create_key(world["globex"], "ko", "h", "", ("data:read",), None, False)
        tx.put_refresh_token("rb", "kb", T0)
        tx.put_refresh_token("ro", "ko", T0)

    write(store, keys)
    write(store, lambda tx: tx.delete_bucket(farm))  # the key limited to it goes, and its token
    write(store, lambda tx: tx.delete_org(world["globex"]))
    write(store, lambda tx: tx.create_key(acme, "kb", "h2", "", ("data:read",), None, False))
    assert write(store, lambda tx: tx.take_refresh_token("rb", T0 - 1)) is None
    assert write(store, lambda tx: tx.take_refresh_token("ro", T0 - 1)) is None


def test_groups(store: Store, world: dict[str, int]) -> None:
    acme, sensor = world["acme"], world["sensor"]
    second = write(
        store, lambda tx: tx.create_source(acme, world["farm"], "second", "", {}, None)
    ).id
    group = write(store, lambda tx: tx.create_group(acme, "Pump", {"n": 1}, [second, sensor]))
    assert group.source_ids == tuple(sorted([sensor, second]))
    reader = store.reader()
    assert reader.get_group(acme, group.id) == group
    assert reader.get_group(world["globex"], group.id) is None  # scoped
    write(store, lambda tx: tx.set_group_members(group.id, [sensor]))
    changed = reader.get_group(acme, group.id)
    assert changed is not None and changed.source_ids == (sensor,)
    empty = write(store, lambda tx: tx.create_group(acme, "Empty", {}, []))
    assert [g.name for g in reader.list_groups(acme)] == ["Pump", "Empty"]
    assert reader.get_group(acme, empty.id) == empty and empty.source_ids == ()
    write(store, lambda tx: tx.delete_source(sensor))  # a deleted source leaves its groups
    after = reader.get_group(acme, group.id)
    assert after is not None and after.source_ids == ()
    write(store, lambda tx: tx.delete_group(group.id))
    assert reader.get_group(acme, group.id) is None


def test_settings_first_writer_wins(store: Store) -> None:
    assert write(store, lambda tx: tx.put_setting("secret", "one")) == "one"
    assert write(store, lambda tx: tx.put_setting("secret", "two")) == "one"
    assert store.reader().get_setting("secret") == "one"
    assert store.reader().get_setting("absent") is None


def test_deletes_take_their_points(store: Store, world: dict[str, int]) -> None:
    s, t = world["temp"], world["their_temp"]
    write(store, lambda tx: tx.append(batch([s, t], [T0, T0], [1.0, 2.0])))
    write(
        store,
        lambda tx: tx.create_key(
            world["acme"], "kb", "h", "", ("data:read",), world["farm"], False
        ),
    )
    reader = store.reader()
    assert reader.bucket_stats(world["farm"]) == {"sources": 1, "points": 1, "keys": 1}
    write(store, lambda tx: tx.delete_bucket(world["farm"]))
    assert reader.count(s, TimeRange(None, None)) == 0
    assert reader.get_series(s) is None and reader.get_key("kb") is None
    assert reader.count(t, TimeRange(None, None)) == 1  # the other organisation is untouched
    write(store, lambda tx: tx.delete_org(world["globex"]))
    assert reader.count(t, TimeRange(None, None)) == 0
    assert reader.get_org("globex") is None and reader.get_bucket(world["globex"], "plant") is None


def test_delete_source(store: Store, world: dict[str, int]) -> None:
    s = world["temp"]
    write(store, lambda tx: tx.append(batch([s], [T0], [1.0])))
    write(store, lambda tx: tx.delete_source(world["sensor"]))
    reader = store.reader()
    assert reader.get_source(world["farm"], "ESP32-001") is None
    assert reader.count(s, TimeRange(None, None)) == 0 and reader.get_series(s) is None


def test_reopen_keeps_data_and_disk_bytes(settings: Settings, world: dict[str, int]) -> None:
    again = open_store(settings)
    again.open()  # opening an up-to-date store migrates nothing and loses nothing
    try:
        assert again.reader().get_org("acme") is not None
        assert again.reader().disk_bytes() > 0
    finally:
        again.close()
