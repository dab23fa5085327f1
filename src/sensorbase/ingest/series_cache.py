"""The ingest pipeline's cache of series ids: (organisation, bucket, source, field) -> (series
id, bucket id), looked up a whole request's keys at once.

`new_series_cache()` gives the compiled table (`_series_ids.c`, built by `pip install` where a
C compiler and Python's headers are found): one slot a key, a request's slots and sources
prefetched in passes, so that at 100,000 series a key costs about one miss of the CPU's caches
(measured in process, 5,000 keys a request against 100,000 cached: ~0.03-0.05 us a key, numpy's
arrays below ~0.33-0.44). Where it is not built, `SeriesCache` below, in numpy; both answer as
a dict would (tests/ingest/test_series_cache.py).

Why not a dict of key tuples (what it was): a look-up walks a chain of dependent loads (the
dict's index, its entry, the stored tuple, its strings), each a cache miss once the dict
outgrows the CPU's caches. Measured in process, 5,000 keys of fresh strings as a decoder
makes them: ~75 ns a key against 1,000 cached keys, ~660 ns against 100,000; and a fleet
written time-major (one point per series per round) names a key a point, so at 100,000 series
that look-up was 35-42% of the server's samples (benchmarks/README.md).

`SeriesCache`: each key's hash is Python's own str hashes (SipHash, keyed per process, cached
on the str) mixed with numpy, found in one sorted uint64 array (through a table of where each
value of its top bits starts), and every hit verified against the stored key: the
organisation, and the bucket and field names by their numbers (`_names`), as int64; the source
as a str object, by numpy's elementwise comparison. The loads of one key do not wait on
another's, so their misses overlap. A hash that matches and a key that does not is a miss,
never another series' id. A key whose hash equals a cached key's (a collision) is kept aside
in a dict, checked per key after the search, like the keys learned since the arrays were last
rebuilt (rebuilding them for every write that learns one new key would cost O(cached keys) a
write). Requests of a few keys (single points) look them up in a dict of the keys so looked
up before.

Measured (in process, this machine, 5,000 keys a request, loaded): ~420-610 ns a key against
100,000 cached keys (the dict: 630-1,060 in the same runs), ~330-420 against 1,000 (the dict:
~160-210; at 1,000 series a 5,000-point request names 1,000 keys, so ~0.03 us a point).
"""

from __future__ import annotations

from array import array
from collections.abc import Sequence
from itertools import chain
from typing import Any

import numpy as np
import numpy.typing as npt

from sensorbase.model import SeriesKey

CacheKey = tuple[int, str, str, str]  # (organisation id, bucket, source, field)
Hit = tuple[int, int]  # (series id, bucket id)
Ids = npt.NDArray[np.int64]

# Odd multipliers of the mix (from splitmix64 and murmur3's finaliser)
_K1 = np.uint64(0x9E3779B97F4A7C15)
_K2 = np.uint64(0xBF58476D1CE4E5B9)
_K3 = np.uint64(0x94D049BB133111EB)
_K4 = np.uint64(0xFF51AFD7ED558CCD)
# Below this many keys a request is looked up key by key (numpy's calls cost more than they
# save for a handful).
FEW_KEYS = 8
# The keys learned since the last rebuild are merged into the arrays when there are this many,
# or an eighth of the cached keys if more: a rebuild sorts every key, so a series created
# alone costs ~8 rebuilds' share of a key, not a rebuild. Below it a cache is a dict alone,
# which is faster while it fits in the CPU's caches (measured, 5,000-key requests, best/median
# a key: 1,000 cached keys, dict 198/254 ns, arrays 287/344; 4,000: 240/520, 264/346;
# 16,000: 336/773, 309/354; 64,000: 568/1,595, 353/609).
_MERGE_AT = 4096


_MASK = 0xFFFFFFFFFFFFFFFF
_MISS = (-1, -1)
_K = [int(k) for k in (_K1, _K2, _K3, _K4)]


def mix(org_id: int | Ids, bucket: Ids, source: Ids, field: Ids) -> npt.NDArray[np.uint64]:
    """One uint64 a key from the names' Python hashes (int64 arrays) and the organisation."""
    h = bucket.view(np.uint64) * _K1
    h ^= source.view(np.uint64)
    h *= _K2
    h ^= field.view(np.uint64)
    h *= _K3
    h ^= np.asarray(org_id, np.int64).view(np.uint64)
    h *= _K4
    h ^= h >> np.uint64(31)
    return h


def mix_one(org_id: int, bucket: str, source: str, field: str) -> int:
    """`mix` of one key, in Python's ints (numpy's calls cost more for one)."""
    k1, k2, k3, k4 = _K
    h = (hash(bucket) & _MASK) * k1 & _MASK
    h = ((h ^ (hash(source) & _MASK)) * k2) & _MASK
    h = ((h ^ (hash(field) & _MASK)) * k3) & _MASK
    h = ((h ^ (org_id & _MASK)) * k4) & _MASK
    return h ^ (h >> 31)


class SeriesCache:
    """Not thread-safe: the pipeline holds its lock around every call."""

    def __init__(self) -> None:
        self._clear()

    def _clear(self) -> None:
        self._hash = np.empty(0, np.uint64)  # sorted, each value once
        # Where the hashes of each value of their top `_bits` bits start in `_hash` (and its
        # length last): a key's hash is then found in a range of ~1 entry, by a few
        # vectorised steps (a binary search costs ~17 dependent steps a key).
        self._bits = 1
        self._starts = np.zeros(3, np.intp)
        # The arrayed keys, in `_hash`'s order, and their ids. Bucket and field names are
        # numbered (`_names`): a request's few names are then compared as ints, and only
        # its sources as str objects.
        self._org = np.empty(0, np.int64)
        self._bucket = np.empty(0, np.int64)
        self._source = np.empty(0, object)
        self._field = np.empty(0, np.int64)
        self._series_id = np.empty(0, np.int64)
        self._bucket_id = np.empty(0, np.int64)
        self._names: dict[str, int] = {}
        self._recent: dict[CacheKey, Hit] = {}  # learned since the arrays were built
        self._collided: dict[CacheKey, Hit] = {}  # hash equal to an arrayed key's
        self._few: dict[CacheKey, Hit] = {}  # arrayed keys looked up by small requests

    def clear(self) -> None:
        self._clear()

    def __len__(self) -> int:
        return len(self._hash) + len(self._recent) + len(self._collided)  # (_few: arrayed)

    def get(self, org_id: int, keys: Sequence[SeriesKey]) -> tuple[Ids, Ids]:
        """Each key's (series id, bucket id), -1 where not cached."""
        n = len(keys)
        if 0 < n < FEW_KEYS:  # (one numpy call: a one-point write's look-up is ~1 us)
            get = self._get_one
            hits = [get((org_id, k.bucket, k.source, k.field)) or _MISS for k in keys]
            both = np.array(hits, np.int64)
            return both[:, 0], both[:, 1]
        series_id = np.full(n, -1, np.int64)
        bucket_id = np.full(n, -1, np.int64)
        if not n or not len(self):
            return series_id, bucket_id
        if not len(self._hash):  # a small cache: all in the dict of recent keys
            recent = self._recent
            hits = [recent.get((org_id, k.bucket, k.source, k.field), _MISS) for k in keys]
            _put(hits, None, series_id, bucket_id)
            return series_id, bucket_id
        # (list comprehensions: CPython reads a slot faster in one than through attrgetter)
        buckets = [k.bucket for k in keys]
        sources = [k.source for k in keys]
        fields = [k.field for k in keys]
        found, at = self._search(org_id, buckets, sources, fields)
        series_id[found] = self._series_id[at]
        bucket_id[found] = self._bucket_id[at]
        for aside in (self._recent, self._collided):
            if aside:
                missing = np.flatnonzero(series_id < 0)
                hits = [
                    aside.get((org_id, buckets[k], sources[k], fields[k]), _MISS)
                    for k in missing.tolist()
                ]
                _put(hits, missing, series_id, bucket_id)
        return series_id, bucket_id

    def get_one(self, org_id: int, keys: Sequence[SeriesKey]) -> Hit | None:
        """The (series id, bucket id) of the one key in `keys`, if cached: `get` without its
        arrays, for a one-point write."""
        key = keys[0]
        return self._get_one((org_id, key.bucket, key.source, key.field))

    def _get_one(self, named: CacheKey) -> Hit | None:
        """One key's ids: from a dict of the keys so looked up already (a dict's look-up of
        one key costs a few times less than the arrays' numpy calls), else as `get` finds
        them."""
        hit = self._few.get(named) or self._recent.get(named) or self._collided.get(named)
        if hit is not None or not len(self._hash):
            return hit
        org_id, bucket, source, field = named
        at = self._find_one(mix_one(org_id, bucket, source, field))
        if at >= 0 and self._is(at, named):
            hit = (self._series_id.item(at), self._bucket_id.item(at))
            self._few[named] = hit
        return hit

    def _search(
        self, org_id: int | Ids, buckets: list[str], sources: list[str], fields: list[str]
    ) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
        """The keys found in the arrays (their indexes), and where (verified: the same
        organisation and names, not only the same hash)."""
        h = mix(org_id, self._hashes(buckets), _hashes(sources), self._hashes(fields))
        where = self._find(h)
        found = np.flatnonzero(where >= 0)
        at = where[found]
        same = self._org[at] == (org_id if isinstance(org_id, int) else org_id[found])
        same &= self._bucket[at] == self._numbers(buckets, found)
        same &= self._field[at] == self._numbers(fields, found)
        same &= self._source[at] == np.fromiter(sources, object, len(sources))[found]
        return found[same], at[same]

    def _hashes(self, names: list[str]) -> Ids:
        """The names' Python hashes; one hash repeated when all are one name (as a decoder's
        bucket and field names usually are: list.count compares by identity first)."""
        if names.count(names[0]) == len(names):
            return np.full(len(names), hash(names[0]), np.int64)
        return _hashes(names)

    def _numbers(self, names: list[str], at: npt.NDArray[np.intp]) -> Ids | int:
        """The numbers of the bucket or field names at `at` (-1: a name not cached)."""
        known = self._names
        if names.count(names[0]) == len(names):
            return known.get(names[0], -1)
        return np.fromiter((known.get(names[k], -1) for k in at.tolist()), np.int64, len(at))

    def _find_one(self, h: int) -> int:
        """`_find` of one hash."""
        top = h >> (64 - self._bits)
        for at in range(self._starts.item(top), self._starts.item(top + 1)):
            if self._hash.item(at) == h:
                return at
        return -1

    def _is(self, at: int, named: CacheKey) -> bool:
        """Whether the arrayed key at `at` is `named`."""
        org_id, bucket, source, field = named
        names = self._names
        return (
            self._org.item(at) == org_id
            and self._bucket.item(at) == names.get(bucket, -1)
            and self._field.item(at) == names.get(field, -1)
            and self._source.item(at) == source
        )

    def _find(self, h: npt.NDArray[np.uint64]) -> npt.NDArray[np.intp]:
        """Where each hash is in `_hash`, -1 where it is not."""
        top = (h >> np.uint64(64 - self._bits)).astype(np.intp)
        at = self._starts[top]
        end = self._starts[top + 1]
        out = np.full(len(h), -1, np.intp)
        todo = np.arange(len(h))
        while len(todo):  # each pass one entry further into each hash's range
            live = at < end
            todo, at, end = todo[live], at[live], end[live]
            equal = self._hash[at] == h[todo]
            out[todo[equal]] = at[equal]
            unequal = ~equal
            todo, at, end = todo[unequal], at[unequal] + 1, end[unequal]
        return out

    def update(self, learned: dict[CacheKey, Hit]) -> None:
        """Add keys resolved by a write; a key cached already takes its new ids, as in a
        dict (learned again by writes in flight together)."""
        if not learned:
            return
        keys = list(learned)
        fresh = np.ones(len(keys), bool)
        if len(self._hash):
            org, buckets, sources, fields = _columns(keys)
            found, at = self._search(org, buckets, sources, fields)
            hits = list(learned.values())
            self._series_id[at] = [hits[k][0] for k in found.tolist()]
            self._bucket_id[at] = [hits[k][1] for k in found.tolist()]
            fresh[found] = False
        for k in np.flatnonzero(fresh).tolist():
            key = keys[k]
            aside = self._collided if key in self._collided else self._recent
            aside[key] = learned[key]
        for key in learned.keys() & self._few.keys():
            self._few[key] = learned[key]
        if len(self._recent) >= max(_MERGE_AT, len(self._hash) // 8):
            self._merge()

    def _merge(self) -> None:
        """The keys learned since the last rebuild (none of them arrayed) moved into the
        sorted arrays; a key whose hash an arrayed or another new key has (a collision) goes
        to `_collided`."""
        recent, self._recent = self._recent, {}
        keys = list(recent)
        hits = list(recent.values())
        n = len(keys)
        org, buckets, sources, fields = _columns(keys)
        series_id = np.fromiter((hit[0] for hit in hits), np.int64, n)
        bucket_id = np.fromiter((hit[1] for hit in hits), np.int64, n)
        h = mix(org, _hashes(buckets), _hashes(sources), _hashes(fields))
        order = np.argsort(h, kind="stable")
        first = np.ones(n, bool)  # the first new key of its hash
        first[order[1:]] = h[order[1:]] != h[order[:-1]]
        new = first & (self._find(h) < 0)
        for k in np.flatnonzero(~new).tolist():
            self._collided[keys[k]] = hits[k]
        self._append(np.flatnonzero(new), h, org, buckets, sources, fields, series_id, bucket_id)

    def _append(
        self,
        new: npt.NDArray[np.intp],
        h: npt.NDArray[np.uint64],
        org: Ids,
        buckets: list[str],
        sources: list[str],
        fields: list[str],
        series_id: Ids,
        bucket_id: Ids,
    ) -> None:
        """The keys at `new` (hashes not arrayed yet) added to the arrays, kept sorted."""
        hashes = np.concatenate([self._hash, h[new]])
        order = np.argsort(hashes, kind="stable")
        number = self._names.setdefault
        at = new.tolist()
        m = len(at)

        def grown(old: npt.NDArray[Any], more: npt.NDArray[Any]) -> npt.NDArray[Any]:
            return np.concatenate([old, more])[order]

        self._org = grown(self._org, org[new])
        self._bucket = grown(
            self._bucket,
            np.fromiter((number(buckets[k], len(self._names)) for k in at), np.int64, m),
        )
        self._field = grown(
            self._field,
            np.fromiter((number(fields[k], len(self._names)) for k in at), np.int64, m),
        )
        self._source = grown(self._source, np.fromiter(sources, object, len(sources))[new])
        self._series_id = grown(self._series_id, series_id[new])
        self._bucket_id = grown(self._bucket_id, bucket_id[new])
        self._hash = hashes[order]
        # ~1 hash for each value of the top bits
        self._bits = max(1, len(self._hash).bit_length())
        top = (self._hash >> np.uint64(64 - self._bits)).astype(np.intp)
        self._starts = np.searchsorted(top, np.arange(2**self._bits + 1))


def _put(hits: list[Hit], at: npt.NDArray[np.intp] | None, series_id: Ids, bucket_id: Ids) -> None:
    """`hits` (a dict's answers, `_MISS` where it had none) set at `at` (None: every key) in
    one numpy pass: setting array items one by one costs ~3x more."""
    both = np.fromiter(chain.from_iterable(hits), np.int64, 2 * len(hits)).reshape(-1, 2)
    where = slice(None) if at is None else at
    series_id[where] = both[:, 0]
    bucket_id[where] = both[:, 1]


def _columns(keys: list[CacheKey]) -> tuple[Ids, list[str], list[str], list[str]]:
    """Keys as organisations, buckets, sources and fields."""
    org = np.fromiter((k[0] for k in keys), np.int64, len(keys))
    return org, [k[1] for k in keys], [k[2] for k in keys], [k[3] for k in keys]


def _hashes(names: list[str]) -> Ids:
    return np.fromiter(map(hash, names), np.int64, len(names))


def _compiled() -> type[Any] | None:
    try:
        from sensorbase.ingest import _series_ids
    except ImportError:  # installed without a C compiler: numpy's arrays
        return None
    return _series_ids.SeriesIds


_SeriesIds = _compiled()


class CompiledSeriesCache:
    """`SeriesCache`'s interface over the compiled table (`_series_ids.c`). Not thread-safe
    either."""

    def __init__(self) -> None:
        assert _SeriesIds is not None
        self._ids = _SeriesIds(SeriesKey)
        self._one = (array("q", [-1]), array("q", [-1]))  # get_one's cells (under the lock)

    def clear(self) -> None:
        self._ids.clear()

    def __len__(self) -> int:
        return len(self._ids)

    def get(self, org_id: int, keys: Sequence[SeriesKey]) -> tuple[Ids, Ids]:
        """Each key's (series id, bucket id), -1 where not cached."""
        series_id = np.empty(len(keys), np.int64)
        bucket_id = np.empty(len(keys), np.int64)
        self._ids.get(org_id, keys, series_id, bucket_id)
        return series_id, bucket_id

    def get_one(self, org_id: int, keys: Sequence[SeriesKey]) -> Hit | None:
        """The (series id, bucket id) of the one key in `keys`, if cached, found as `get` finds
        it but into two cells kept for this (a decoder's keys make no SeriesKey for it)."""
        series_id, bucket_id = self._one
        self._ids.get(org_id, keys, series_id, bucket_id)
        found = series_id[0]
        return None if found < 0 else (found, bucket_id[0])

    def update(self, learned: dict[CacheKey, Hit]) -> None:
        """Add keys resolved by a write; a key cached already takes its new ids."""
        self._ids.update(learned)


def new_series_cache() -> SeriesCache | CompiledSeriesCache:
    """The compiled cache where it is built, else numpy's."""
    return CompiledSeriesCache() if _SeriesIds is not None else SeriesCache()
