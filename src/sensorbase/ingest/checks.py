"""What a canonical batch is checked for before it is stored: finite values, times inside the
accepted window, extras within their size, valid names. Each problem names its row and kind
(errors.PROBLEM_KINDS), so a dialect can word it in its vendor's terms."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import msgspec
import numpy as np

from sensorbase.errors import Problem
from sensorbase.limits import MAX_CATALOG_META_BYTES, MAX_POINT_META_BYTES, name_problem
from sensorbase.model import PointBatch, SeriesKey

_SMALL = 8  # rows up to which a batch is checked in plain Python, without numpy
_encoder = msgspec.json.Encoder()


@dataclass(frozen=True, slots=True)
class Window:
    """The accepted times: from `min_us` (the `min_time` setting) to `max_future_s` ahead."""

    min_us: int
    min_text: str
    max_future_s: int

    def rows(self, batch: PointBatch, now_us: int) -> list[Problem]:
        """Problems of the rows themselves, in row order: one per bad value, time or extra."""
        if batch.extra is None:
            return self._value_problems(batch, now_us)
        problems = _meta_problems(batch.extra)
        values = self._value_problems(batch, now_us)
        if problems and values:
            return sorted(problems + values, key=lambda p: p.index or 0)
        return problems or values

    def holds(self, time_us: int, value: float, now_us: int) -> bool:
        """Whether one point has no problem `rows` would name (a one-point write's check, and
        a small batch's point by point)."""
        return self.min_us <= time_us <= now_us + self.max_future_s * 1_000_000 and math.isfinite(
            value
        )

    def _value_problems(self, batch: PointBatch, now_us: int) -> list[Problem]:
        max_time = now_us + self.max_future_s * 1_000_000
        if batch.time_us.shape[0] <= _SMALL:  # plain Python: numpy's per-call cost would dominate
            points = zip(batch.time_us.tolist(), batch.value.tolist(), strict=True)
            if all(self.holds(t, v, now_us) for t, v in points):
                return []
        elif (
            np.isfinite(batch.value).all()
            and batch.time_us.min() >= self.min_us
            and batch.time_us.max() <= max_time
        ):
            return []  # the usual case, in three vectorised passes
        problems: list[Problem] = []
        for i in np.flatnonzero(~np.isfinite(batch.value)).tolist():
            problems.append(Problem("must be a finite number", "value", i, "not_finite"))
        for i in np.flatnonzero(batch.time_us < self.min_us).tolist():
            problems.append(Problem(f"is before {self.min_text}", "time", i, "too_old"))
        for i in np.flatnonzero(batch.time_us > max_time).tolist():
            reason = f"is more than {self.max_future_s} s in the future"
            problems.append(Problem(reason, "time", i, "too_new"))
        problems.sort(key=lambda p: p.index or 0)
        return problems


def keys(
    batch: PointBatch, ks: list[int], series_meta: dict[SeriesKey, dict[str, Any]]
) -> list[Problem]:
    """Rows of the series keys `ks` whose bucket, source or field is no valid name, or whose
    meta (given for a new series) is too large. Names are checked on their first write only
    (as they may be created then): the pipeline asks for the keys its cache lacks."""
    problems: list[Problem] = []
    for k in ks:
        key = batch.keys[k]
        found = []
        for part, name in (("bucket", key.bucket), ("source", key.source), ("field", key.field)):
            reason = name_problem(name)
            if reason is not None:
                found.append(Problem(f"{shown(name)} {reason}", part, None, "bad_name"))
        meta = series_meta.get(key)
        if meta:
            size = len(_encoder.encode(meta))
            if size > MAX_CATALOG_META_BYTES:
                reason = f"must be at most {MAX_CATALOG_META_BYTES} bytes as JSON (got {size})"
                found.append(Problem(reason, "meta", None, "too_large"))
        if found:
            for i in np.flatnonzero(batch.series_index == k).tolist():
                problems.extend(Problem(p.reason, p.field, i, p.kind) for p in found)
    return problems


def shown(name: str) -> str:
    """A name as a message quotes it: short, and without what a terminal would act on."""
    text = name if len(name) <= 40 else name[:37] + "..."
    return repr(text)


def _meta_problems(extra: list[str | None]) -> list[Problem]:
    """Rows whose extras (meta, labels, position) pass MAX_POINT_META_BYTES of JSON."""
    longest = max(map(len, filter(None, extra)), default=0)
    if longest * 4 <= MAX_POINT_META_BYTES:  # a character is at most 4 bytes of UTF-8
        return []
    problems = []
    for i, text in enumerate(extra):
        if text and len(text) * 4 > MAX_POINT_META_BYTES:
            size = len(text.encode())
            if size > MAX_POINT_META_BYTES:
                reason = f"must be at most {MAX_POINT_META_BYTES} bytes as JSON (got {size})"
                problems.append(Problem(reason, "meta", i, "too_large"))
    return problems
