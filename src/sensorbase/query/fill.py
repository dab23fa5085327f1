"""Gap filling of bucketed aggregates (`fill=`): which value an empty bucket shows.

- `none` (the default, and the only behaviour before `fill` existed): empty buckets are left
  out of the reply, so a chart draws a line across the gap.
- `null`: every bucket of the range is shown, an empty one with null aggregates.
- `previous`: an empty bucket repeats the aggregate of the nearest earlier bucket holding one;
  null before the first (the range's earlier points are not looked up).
- `linear`: interpolated in time between the nearest buckets on each side holding a value;
  null where either side is missing (at the range's edges).
- a number: that number.

`count` of an empty bucket is 0 whatever the fill: it is a fact, not a gap (InfluxDB's
fill(null) shows 0 for COUNT too).
"""

from __future__ import annotations

import itertools
import math
import re
from dataclasses import dataclass
from typing import Literal

from sensorbase.errors import Problem
from sensorbase.model import AggregateRow

Value = float | int | None
FillKind = Literal["none", "null", "previous", "linear", "number"]
FILL_HELP = "none (default: empty buckets left out), null, previous, linear, or a number"


@dataclass(frozen=True, slots=True)
class Fill:
    kind: FillKind = "none"
    value: float | None = None  # kind "number"


NO_FILL = Fill()
_NUMBER = r"[-+]?[0-9]{1,30}(?:\.[0-9]{1,30})?(?:[eE][-+]?[0-9]{1,3})?"
# Matched whole; also the pattern the OpenAPI document declares.
FILL_PATTERN = rf"^(?:none|null|previous|linear|{_NUMBER})$"
_FILL = re.compile(FILL_PATTERN)


def parse_fill(text: str | None) -> Fill | Problem:
    if text is None or text == "none":
        return NO_FILL
    if text in ("null", "previous", "linear"):
        return Fill(text)  # type: ignore[arg-type]
    if not _FILL.fullmatch(text) or not math.isfinite(number := float(text)):
        return Problem(f"must be {FILL_HELP}", "fill")
    return Fill("number", number)


def filled(
    labels: list[int],
    found: dict[int, dict[str, Value]],
    aggregates: tuple[str, ...],
    fill: Fill,
) -> list[AggregateRow]:
    """A row per bucket start in `labels` (ascending), from the buckets `found` holding points
    and `fill` for the others."""
    if fill.kind == "none":
        return [AggregateRow(t, found[t]) for t in labels if t in found]
    columns = {
        name: _column(name, [found[t][name] if t in found else None for t in labels], labels, fill)
        for name in aggregates
    }
    return [
        AggregateRow(t, {name: columns[name][i] for name in aggregates})
        for i, t in enumerate(labels)
    ]


def _column(name: str, column: list[Value], times: list[int], fill: Fill) -> list[Value]:
    if name == "count":
        return [0 if v is None else v for v in column]
    if fill.kind == "number":
        return [fill.value if v is None else v for v in column]
    if fill.kind == "previous":
        last: Value = None
        out = []
        for v in column:
            last = v if v is not None else last
            out.append(last)
        return out
    if fill.kind == "linear":
        return _linear(column, times)
    return column


def _linear(column: list[Value], times: list[int]) -> list[Value]:
    out = list(column)
    known = [i for i, v in enumerate(column) if v is not None]
    for a, b in itertools.pairwise(known):
        va, vb = column[a], column[b]
        assert va is not None and vb is not None
        for i in range(a + 1, b):
            share = (times[i] - times[a]) / (times[b] - times[a])
            out[i] = float(va) + (float(vb) - float(va)) * share
    return out
