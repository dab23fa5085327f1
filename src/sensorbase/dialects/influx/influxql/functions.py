"""InfluxQL's functions as InfluxDB computes them: reducers over the raw points of one
interval, the merge of the store's own per-series aggregates, fill, and field arithmetic.

`mean, sum, count, min, max, first, last, spread` come from the store's aggregates
(QueryService.aggregate_fixed; one pass in the database). `median, percentile, stddev,
integral` need the points themselves and are computed exactly from them, within the result
limit: median, stddev and integral by the query layer's reducers (query/reducers.py, the
native API's), percentile by InfluxDB's nearest rank.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from sensorbase.dialects.influx.influxql import ast
from sensorbase.dialects.influx.influxql.series import StatementError
from sensorbase.model import AggregateRow, Float64Array, Int64Array
from sensorbase.query import reducers

Value = float | int | None
# The store's aggregates each function needs (the store's `avg` is not asked: a mean over
# several series is the sum of their sums over the sum of their counts).
STORE_AGGREGATES: dict[str, tuple[str, ...]] = {
    "mean": ("sum", "count"),
    "sum": ("sum",),
    "count": ("count",),
    "min": ("min",),
    "max": ("max",),
    "first": ("first",),
    "last": ("last",),
    "spread": ("min", "max"),
}
FROM_POINTS = ("median", "percentile", "stddev", "integral")
FUNCTIONS = (*STORE_AGGREGATES, *FROM_POINTS)
SELECTORS = ("first", "last", "min", "max", "percentile")


def reduce(name: str, times: Int64Array, values: Float64Array, arg: float | None) -> Value:
    """One function over the time-ordered points of one interval (None when it has none);
    `arg` is percentile's N or integral's unit in microseconds."""
    n = len(values)
    if name == "count":
        return n
    if n == 0:
        return None
    if name == "mean":
        return float(values.sum() / n)
    if name == "sum":
        return float(values.sum())
    if name == "min":
        return float(values.min())
    if name == "max":
        return float(values.max())
    if name == "first":
        return float(values[0])
    if name == "last":
        return float(values[-1])
    if name == "spread":
        return float(values.max() - values.min())
    if name in ("median", "stddev", "integral"):
        unit_us = int(arg) if arg is not None else 1_000_000
        return reducers.reduce(name, times, values, unit_us)
    if name == "percentile":
        assert arg is not None
        # InfluxDB's nearest rank: the value at floor(n * p / 100 + 0.5) - 1 of the sorted values.
        i = math.floor(n * arg / 100 + 0.5) - 1
        return float(np.sort(values)[i]) if 0 <= i < n else None
    raise StatementError(f"unsupported call: {name}")


def merge(name: str, rows: Sequence[dict[str, Value]]) -> Value:
    """A store-computed function over one interval from the aggregates of each series in it
    (first and last only ever come from one series: several take the points' path)."""
    found = [r for r in rows if r.get("count", 1)]
    if name == "count":
        return sum(int(r["count"] or 0) for r in rows)
    if not found:
        return None

    def each(key: str) -> list[float]:
        return [float(v) for r in found if (v := r.get(key)) is not None]

    if name == "mean":
        count = sum(int(r["count"] or 0) for r in found)
        return sum(each("sum")) / count if count else None
    if name == "sum":
        return sum(each("sum"))
    if name in ("min", "max", "spread"):
        lows, highs = each("min"), each("max")
        if name == "min":
            return min(lows) if lows else None
        if name == "max":
            return max(highs) if highs else None
        return max(highs) - min(lows) if lows and highs else None
    values = each(name)
    return values[0] if values else None


def store_rows_by_interval(
    per_series: Sequence[list[AggregateRow]], first_us: int, every_us: int
) -> dict[int, list[dict[str, Value]]]:
    """The store's rows of several series, by interval index from `first_us`."""
    out: dict[int, list[dict[str, Value]]] = {}
    for rows in per_series:
        for row in rows:
            start = row.start_us if row.start_us is not None else first_us
            out.setdefault((start - first_us) // every_us, []).append(row.values)
    return out


def by_interval(times: np.ndarray[Any, Any], first_us: int, every_us: int, n: int) -> list[slice]:
    """The slices of time-ordered points falling in each of the `n` intervals."""
    edges = first_us + every_us * np.arange(n + 1, dtype=np.int64)
    cuts = np.searchsorted(times, edges).tolist()
    return [slice(cuts[i], cuts[i + 1]) for i in range(n)]


# --- fill -------------------------------------------------------------------------------------


def fill(columns: list[list[Value]], fill_: ast.Fill, counts: list[str]) -> list[list[Value]]:
    """Fill each column's empty intervals (None) as InfluxDB does; `counts` marks count
    columns, which read 0 rather than null in an empty interval (InfluxDB's rule for
    fill(null))."""
    out = []
    for column, kind in zip(columns, counts, strict=True):
        if fill_.kind == "null":
            out.append([0 if v is None and kind == "count" else v for v in column])
        elif fill_.kind == "number":
            out.append([fill_.value if v is None else v for v in column])
        elif fill_.kind == "previous":
            last: Value = None
            filled = []
            for v in column:
                last = v if v is not None else last
                filled.append(last)
            out.append(filled)
        elif fill_.kind == "linear":
            out.append(_linear(column))
        else:  # none: the rows are dropped by the caller
            out.append(column)
    return out


def _linear(column: list[Value]) -> list[Value]:
    known = [i for i, v in enumerate(column) if v is not None]
    filled = list(column)
    for a, b in itertools.pairwise(known):
        va, vb = column[a], column[b]
        assert va is not None and vb is not None
        for i in range(a + 1, b):
            filled[i] = va + (vb - va) * (i - a) / (b - a)
    return filled


# --- arithmetic -------------------------------------------------------------------------------

_OPS: dict[str, Callable[[float, float], float]] = {
    "+": lambda a, b: a + b,
    "-": lambda a, b: a - b,
    "*": lambda a, b: a * b,
    "/": lambda a, b: a / b if b else 0.0,  # InfluxDB answers 0 for a division by zero
    "%": lambda a, b: math.fmod(a, b) if b else 0.0,
}


def evaluate(expr: ast.Expr, leaf: Callable[[ast.Expr], Value]) -> Value:
    """A field expression on one row: numbers, the row's leaves (fields or calls), + - * / %."""
    if isinstance(expr, ast.Number):
        return expr.value
    if isinstance(expr, ast.Binary):
        if expr.op not in _OPS:
            raise StatementError(f"unsupported operator in a field expression: {expr.op}")
        lhs, rhs = evaluate(expr.lhs, leaf), evaluate(expr.rhs, leaf)
        if lhs is None or rhs is None:
            return None
        return _OPS[expr.op](float(lhs), float(rhs))
    return leaf(expr)


def leaves(expr: ast.Expr) -> list[ast.Expr]:
    """The fields and calls a field expression reads, in order."""
    if isinstance(expr, ast.Binary):
        return leaves(expr.lhs) + leaves(expr.rhs)
    if isinstance(expr, ast.Number):
        return []
    return [expr]


def column_name(field: ast.Field) -> str:
    """InfluxDB's name for a column: its alias, else the first field's or function's name."""
    if field.alias:
        return field.alias
    for leaf in leaves(field.expr):
        if isinstance(leaf, ast.Call):
            return leaf.name
        if isinstance(leaf, ast.VarRef):
            return leaf.name
    return ""
