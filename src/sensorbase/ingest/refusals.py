"""A write's problems placed on its rows (ingest/pipeline.py): the rows they refuse (every row
of a group with a bad one), the series keys left without a row, and the problems named by
the request's items."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from sensorbase.errors import Problem
from sensorbase.model import PointBatch


def rows(problems: list[Problem], n: int) -> npt.NDArray[np.bool_] | None:
    """The rows not to store; None when every row is good."""
    if not problems:
        return None
    bad = np.zeros(n, bool)
    for p in problems:
        if p.index is not None:
            bad[p.index] = True
    return bad


def whole_groups(
    bad: npt.NDArray[np.bool_] | None, groups: npt.NDArray[np.int32] | None
) -> npt.NDArray[np.bool_] | None:
    """`bad` grown to every row of a group that has a bad row."""
    if bad is None or groups is None or not bad.any():
        return bad
    return np.isin(groups, np.unique(groups[bad]))


def unplaced(problems: list[Problem], groups: npt.NDArray[np.int32] | None) -> bool:
    """Whether grouped rows meet a problem that names no item (so no group to refuse)."""
    return groups is not None and any(p.index is None for p in problems)


def dead_keys(bad: npt.NDArray[np.bool_] | None, batch: PointBatch) -> set[int]:
    """The series keys whose every row is refused."""
    if bad is None:
        return set()
    alive = np.zeros(len(batch.keys), bool)
    alive[batch.series_index[~bad]] = True
    return set(np.flatnonzero(~alive).tolist())


def merge(first: list[Problem], second: list[Problem]) -> list[Problem]:
    """Both lists as one, by item, each problem once. (A dialect's known problems alone come
    in item order already: they are not sorted again, which for 100,000 of them costs more
    than reading the body.)"""
    if not second:
        return first
    return sorted({*first, *second}, key=lambda p: (p.index or 0, p.field or ""))


def by_item(problems: list[Problem], origin: npt.NDArray[np.int32] | None) -> list[Problem]:
    """Row problems named by request item (rows of one item are reported once)."""
    if origin is None or not problems:
        return problems
    return merge(
        [],
        [
            Problem(p.reason, p.field, None if p.index is None else int(origin[p.index]), p.kind)
            for p in problems
        ],
    )
