"""The ingest pipeline's series cache (ingest/series_cache.py), both of it (numpy's arrays and
the compiled table of _series_ids.c), against a plain dict: every look-up, small requests and
large, across rebuilds of its arrays or growths of its table, organisations, collisions of its
hashes and clears."""

from __future__ import annotations

import json
import os
import random
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from sensorbase.ingest import series_cache
from sensorbase.ingest.series_cache import _MERGE_AT as MERGE_AT
from sensorbase.ingest.series_cache import (
    CacheKey,
    CompiledSeriesCache,
    Hit,
    SeriesCache,
    new_series_cache,
)
from sensorbase.model import SeriesKey

Cache = SeriesCache | CompiledSeriesCache


@pytest.fixture(params=["numpy", "compiled"])
def make(request: pytest.FixtureRequest) -> Callable[[], Cache]:
    """Each cache; the compiled one missing only where no C compiler is, and never under
    SENSORBASE_REQUIRE_COMPILED=1 (CI)."""
    if request.param == "numpy":
        return SeriesCache
    if series_cache._SeriesIds is None:
        assert os.environ.get("SENSORBASE_REQUIRE_COMPILED") != "1", "_series_ids is not built"
        pytest.skip("_series_ids is not built (no C compiler here)")
    return CompiledSeriesCache


class Colliding(str):
    """A name whose Python hash is fixed: keys differing only in such names have one hash,
    which forces the cache's collision handling through its real code."""

    def __hash__(self) -> int:
        return 42


def fresh(text: str) -> str:
    """An equal str that is another object (as a decoder makes for each request)."""
    return (text + " ")[:-1]


def looked_up(cache: Cache, org_id: int, keys: list[Any]) -> list[Hit | None]:
    series_id, bucket_id = cache.get(org_id, keys)
    return [
        None if s < 0 else (s, b)
        for s, b in zip(series_id.tolist(), bucket_id.tolist(), strict=True)
    ]


def expected(model: dict[CacheKey, Hit], org_id: int, keys: list[SeriesKey]) -> list[Hit | None]:
    return [model.get((org_id, k.bucket, k.source, k.field)) for k in keys]


@pytest.mark.parametrize("request_size", [1, 7, 8, 500])
def test_answers_as_a_dict_would(make: Callable[[], Cache], request_size: int) -> None:
    rng = random.Random(request_size)
    cache, model = make(), {}
    names = [f"s{i}" for i in range(3 * MERGE_AT)]
    next_id = 1
    for _ in range(40):
        learned: dict[CacheKey, Hit] = {}
        for _ in range(rng.choice([1, 3, 200, MERGE_AT + 500])):  # small writes and rebuilds both
            org = rng.choice([1, 2])
            key = (org, rng.choice(["b1", "b2"]), fresh(rng.choice(names)), rng.choice(["t", "h"]))
            if key not in model and key not in learned:
                learned[key] = (next_id, 10 * org + int(key[1][1]))
                next_id += 1
        cache.update(learned)
        model.update(learned)
        for org in (1, 2, 3):
            keys = [
                SeriesKey(
                    fresh(rng.choice(["b1", "b2", "b3"])),
                    fresh(rng.choice(names)),
                    fresh(rng.choice(["t", "h"])),
                )
                for _ in range(request_size)
            ]
            assert looked_up(cache, org, keys) == expected(model, org, keys)
    assert len(cache) == len(model)


def test_one_bucket_and_field_per_request(make: Callable[[], Cache]) -> None:
    """The usual request (one bucket, one field, shared str objects), its names compared
    once, and a name the cache never saw."""
    cache = make()
    n = MERGE_AT + 1000
    cache.update({(1, "b", f"s{i}", "v"): (i + 1, 7) for i in range(n)})
    bucket, field = fresh("b"), fresh("v")
    keys = [SeriesKey(bucket, fresh(f"s{i}"), field) for i in range(0, n + 400, 3)]
    hits = looked_up(cache, 1, keys)
    assert hits == [(i + 1, 7) if i < n else None for i in range(0, n + 400, 3)]
    other = fresh("w")
    assert (
        looked_up(cache, 1, [SeriesKey(bucket, fresh(f"s{i}"), other) for i in range(9)])
        == [None] * 9
    )


def test_organisations_do_not_share_ids(make: Callable[[], Cache]) -> None:
    cache = make()
    cache.update({(1, "b", f"s{i}", "v"): (i + 1, 5) for i in range(MERGE_AT + 500)})
    cache.update({(2, "b", "s1", "v"): (9001, 6)})
    for size in (1, 20):
        keys = [SeriesKey("b", f"s{i}", "v") for i in range(size)]
        assert (
            looked_up(cache, 2, keys) == [None, (9001, 6)] + [None] * (size - 2)
            if size > 1
            else [None]
        )
        assert looked_up(cache, 3, keys) == [None] * size


@pytest.mark.parametrize("request_size", [1, 10])
def test_a_hash_collision_never_gives_another_series(
    make: Callable[[], Cache], request_size: int
) -> None:
    cache = make()
    filler = {(1, "b", f"s{i}", "v"): (i + 1, 5) for i in range(MERGE_AT + 100)}  # arrays
    cache.update({**filler, (1, "b", Colliding("a"), "v"): (5001, 5)})
    if isinstance(cache, SeriesCache):
        assert not cache._recent  # the first colliding key is in the arrays
    # One learned later (its hash the arrayed key's), two learned together (one hash)
    cache.update({(1, "b", Colliding("b"), "v"): (5002, 5)})
    cache.update({(1, "b", Colliding(f"c{i}"), "v"): (5003 + i, 5) for i in range(MERGE_AT)})
    if isinstance(cache, SeriesCache):
        assert len(cache._collided) == MERGE_AT + 1
    pad = [SeriesKey("b", f"s{i}", "v") for i in range(request_size - 1)]
    for source, hit in [
        ("a", (5001, 5)),
        ("b", (5002, 5)),
        ("c0", (5003, 5)),
        (f"c{MERGE_AT - 1}", (5002 + MERGE_AT, 5)),
        ("never", None),
    ]:
        found = looked_up(cache, 1, [SeriesKey("b", Colliding(source), "v"), *pad])
        assert found[0] == hit
        assert found[1:] == [(i + 1, 5) for i in range(request_size - 1)]


def test_a_key_learned_again_takes_its_new_ids(make: Callable[[], Cache]) -> None:
    cache = make()
    cache.update({(1, "b", f"s{i}", "v"): (i + 1, 5) for i in range(MERGE_AT + 500)})
    cache.update({(1, "b", f"s{i}", "v"): (i + 10_000, 5) for i in range(0, MERGE_AT + 500, 2)})
    cache.update({(1, "b", "x", "v"): (1, 1)})  # (a small update: not merged yet)
    keys = [SeriesKey("b", f"s{i}", "v") for i in range(MERGE_AT + 500)]
    assert looked_up(cache, 1, keys) == [
        (i + (10_000 if i % 2 == 0 else 1), 5) for i in range(MERGE_AT + 500)
    ]
    if isinstance(cache, SeriesCache):
        assert not cache._collided


def test_clear_forgets_everything(make: Callable[[], Cache]) -> None:
    cache = make()
    cache.update({(1, "b", f"s{i}", "v"): (i + 1, 5) for i in range(MERGE_AT + 500)})
    assert looked_up(cache, 1, [SeriesKey("b", "s3", "v")]) == [(4, 5)]  # (in the small dict)
    cache.clear()
    assert len(cache) == 0
    for size in (1, 30):
        series_id, bucket_id = cache.get(1, [SeriesKey("b", f"s{i}", "v") for i in range(size)])
        assert (series_id == -1).all() and (bucket_id == -1).all()
    cache.update({(1, "b", "s3", "v"): (77, 5)})
    assert looked_up(cache, 1, [SeriesKey("b", "s3", "v")]) == [(77, 5)]


def test_no_keys(make: Callable[[], Cache]) -> None:
    series_id, bucket_id = make().get(1, [])
    assert series_id.dtype == np.int64 and len(series_id) == len(bucket_id) == 0


def test_keys_of_another_type_by_their_attributes(make: Callable[[], Cache]) -> None:
    """Keys that are not SeriesKeys (read by attribute in the compiled table), with names of
    other kinds of str (not ASCII: compared by their code points)."""
    cache = make()
    cache.update({(1, "b", f"s{i}é", "v"): (i + 1, 5) for i in range(MERGE_AT + 10)})
    cache.update({(1, "b", "😀", "v"): (1_000_000, 5)})
    keys = [SimpleNamespace(bucket="b", source=fresh(f"s{i}é"), field="v") for i in range(40)]
    keys.append(SimpleNamespace(bucket="b", source=fresh("😀"), field="v"))
    keys.append(SimpleNamespace(bucket="b", source="s1e", field="v"))
    assert looked_up(cache, 1, keys) == [(i + 1, 5) for i in range(40)] + [(1_000_000, 5), None]


def test_the_compiled_table_where_built() -> None:
    """The pipeline's cache is the compiled one where it is built."""
    expected = CompiledSeriesCache if series_cache._SeriesIds is not None else SeriesCache
    assert type(new_series_cache()) is expected


def test_a_key_without_its_names_is_an_error(make: Callable[[], Cache]) -> None:
    cache = make()
    cache.update({(1, "b", f"s{i}", "v"): (i + 1, 5) for i in range(MERGE_AT + 10)})
    keys: list[Any] = [SeriesKey("b", f"s{i}", "v") for i in range(20)]
    keys.append(SimpleNamespace(bucket="b", field="v"))
    with pytest.raises(AttributeError):
        cache.get(1, keys)
    assert looked_up(cache, 1, keys[:20]) == [(i + 1, 5) for i in range(20)]


def test_the_compiled_table_refuses_a_change_while_it_compares(
    make: Callable[[], Cache],
) -> None:
    """A name whose comparison changes the cache (no honest name does) gets an error, never a
    table moved under a look-up."""
    cache = make()
    if not isinstance(cache, CompiledSeriesCache):
        pytest.skip("numpy's arrays are replaced, not changed in place")

    class Meddling(str):
        def __eq__(self, other: object) -> bool:
            cache.update({(1, "b", f"m{i}", "v"): (i, 1) for i in range(100)})
            return str.__eq__(self, other)

        __hash__ = str.__hash__

    cache.update({(1, "b", "x", "v"): (1, 5)})
    with pytest.raises(RuntimeError, match="in use"):
        cache.get(1, [SeriesKey("b", Meddling("x"), "v")])
    assert looked_up(cache, 1, [SeriesKey("b", "x", "v")]) == [(1, 5)]


def _decoded_keys(points: list[dict[str, Any]], bucket: str | None) -> Any:
    """The keys the native write's compiled decoder hands the pipeline for these points: as
    names (`_columns.Keys`) for a body of many series."""
    columns = pytest.importorskip("sensorbase.dialects.native._columns")
    decoded = columns.decode(json.dumps(points, ensure_ascii=False).encode(), 10**6, bucket,
                             None, SeriesKey, 1)  # fmt: skip
    assert decoded is not None
    return decoded[0]


@pytest.mark.parametrize("accent", ["", "é", "传感器"])
def test_a_decoders_names_find_what_its_keys_find(make: Callable[[], Cache], accent: str) -> None:
    """Keys handed over as names (their bytes and hashes, no SeriesKey or str made) find the
    same ids as the same keys as SeriesKeys: known and unknown sources, two buckets and fields,
    names not only ASCII, another organisation's keys, keys learned from another decode."""
    cache, model = make(), {}
    known = [f"dev{i}{accent if i % 3 == 0 else ''}" for i in range(0, 3000, 2)]
    learned = {
        (1, bucket, source, field): (i + 1, 7 if bucket == "farm" else 8)
        for i, (bucket, source, field) in enumerate(
            (b, s, f) for b in ("farm", "barn") for s in known for f in ("t", "température")
        )
    }
    learned[(2, "farm", "dev0", "t")] = (99_999, 9)
    cache.update(learned)
    model.update(learned)
    sources = [f"dev{i}{accent if i % 3 == 0 else ''}" for i in range(2000)]
    for bucket, field in (("farm", "t"), ("barn", "température"), ("barn", "h")):
        points = [{"source": s, "field": field, "value": 1, "time": 1} for s in sources]
        points += [{"source": s, "field": "t", "value": 1, "time": 2} for s in sources[:99]]
        keys = _decoded_keys(points, bucket)
        plain = [SeriesKey(fresh(k.bucket), fresh(k.source), fresh(k.field)) for k in keys]
        assert type(keys) is not list and len(keys) == len(plain)
        for org in (1, 2, 3):
            want = expected(model, org, plain)
            if org == 1 and field != "h":  # (known and unknown sources both)
                assert 0 < want.count(None) < len(want)
            assert looked_up(cache, org, keys) == looked_up(cache, org, plain) == want
    owned = [{"bucket": "farm", "source": "dev0", "field": "t", "value": 1, "time": t}
             for t in range(3)]  # fmt: skip
    few = _decoded_keys(owned, None)  # (one series: a list)
    assert type(few) is list and looked_up(cache, 2, few) == [(99_999, 9)]
