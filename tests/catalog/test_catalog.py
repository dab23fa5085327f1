"""The catalog service, through real stores (SQLite and PostgreSQL): tenancy checked on every
operation, and deletes heard by every node sharing the store."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from sensorbase.auth.keys import Principal
from sensorbase.errors import Conflict, Forbidden, InvalidInput, NotFound
from sensorbase.model import PointBatch, SeriesKey, TimeRange
from sensorbase.services import Services
from sensorbase.settings import Settings
from sensorbase.storage import open_store


@pytest.fixture
def node(settings: Settings) -> Iterator[Services]:
    svc = Services(settings, open_store(settings))
    svc.start()
    yield svc
    svc.stop()


def admin_of(svc: Services, org_key: str, server_admin: bool = False) -> Principal:
    org = svc.store.reader().get_org(org_key)
    assert org is not None
    return Principal(f"k-{org_key}", org.id, ("admin",), None, server_admin)


def batch(bucket: str, time_us: int, source: str = "dev") -> PointBatch:
    return PointBatch(
        [SeriesKey(bucket, source, "t")],
        np.zeros(1, np.int32),
        np.array([time_us], np.int64),
        np.array([1.0]),
    )


async def test_another_organisation_can_neither_read_write_nor_detect(node: Services) -> None:
    root = admin_of(node, "default", server_admin=True)
    await node.catalog.orgs.create(root, "other", "Other")
    mine, theirs = root, admin_of(node, "other")
    await node.catalog.buckets.create(mine, "farm", "Farm")
    await node.ingest.write(mine, batch("farm", 1_000_000))
    for attempt in (
        node.catalog.buckets.get(theirs, "farm"),
        node.catalog.sources.get(theirs, "farm", "dev"),
        node.catalog.sources.page(theirs, "farm", 10, 0),
        node.catalog.buckets.delete(theirs, "farm"),
        node.ingest.write(theirs, batch("farm", 2_000_000)),
    ):
        with pytest.raises(NotFound) as refused:
            await attempt
        assert refused.value.what == "bucket"  # as if it did not exist
    assert await node.catalog.sources.find(theirs, "dev") is None
    assert await node.query.select(theirs) == []
    # The other organisation may use the same names for its own things.
    await node.catalog.buckets.create(theirs, "farm", "Farm")
    [(_, _, source)] = await node.catalog.series.described(
        mine, await node.query.select(mine, "farm")
    )
    assert source is not None and source.org_id == mine.org_id


async def test_a_key_limited_to_one_bucket_reaches_no_other(node: Services) -> None:
    admin = admin_of(node, "default")
    one = await node.catalog.buckets.create(admin, "one", "One")
    await node.catalog.buckets.create(admin, "two", "Two")
    limited = Principal("k-limited", admin.org_id, ("data:write", "data:read"), one.id, False)
    await node.ingest.write(limited, batch("one", 1_000_000))
    with pytest.raises(Forbidden):
        await node.ingest.write(limited, batch("two", 1_000_000))
    with pytest.raises(Forbidden):
        await node.catalog.buckets.get(limited, "two")
    listed, total = await node.catalog.buckets.page(limited, 100, 0)
    assert [b.key for b in listed] == ["one"] and total == 1
    with pytest.raises(Forbidden):  # groups span buckets
        await node.catalog.groups.all(limited)
    with pytest.raises(Forbidden):
        await node.catalog.buckets.create(limited, "three", "Three")  # no admin scope


async def test_names_conflict_and_unknown_members_are_named(node: Services) -> None:
    admin = admin_of(node, "default")
    farm = await node.catalog.buckets.create(admin, "farm", "Farm")
    with pytest.raises(Conflict) as taken:
        await node.catalog.buckets.create(admin, "farm", "Again")
    assert (taken.value.what, taken.value.name) == ("bucket", "farm")
    await node.catalog.sources.create(admin, farm, "dev", "Device")
    with pytest.raises(Conflict):
        await node.catalog.sources.create(admin, farm, "other", "Device", unique_name=True)
    with pytest.raises(InvalidInput) as refused:
        await node.catalog.groups.create(admin, "g", {}, [(None, "dev"), (None, "x"), ("no", "y")])
    assert [(p.index, p.kind) for p in refused.value.problems] == [
        (1, "unknown_source"),
        (2, "unknown_source"),
    ]
    with pytest.raises(InvalidInput) as no_bucket:
        await node.catalog.keys.create(admin, "k", ("data:read",), "nowhere")
    assert no_bucket.value.problems[0].field == "bucket"


async def test_unknown_sources_are_all_named_when_they_may_not_be_created(node: Services) -> None:
    from sensorbase.ingest.pipeline import WriteOptions

    admin = admin_of(node, "default")
    await node.catalog.buckets.create(admin, "farm", "Farm")
    two = PointBatch(
        [SeriesKey("farm", "a", "t"), SeriesKey("farm", "b", "t")],
        np.array([0, 1], np.int32),
        np.array([1_000_000, 1_000_000], np.int64),
        np.array([1.0, 2.0]),
    )
    with pytest.raises(NotFound) as refused:
        await node.ingest.write(admin, two, WriteOptions(create_sources=False))
    assert refused.value.what == "source" and "'a', 'b'" in refused.value.detail


@pytest.fixture
def two_nodes(settings: Settings) -> Iterator[tuple[Services, Services]]:
    a = Services(settings, open_store(settings))
    a.start()
    b = Services(settings, open_store(settings))
    b.start()
    yield a, b
    b.stop()
    a.stop()


async def test_a_delete_on_one_node_reaches_the_other_nodes_cache(
    two_nodes: tuple[Services, Services],
) -> None:
    a, b = two_nodes
    now = [0.0]
    a.ingest.clock = lambda: now[0]
    admin = admin_of(a, "default")
    await a.catalog.buckets.create(admin, "b", "b")
    await a.ingest.write(admin, batch("b", 1_000_000))  # node A now caches the series id
    old = await b.catalog.sources.get(admin, "b", "dev")
    await b.catalog.sources.delete(admin, "b", "dev")
    now[0] += a.settings.key_cache_s  # A looks the catalog version up again
    await a.ingest.write(admin, batch("b", 2_000_000))
    again = await b.catalog.sources.get(admin, "b", "dev")
    assert again.id != old.id  # re-created, not written into the deleted one (ids never reused)
    [series] = await b.query.select(admin, "b")
    [points] = await b.query.points([series], TimeRange(None, None), 10)
    assert points.time_us.tolist() == [2_000_000]


def counted_reads(node: Services) -> list[object]:
    """The catalog's reads of the store from now on (the function each read runs)."""
    reads: list[object] = []
    work = node.catalog.work
    read = work.read

    async def counted(fn: object) -> object:
        reads.append(fn)
        return await read(fn)  # type: ignore[arg-type]

    work.read = counted  # type: ignore[method-assign]
    return reads


async def test_organisations_are_read_once_per_key_cache_and_forgotten_on_change(
    node: Services,
) -> None:
    """The organisation a Datacooee or DiagRAMS request names is read at most once per
    `key_cache_s`; one created or deleted here is seen at once."""
    orgs, root = node.catalog.orgs, admin_of(node, "default", server_admin=True)
    reads = counted_reads(node)
    assert await orgs.named("ghost") is None
    assert await orgs.named("ghost") is None and len(reads) == 1
    made = await orgs.create(root, "ghost", "Ghost")
    assert await orgs.named("ghost") == made  # created here: not the cached absence
    mine = Principal("k-ghost", made.id, ("admin",), None, False)
    assert await orgs.mine(mine) == made and len(reads) == 3
    assert await orgs.mine(mine) == made and len(reads) == 3
    node.keys.clock = lambda: 1e12  # key_cache_s later
    assert await orgs.mine(mine) == made and len(reads) == 4
    await orgs.delete(root, "ghost")
    assert await orgs.named("ghost") is None
    with pytest.raises(NotFound):
        await orgs.mine(mine)


async def test_devices_are_read_once_per_key_cache_per_principal_and_forgotten_on_change(
    node: Services,
) -> None:
    """What Databoom's push and Datacooee's upload look up on every request (a source by its
    key, a source's series) is read once per `key_cache_s`, for the principal's organisation
    and bucket limit alone; a change made here is seen at once."""
    sources, root = node.catalog.sources, admin_of(node, "default", server_admin=True)
    await node.catalog.orgs.create(root, "other", "Other")
    for name in ("farm", "barn"):
        await node.catalog.buckets.create(root, name, name)
    await node.ingest.write(root, batch("farm", 1_000_000))
    reads = counted_reads(node)
    found = await sources.find(root, "dev", "data:write", recent=True)
    assert found is not None and found[1].key == "farm"
    assert await sources.find(root, "dev", "data:write", recent=True) == found and len(reads) == 1
    assert await sources.find(root, "dev", "data:write") == found and len(reads) == 2  # fresh
    series = await sources.series_of(root, found[0], recent=True)
    assert await sources.series_of(root, found[0], recent=True) == series and len(reads) == 3
    assert await sources.series_of(root, found[0]) == series and len(reads) == 4  # fresh
    # Neither another organisation nor a key limited to another bucket gets the cached one.
    assert await sources.find(admin_of(node, "other"), "dev", "data:write", recent=True) is None
    barn = await node.catalog.buckets.get(root, "barn")
    limited = Principal("k-barn", root.org_id, ("admin",), barn.id, False)
    assert await sources.find(limited, "dev", "data:write", recent=True) is None
    with pytest.raises(Forbidden):
        await sources.find(limited, "dev", "data:write", forbid_elsewhere=True, recent=True)
    with pytest.raises(Forbidden):  # the scope is checked before the cache
        await sources.find(
            Principal("k-r", root.org_id, ("read",), None, False), "dev", "data:write"
        )
    assert len(reads) == 8  # three lookups above and the bucket's: none answered from cache
    node.keys.clock = lambda: 1e12  # key_cache_s later: read again
    assert await sources.find(root, "dev", "data:write", recent=True) == found and len(reads) == 9
    await sources.delete(root, "farm", "dev")
    assert await sources.find(root, "dev", "data:write", recent=True) is None
