"""WHERE clauses: the time bounds (ANDed at the top, as InfluxDB requires) and the tag
condition that selects series, evaluated on a series' tags (a missing tag is '')."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from sensorbase.dialects.influx.influxql import ast
from sensorbase.dialects.influx.influxql.series import StatementError, compile_regex

MIN_NS = -(2**62)
MAX_NS = 2**62
_FLIP = {">": "<", ">=": "<=", "<": ">", "<=": ">=", "=": "="}


@dataclass(slots=True)
class Condition:
    start_ns: int | None  # inclusive
    end_ns: int | None  # exclusive
    tags: ast.Expr | None

    @property
    def empty(self) -> bool:
        return (
            self.start_ns is not None and self.end_ns is not None and self.start_ns >= self.end_ns
        )


def _is_time(expr: ast.Expr) -> bool:
    return isinstance(expr, ast.VarRef) and expr.name.lower() == "time"


def _mentions_time(expr: ast.Expr) -> bool:
    if _is_time(expr):
        return True
    if isinstance(expr, ast.Binary):
        return _mentions_time(expr.lhs) or _mentions_time(expr.rhs)
    return False


def _conjuncts(expr: ast.Expr) -> list[ast.Expr]:
    if isinstance(expr, ast.Binary) and expr.op == "AND":
        return _conjuncts(expr.lhs) + _conjuncts(expr.rhs)
    return [expr]


def split(condition: ast.Expr | None, now_ns: int, fields: set[str]) -> Condition:
    """Time bounds and the rest (the tag condition); StatementError for what is not
    supported (time inside OR, conditions on field values)."""
    start: int | None = None
    end: int | None = None
    rest: list[ast.Expr] = []
    for part in _conjuncts(condition) if condition is not None else []:
        if not _mentions_time(part):
            _check_tags(part, fields)
            rest.append(part)
            continue
        if not isinstance(part, ast.Binary) or part.op not in _FLIP:
            raise StatementError("invalid time condition: time is compared with >, >=, <, <= or =, "
                                 "and ANDed with the rest")  # fmt: skip
        op, other = part.op, part.rhs
        if not _is_time(part.lhs):
            if not _is_time(part.rhs):
                raise StatementError("invalid time condition")
            op, other = _FLIP[part.op], part.lhs
        value = time_value(other, now_ns)
        if op in (">=", "=", ">"):
            low = value + (op == ">")
            start = low if start is None else max(start, low)
        if op in ("<=", "=", "<"):
            high = value + (op != "<")
            end = high if end is None else min(end, high)
    tags: ast.Expr | None = None
    for part in rest:
        tags = part if tags is None else ast.Binary("AND", tags, part)
    return Condition(start, end, tags)


def _check_tags(expr: ast.Expr, fields: set[str]) -> None:
    if isinstance(expr, ast.Binary) and expr.op in ("AND", "OR"):
        _check_tags(expr.lhs, fields)
        _check_tags(expr.rhs, fields)
        return
    if not isinstance(expr, ast.Binary):
        raise StatementError(f"unsupported condition: {expr}")
    lhs, rhs = expr.lhs, expr.rhs
    if not isinstance(lhs, ast.VarRef) and isinstance(rhs, ast.VarRef):
        lhs, rhs = rhs, lhs
    if isinstance(lhs, ast.VarRef) and (
        lhs.type == "field" or (lhs.type is None and lhs.name in fields)
    ):
        raise StatementError(f"conditions on field values are not supported: {expr}")
    if not isinstance(lhs, ast.VarRef) or expr.op not in ("=", "!=", "=~", "!~"):
        raise StatementError(f"unsupported condition: {expr}")
    if expr.op in ("=~", "!~"):
        compile_regex(rhs.pattern if isinstance(rhs, ast.Regex) else "")
    elif not isinstance(rhs, ast.String):
        raise StatementError(f"a tag is compared with a string: {expr}")


def matches(expr: ast.Expr | None, tags: dict[str, str]) -> bool:
    """Whether a series' tags satisfy a condition that `split` checked."""
    if expr is None:
        return True
    assert isinstance(expr, ast.Binary)
    if expr.op == "AND":
        return matches(expr.lhs, tags) and matches(expr.rhs, tags)
    if expr.op == "OR":
        return matches(expr.lhs, tags) or matches(expr.rhs, tags)
    lhs, rhs = expr.lhs, expr.rhs
    if not isinstance(lhs, ast.VarRef):
        lhs, rhs = rhs, lhs
    assert isinstance(lhs, ast.VarRef)
    value = tags.get(lhs.name, "")
    if isinstance(rhs, ast.Regex):
        found = compile_regex(rhs.pattern).search(value) is not None
        return found if expr.op == "=~" else not found
    assert isinstance(rhs, ast.String)
    return (value == rhs.value) if expr.op == "=" else (value != rhs.value)


# --- time values ------------------------------------------------------------------------------

_INSTANT = re.compile(
    r"(\d{4}-\d{2}-\d{2})(?:[T ](\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?)?(Z|[+-]\d{2}:\d{2})?"
)


def parse_instant_ns(text: str) -> int:
    """An RFC 3339 time ('2020-01-01T00:00:00Z', with up to nanoseconds), or InfluxDB's
    '2020-01-01 00:00:00' and '2020-01-01' (UTC)."""
    match = _INSTANT.fullmatch(text.strip())
    if match is None:
        raise StatementError(f"invalid time: '{text}' is not an RFC 3339 time")
    date, clock, fraction, zone = match.groups()
    try:
        moment = datetime.fromisoformat(f"{date}T{clock or '00:00:00'}{_zone(zone)}")
    except ValueError:
        raise StatementError(f"invalid time: '{text}'") from None
    seconds = int(moment.timestamp())
    return seconds * 1_000_000_000 + int((fraction or "").ljust(9, "0"))


def _zone(zone: str | None) -> str:
    return "+00:00" if zone in (None, "Z") else str(zone)


def time_value(expr: ast.Expr, now_ns: int) -> int:
    """A time expression in nanoseconds since the epoch: a string, an integer (ns), a duration
    literal (`1700000000000ms`), now(), and sums and differences of them with durations."""
    if isinstance(expr, ast.String):
        return parse_instant_ns(expr.value)
    if isinstance(expr, ast.Number):
        return int(expr.value)
    if isinstance(expr, ast.Duration):
        return expr.ns
    if isinstance(expr, ast.Call) and expr.name == "now" and not expr.args:
        return now_ns
    if isinstance(expr, ast.Binary) and expr.op in ("+", "-"):
        lhs, rhs = time_value(expr.lhs, now_ns), time_value(expr.rhs, now_ns)
        return lhs + rhs if expr.op == "+" else lhs - rhs
    raise StatementError(f"invalid time expression: {expr}")


def ns_to_us_ceil(ns: int) -> int:
    """The first microsecond at or after an instant: bounds in ns become µs bounds that keep
    exactly the points the ns bounds keep."""
    return -((-ns) // 1000)
