"""The two sides of moving a whole installation between stores (`sensorbase dump` and
`sensorbase load`, storage/dumpfile.py), which each backend implements (sqlite/transfer.py,
postgres/transfer.py).

The catalog travels as rows of its tables, read generically by column name: a column or a
table that a newer schema adds travels with no change here, and the loader refuses a column
its store lacks rather than drop it. Ids travel unchanged (a key's id is in its token, a
series' id in every point), and so does each table's last given id, so that an id is never
given twice after the move either. Refresh tokens stay behind (a client signs in again);
keys and users keep their hashes, so every key and password works after the move.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, Protocol

from sensorbase.model import ResolvedBatch

# Rows that never travel: short-lived tokens, and how the store itself is laid out.
LEFT_BEHIND = frozenset({"refresh_tokens", "sensorbase_schema"})
LOCAL_SETTINGS = frozenset({"points_partitioning"})


class Snapshot(Protocol):
    """A store read at one moment (one read transaction)."""

    def tables(self) -> list[str]:
        """The catalog tables that travel, each after the tables it refers to."""
        ...

    def columns(self, table: str) -> list[str]: ...
    def rows(self, table: str) -> Iterator[tuple[Any, ...]]: ...
    def last_ids(self) -> dict[str, int]:
        """Per table with generated ids, the largest id ever given (deleted rows' too)."""
        ...

    def points(self, batch_points: int) -> Iterator[ResolvedBatch]:
        """Every point, a batch of about `batch_points` at a time."""
        ...


class Loader(Protocol):
    """Rows into an empty store, in the writer's transaction (`Store.loader()` commits it on
    leaving, or rolls it back on an error); points afterwards through the store's writer."""

    def refuse_unless_empty(self) -> None:
        """Raise SensorbaseError naming what the store holds, unless it holds nothing."""
        ...

    def columns(self, table: str) -> list[str]:
        """The table's columns in this store ([] when it has no such table)."""
        ...

    def insert(self, table: str, columns: list[str], rows: Iterable[tuple[Any, ...]]) -> int: ...
    def set_last_ids(self, last: dict[str, int]) -> None: ...


def parents_first(refers_to: dict[str, set[str]]) -> list[str]:
    """Tables ordered so that each comes after those it refers to (by name within a rank,
    so that two stores of one schema list them alike)."""
    left = {
        t: {p for p in parents if p != t and p in refers_to} for t, parents in refers_to.items()
    }
    ordered: list[str] = []
    while left:
        ready = sorted(t for t, parents in left.items() if not parents)
        if not ready:  # a cycle: the rest in name order (foreign keys are checked at commit)
            ready = sorted(left)
        for table in ready:
            del left[table]
            ordered.append(table)
        for parents in left.values():
            parents.difference_update(ready)
    return ordered
