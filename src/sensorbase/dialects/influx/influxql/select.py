"""SELECT: the series a statement reads (measurement, tag condition, GROUP BY tags), then raw
rows or aggregates by interval, read through QueryService only.

Intervals follow InfluxDB: GROUP BY time(i, o) cuts time at o + k*i counted from the epoch;
the first interval is the one holding the lower time bound (labelled by its own start, even
before the bound), the last the one holding the upper bound (now() when the query gives none);
every interval in between is a row, null when empty, unless fill says otherwise. Without a
lower bound, the first interval is the earliest point's. A group with no point in the range is
left out, as InfluxDB leaves it out.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sensorbase.dialects.influx.influxql import ast, functions
from sensorbase.dialects.influx.influxql.answer import Series
from sensorbase.dialects.influx.influxql.functions import Value
from sensorbase.dialects.influx.influxql.series import (
    InfluxSeries,
    StatementError,
    compile_regex,
    measurement_matcher,
)
from sensorbase.dialects.influx.influxql.where import Condition, matches, ns_to_us_ceil, split
from sensorbase.errors import InvalidInput
from sensorbase.model import PointColumns, SeriesRef, TimeRange
from sensorbase.query import reducers
from sensorbase.query.service import Order, QueryService


@dataclass(slots=True)
class Group:
    measurement: str
    tags: dict[str, str]
    members: list[InfluxSeries] = field(default_factory=list)

    def refs(self, name: str) -> list[SeriesRef]:
        return [s.fields[name] for s in self.members if name in s.fields]


class Select:
    def __init__(
        self, stmt: ast.Select, series: list[InfluxSeries], query: QueryService, now_ns: int
    ) -> None:
        self.stmt = stmt
        self.query = query
        self.now_ns = now_ns
        wanted = measurement_matcher(stmt.sources)
        self.series = [s for s in series if wanted(s.measurement)]
        self.field_keys = {f for s in self.series for f in s.fields}
        self.tag_keys = {t for s in self.series for t in s.tags}
        self.condition: Condition = split(stmt.condition, now_ns, self.field_keys - self.tag_keys)
        self.calls = [leaf for f in stmt.fields for leaf in functions.leaves(f.expr)
                      if isinstance(leaf, ast.Call)]  # fmt: skip
        if stmt.tz is not None and stmt.tz not in ("UTC", "Etc/UTC", "Z"):
            raise StatementError("tz() other than UTC is not supported: times are UTC")
        self.every = next((d for d in stmt.dimensions if isinstance(d, ast.TimeDimension)), None)
        if self.every is not None and not self.calls:
            raise StatementError("GROUP BY requires at least one aggregate function")
        for call in self.calls:
            _check_call(call)
        self.intervals: tuple[int, int, int] | None = None  # first start, width, count (µs)
        if self.calls and any(
            isinstance(leaf, ast.VarRef | ast.Wildcard)
            for f in stmt.fields
            for leaf in functions.leaves(f.expr)
        ):
            raise StatementError("mixing aggregate and non-aggregate queries is not supported")

    async def run(self) -> list[Series]:
        if self.condition.empty:
            return []
        groups = self._groups()
        if self.every is not None and self.condition.start_ns is None:
            # No lower bound: InfluxDB starts at the interval of the earliest point.
            refs = [ref for g in groups for s in g.members for ref in s.fields.values()]
            span = await self.query.span(refs, self._range()) if refs else None
            if span is None:
                return []
            self.condition.start_ns = span[0] * 1000
        window = self.stmt.window
        if window.soffset or window.slimit:
            end = window.soffset + window.slimit if window.slimit else None
            groups = groups[window.soffset : end]
        if self.every is not None:
            self.intervals = self._intervals(self._range())
            if self.intervals is None:
                return []
            n, cap = self.intervals[2], self.query.max_result_points
            if n * len(groups) > cap:
                raise StatementError(
                    f"GROUP BY time gives {n} intervals for each of {len(groups)} series, more "
                    f"than the server's result limit of {cap}; widen the interval or narrow the "
                    "time range"
                )
        out: list[Series] = []
        for group in groups:
            answer = await (self._aggregate(group) if self.calls else self._raw(group))
            if answer is not None:
                out.append(answer)
        return out

    # --- grouping -----------------------------------------------------------------------------

    def _group_keys(self) -> list[str]:
        keys: set[str] = set()
        for dim in self.stmt.dimensions:
            if isinstance(dim, ast.TagDimension):
                if dim.regex is not None:
                    pattern = compile_regex(dim.regex)
                    keys |= {k for k in self.tag_keys if pattern.search(k)}
                elif dim.name is None:
                    keys |= self.tag_keys
                else:
                    keys.add(dim.name)
        return sorted(keys)

    def _groups(self) -> list[Group]:
        keys = self._group_keys()
        groups: dict[tuple[str, tuple[str, ...]], Group] = {}
        for s in self.series:
            if not matches(self.condition.tags, s.tags):
                continue
            values = tuple(s.tags.get(k, "") for k in keys)
            group = groups.get((s.measurement, values))
            if group is None:
                group = Group(s.measurement, dict(zip(keys, values, strict=True)))
                groups[(s.measurement, values)] = group
            group.members.append(s)
        return [groups[k] for k in sorted(groups)]

    def _range(self) -> TimeRange:
        c = self.condition
        return TimeRange(
            ns_to_us_ceil(c.start_ns) if c.start_ns is not None else None,
            ns_to_us_ceil(c.end_ns) if c.end_ns is not None else None,
        )

    # --- raw rows -----------------------------------------------------------------------------

    def _columns(self, group: Group) -> list[tuple[str, ast.Expr]]:
        """(name, expression) per column; `*` is every field and every tag not grouped by,
        sorted by name, as InfluxDB lists them."""
        out: list[tuple[str, ast.Expr]] = []
        for f in self.stmt.fields:
            if isinstance(f.expr, ast.Wildcard):
                names = {n for s in group.members for n in s.fields}
                names |= {t for s in group.members for t in s.tags} - set(group.tags)
                out += [(n, ast.VarRef(n)) for n in sorted(names)]
            else:
                out.append((functions.column_name(f), f.expr))
        return _unique(out)

    async def _raw(self, group: Group) -> Series | None:
        columns = self._columns(group)
        tags_by_source = {s.key: s.tags for s in group.members}
        fields = {leaf.name for _, expr in columns for leaf in functions.leaves(expr)
                  if isinstance(leaf, ast.VarRef) and leaf.type != "tag"}  # fmt: skip
        refs = [s.fields[f] for s in group.members for f in sorted(fields) if f in s.fields]
        if not refs:
            return None
        window = self.stmt.window
        cap = self.query.max_result_points
        limit = window.limit or cap
        order: Order = "desc" if self.stmt.descending else "asc"
        try:
            page = await self.query.rows(refs, self._range(), order, window.offset, limit)
        except InvalidInput:
            page = None
        if page is None or (page.has_more and not window.limit):
            raise StatementError(
                f"the result holds more than {cap} rows (the server's result limit); "
                "narrow the time range or add a LIMIT"
            )
        if not page.rows:
            return None
        values = []
        for row in page.rows:
            tags = tags_by_source[row.source]

            def leaf(expr: ast.Expr, row: Any = row, tags: dict[str, str] = tags) -> Value:
                if not isinstance(expr, ast.VarRef):
                    raise StatementError(f"unsupported field expression: {expr}")
                if expr.type != "field" and expr.name in tags and expr.name not in row.values:
                    return tags[expr.name]  # type: ignore[return-value]
                found: Value = row.values.get(expr.name)
                return found

            values.append([row.time_us, *(functions.evaluate(e, leaf) for _, e in columns)])
        return Series(group.measurement, group.tags, ["time", *(n for n, _ in columns)], values)

    # --- aggregates ---------------------------------------------------------------------------

    async def _aggregate(self, group: Group) -> Series | None:
        time_range = self._range()
        if self.intervals is not None:
            first_us, every_us, n = self.intervals
        else:
            first_us = time_range.start_us if time_range.start_us is not None else 0
            every_us, n = 0, 1
        calls = list(dict.fromkeys(self.calls))
        results: dict[ast.Call, list[Value]] = {}
        times: dict[ast.Call, list[int | None]] = {}
        for call in calls:
            results[call], times[call] = await self._call(
                call, group, time_range, first_us, every_us, n
            )
        if all(results[c] == [0] * n if c.name == "count" else all(v is None for v in results[c])
               for c in calls):  # fmt: skip
            return None  # no point in the range: InfluxDB shows no series
        names = [functions.column_name(f) for f in self.stmt.fields]
        columns = [
            [functions.evaluate(f.expr, _at(results, i)) for i in range(n)]
            for f in self.stmt.fields
        ]
        kinds = ["count" if isinstance(f.expr, ast.Call) and f.expr.name == "count" else ""
                 for f in self.stmt.fields]  # fmt: skip
        row_times: list[int] = [first_us + i * every_us for i in range(n)]
        if self.every is None and len(calls) == 1 and calls[0].name in functions.SELECTORS:
            # A lone selector shows the time of the point it selected, as InfluxDB does.
            picked = times[calls[0]][0]
            row_times = [picked if picked is not None else first_us]
        if self.every is not None:
            fill = self.stmt.fill or ast.Fill()
            empty = [all(col[i] is None for col in columns) for i in range(n)]
            columns = functions.fill(columns, fill, kinds)
            keep = [not (fill.kind == "none" and empty[i]) for i in range(n)]
        else:
            keep = [True] * n
        rows = [[row_times[i], *(col[i] for col in columns)] for i in range(n) if keep[i]]
        if self.stmt.descending:
            rows.reverse()
        window = self.stmt.window
        rows = rows[window.offset : (window.offset + window.limit) if window.limit else None]
        return Series(group.measurement, group.tags, ["time", *_unique_names(names)], rows)

    def _intervals(self, time_range: TimeRange) -> tuple[int, int, int] | None:
        assert self.every is not None
        assert time_range.start_us is not None  # run() found the earliest point
        every_ns = self.every.interval.ns
        offset_ns = self.every.offset.ns if self.every.offset else 0
        if every_ns % 1000 or offset_ns % 1000:
            raise StatementError("GROUP BY time intervals and offsets are whole microseconds here")
        every_us, offset_us = every_ns // 1000, (offset_ns // 1000) % (every_ns // 1000)
        end_us = time_range.end_us
        if end_us is None:
            end_us = ns_to_us_ceil(self.now_ns)
        if end_us <= time_range.start_us:
            return None
        first = (time_range.start_us - offset_us) // every_us * every_us + offset_us
        last = (end_us - 1 - offset_us) // every_us * every_us + offset_us
        return first, every_us, (last - first) // every_us + 1

    async def _call(
        self,
        call: ast.Call,
        group: Group,
        time_range: TimeRange,
        first_us: int,
        every_us: int,
        n: int,
    ) -> tuple[list[Value], list[int | None]]:
        """The call's value per interval, and (without GROUP BY time) its point's time."""
        arg = call.args[0]
        assert isinstance(arg, ast.VarRef)
        refs = group.refs(arg.name)
        end_us = time_range.end_us
        if every_us:
            end_us = first_us + n * every_us if end_us is None else end_us
        window = TimeRange(time_range.start_us, end_us)
        if not refs:
            return [0 if call.name == "count" else None] * n, [None]
        lone = self.every is None and len(set(self.calls)) == 1
        if lone and call.name in ("min", "max", "first", "last"):
            return await self._selected(call.name, refs, window)
        if call.name in functions.STORE_AGGREGATES and (
            len(refs) == 1 or call.name not in ("first", "last")
        ):
            needed = functions.STORE_AGGREGATES[call.name]
            if every_us:
                # One call per series: run() bounded the intervals of the whole statement, and
                # the read path bounds each call's.
                found = [
                    rows
                    for ref in refs
                    for rows in await self.query.aggregate_fixed(
                        [ref], window, every_us, first_us, needed
                    )
                ]
                rows = functions.store_rows_by_interval(found, first_us, every_us)
                return [functions.merge(call.name, rows.get(i, [])) for i in range(n)], [None]
            whole = await self.query.aggregate(refs, window, needed)
            return [functions.merge(call.name, [r.values for r in whole])], [None]
        return await self._from_points(call, refs, window, first_us, every_us, n)

    async def _selected(
        self, name: str, refs: list[SeriesRef], window: TimeRange
    ) -> tuple[list[Value], list[int | None]]:
        """min, max, first or last over the range, with the time of the point chosen."""
        if name in ("min", "max"):
            order: Order = "asc" if name == "min" else "desc"
            found = await self.query.points(refs, window, 1, order, by="value")
        else:
            found = await self.query.points(refs, window, 1, "asc" if name == "first" else "desc")
        candidates = [(float(p.value[0]), int(p.time_us[0])) for p in found if len(p)]
        if not candidates:
            return [None], [None]
        if name == "min":
            value, at = min(candidates)
        elif name == "max":
            value, at = max(candidates, key=lambda c: (c[0], -c[1]))
        elif name == "first":
            value, at = min(candidates, key=lambda c: c[1])
        else:
            value, at = max(candidates, key=lambda c: c[1])
        return [value], [at]

    async def _from_points(
        self,
        call: ast.Call,
        refs: list[SeriesRef],
        window: TimeRange,
        first_us: int,
        every_us: int,
        n: int,
    ) -> tuple[list[Value], list[int | None]]:
        each = max(self.query.max_result_points // len(refs), 1)
        parts = await self.query.points(refs, window, each)
        if any(len(p) >= each for p in parts):
            raise StatementError(
                f"{call.name}() reads every point, and this range holds at least {each} points "
                f"of a series (the server's result limit over {len(refs)} series); narrow the "
                "time range"
            )
        points = PointColumns.concat(parts)
        order = np.argsort(points.time_us, kind="stable")
        times, values = points.time_us[order], points.value[order]
        arg = _argument(call)
        if not every_us:
            result = functions.reduce(call.name, times, values, arg)
            picked = None
            if call.name == "percentile" and result is not None:
                picked = int(times[np.flatnonzero(values == result)[0]])
            return [result], [picked]
        slices = functions.by_interval(times, first_us, every_us, n)
        if call.name == "integral" and len(times):
            # Cut at the interval edges, as InfluxDB's integral is (query/reducers.py).
            lows = first_us + every_us * np.arange(n, dtype=np.int64)
            areas = reducers.integrals(times, values, lows, lows + every_us) / (arg or 1_000_000)
            return [
                a if s.stop > s.start else None for a, s in zip(areas.tolist(), slices, strict=True)
            ], [None]
        return [functions.reduce(call.name, times[s], values[s], arg) for s in slices], [None]


def _at(results: dict[ast.Call, list[Value]], i: int) -> Callable[[ast.Expr], Value]:
    """The leaf reader of interval i: a call's value there."""

    def leaf(expr: ast.Expr) -> Value:
        assert isinstance(expr, ast.Call)
        return results[expr][i]

    return leaf


def _argument(call: ast.Call) -> float | None:
    """percentile's N, or integral's unit in microseconds (InfluxDB's default: 1s)."""
    if len(call.args) < 2:
        return None
    arg = call.args[1]
    if isinstance(arg, ast.Duration):
        return float(arg.ns // 1000)
    assert isinstance(arg, ast.Number)
    return float(arg.value)


def _check_call(call: ast.Call) -> None:
    if call.name not in functions.FUNCTIONS:
        raise StatementError(f"undefined function {call.name}()")
    wanted = 2 if call.name == "percentile" else 1
    if call.name == "integral" and len(call.args) == 2:
        wanted = 2  # INTEGRAL(field[, unit])
    if len(call.args) != wanted:
        raise StatementError(f"invalid number of arguments for {call.name}, expected {wanted}, "
                             f"got {len(call.args)}")  # fmt: skip
    if not isinstance(call.args[0], ast.VarRef):
        raise StatementError(f"expected field argument in {call.name}()")
    if call.name == "integral" and wanted == 2:
        unit = call.args[1]
        if not isinstance(unit, ast.Duration) or unit.ns < 1000 or unit.ns % 1000:
            raise StatementError("second argument to integral must be a duration of whole "
                                 "microseconds")  # fmt: skip
    elif wanted == 2 and not isinstance(call.args[1], ast.Number):
        raise StatementError(f"expected float argument in {call.name}()")


def _unique(columns: list[tuple[str, ast.Expr]]) -> list[tuple[str, ast.Expr]]:
    names = _unique_names([n for n, _ in columns])
    return [(name, expr) for name, (_, expr) in zip(names, columns, strict=True)]


def _unique_names(names: list[str]) -> list[str]:
    """InfluxDB's column names: a repeated name gets _1, _2, ..."""
    seen: dict[str, int] = {}
    out = []
    for name in names:
        if name in seen:
            seen[name] += 1
            out.append(f"{name}_{seen[name]}")
        else:
            seen[name] = 0
            out.append(name)
    return out
