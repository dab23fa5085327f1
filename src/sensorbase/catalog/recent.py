"""Catalog lookups a node trusts for `key_cache_s`, as it trusts keys: what the dialects'
ingest routes look up on every request (an organisation; a device by its token and its
series). A catalog change made on this node forgets them at once (`Work.on_change`); one made
on another node is seen within `key_cache_s`. Only what a write checks again in its own
transaction is kept, so a stale entry can change a refusal's wording, never what is stored."""

from __future__ import annotations

from collections.abc import Hashable
from typing import Generic, TypeVar

from sensorbase.auth.keys import KeyRing

V = TypeVar("V")

MOST = 10_000  # entries before the cache starts over


class Recent(Generic[V]):
    def __init__(self, ring: KeyRing) -> None:
        self._ring = ring  # its lifetime (`ttl_s`) and clock, which tests move
        self._seen: dict[Hashable, tuple[V, float]] = {}

    def get(self, name: Hashable) -> tuple[V] | None:
        """`(value,)` when `name` was seen within `key_cache_s`, else None."""
        hit = self._seen.get(name)
        if hit is not None and self._ring.clock() - hit[1] < self._ring.ttl_s:
            return (hit[0],)
        return None

    def put(self, name: Hashable, value: V) -> V:
        if len(self._seen) >= MOST:
            self._seen.clear()
        self._seen[name] = (value, self._ring.clock())
        return value

    def clear(self) -> None:
        self._seen.clear()
