"""InfluxQL's syntax tree. Every node prints as the InfluxQL that parses back to it
(`parse(str(node)) == node`, a property test holds it), with identifiers quoted only where
needed and parentheses only where precedence asks for them."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from sensorbase.dialects.influx.influxql.lexer import DURATION_NS, KEYWORDS

_BARE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Binding strength of each binary operator (higher binds tighter), as InfluxDB's parser has it.
PRECEDENCE = {
    "OR": 1,
    "AND": 2,
    **dict.fromkeys(("=", "!=", "<", "<=", ">", ">=", "=~", "!~"), 3),
    "+": 4,
    "-": 4,
    "*": 5,
    "/": 5,
    "%": 5,
}
_UNITS_DESC = sorted(
    ((ns, u) for u, ns in DURATION_NS.items() if u not in ("us", "µ")), reverse=True
)


def quote_ident(name: str) -> str:
    if _BARE.fullmatch(name) and name.upper() not in KEYWORDS:
        return name
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def quote_string(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n") + "'"


def format_duration(ns: int) -> str:
    """The largest unit that divides the duration exactly, as InfluxDB prints them."""
    if ns == 0:
        return "0s"
    for size, unit in _UNITS_DESC:
        if ns % size == 0:
            return f"{ns // size}{unit}"
    raise AssertionError("ns divides every duration")


# --- expressions ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class VarRef:
    name: str
    type: str | None = None  # `::field`, `::tag`

    def __str__(self) -> str:
        return quote_ident(self.name) + (f"::{self.type}" if self.type else "")


@dataclass(frozen=True, slots=True)
class Wildcard:
    def __str__(self) -> str:
        return "*"


@dataclass(frozen=True, slots=True)
class Call:
    name: str  # lower case
    args: tuple[Expr, ...] = ()

    def __str__(self) -> str:
        return f"{self.name}({', '.join(str(a) for a in self.args)})"


@dataclass(frozen=True, slots=True)
class Number:
    value: int | float

    def __str__(self) -> str:
        return repr(self.value)


@dataclass(frozen=True, slots=True)
class String:
    value: str

    def __str__(self) -> str:
        return quote_string(self.value)


@dataclass(frozen=True, slots=True)
class Duration:
    ns: int

    def __str__(self) -> str:
        return format_duration(self.ns)


@dataclass(frozen=True, slots=True)
class Regex:
    pattern: str

    def __str__(self) -> str:
        return "/" + self.pattern.replace("/", "\\/") + "/"


@dataclass(frozen=True, slots=True)
class Binary:
    op: str  # upper case for AND, OR
    lhs: Expr
    rhs: Expr

    def __str__(self) -> str:
        mine = PRECEDENCE[self.op]
        left, right = str(self.lhs), str(self.rhs)
        if isinstance(self.lhs, Binary) and PRECEDENCE[self.lhs.op] < mine:
            left = f"({left})"
        if isinstance(self.rhs, Binary) and PRECEDENCE[self.rhs.op] <= mine:
            right = f"({right})"
        if self.op == "-" and right.startswith("-"):  # `a - -1` would read as a comment
            right = f"({right})"
        return f"{left} {self.op} {right}"


Expr = VarRef | Wildcard | Call | Number | String | Duration | Regex | Binary


# --- clauses ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Field:
    expr: Expr
    alias: str | None = None

    def __str__(self) -> str:
        return str(self.expr) + (f" AS {quote_ident(self.alias)}" if self.alias else "")


@dataclass(frozen=True, slots=True)
class Measurement:
    """`m`, `"db"."rp"."m"`, `"db"..m`, `rp.m`, or a regex in the last place."""

    name: str | None = None
    regex: str | None = None
    database: str | None = None
    retention: str | None = None

    def __str__(self) -> str:
        last = str(Regex(self.regex)) if self.regex is not None else quote_ident(self.name or "")
        if self.database is not None:
            rp = quote_ident(self.retention) if self.retention is not None else ""
            return f"{quote_ident(self.database)}.{rp}.{last}"
        if self.retention is not None:
            return f"{quote_ident(self.retention)}.{last}"
        return last


@dataclass(frozen=True, slots=True)
class TimeDimension:
    interval: Duration
    offset: Duration | None = None

    def __str__(self) -> str:
        return f"time({self.interval}{f', {self.offset}' if self.offset else ''})"


@dataclass(frozen=True, slots=True)
class TagDimension:
    name: str | None  # None: every tag (`*`)
    regex: str | None = None

    def __str__(self) -> str:
        if self.regex is not None:
            return str(Regex(self.regex))
        return "*" if self.name is None else quote_ident(self.name)


Dimension = TimeDimension | TagDimension
FillKind = Literal["null", "none", "previous", "linear", "number"]


@dataclass(frozen=True, slots=True)
class Fill:
    kind: FillKind = "null"
    value: int | float = 0

    def __str__(self) -> str:
        return f"fill({self.value!r})" if self.kind == "number" else f"fill({self.kind})"


@dataclass(frozen=True, slots=True)
class Window:
    """LIMIT, OFFSET, SLIMIT, SOFFSET (0: none)."""

    limit: int = 0
    offset: int = 0
    slimit: int = 0
    soffset: int = 0

    def __str__(self) -> str:
        parts = [
            f"{word} {n}"
            for word, n in (
                ("LIMIT", self.limit),
                ("OFFSET", self.offset),
                ("SLIMIT", self.slimit),
                ("SOFFSET", self.soffset),
            )
            if n
        ]
        return " ".join(parts)


def _clauses(*parts: str) -> str:
    return " ".join(p for p in parts if p)


def _from(sources: tuple[Measurement, ...]) -> str:
    return f"FROM {', '.join(str(s) for s in sources)}" if sources else ""


def _where(condition: Expr | None) -> str:
    return f"WHERE {condition}" if condition is not None else ""


# --- statements -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Select:
    fields: tuple[Field, ...]
    sources: tuple[Measurement, ...]
    condition: Expr | None = None
    dimensions: tuple[Dimension, ...] = ()
    fill: Fill | None = None
    descending: bool = False
    window: Window = Window()
    tz: str | None = None

    def __str__(self) -> str:
        group = f"GROUP BY {', '.join(str(d) for d in self.dimensions)}" if self.dimensions else ""
        return _clauses(
            "SELECT " + ", ".join(str(f) for f in self.fields),
            _from(self.sources),
            _where(self.condition),
            group,
            str(self.fill) if self.fill else "",
            "ORDER BY time DESC" if self.descending else "",
            str(self.window),
            f"tz({quote_string(self.tz)})" if self.tz is not None else "",
        )


@dataclass(frozen=True, slots=True)
class ShowDatabases:
    def __str__(self) -> str:
        return "SHOW DATABASES"


@dataclass(frozen=True, slots=True)
class ShowRetentionPolicies:
    database: str | None = None

    def __str__(self) -> str:
        on = f" ON {quote_ident(self.database)}" if self.database is not None else ""
        return "SHOW RETENTION POLICIES" + on


@dataclass(frozen=True, slots=True)
class ShowMeasurements:
    measurement: Binary | None = None  # WITH MEASUREMENT (= name | =~ /re/)
    condition: Expr | None = None
    window: Window = Window()

    def __str__(self) -> str:
        with_ = ""
        if self.measurement is not None:
            rhs = self.measurement.rhs
            name = quote_ident(rhs.name) if isinstance(rhs, VarRef) else str(rhs)
            with_ = f"WITH MEASUREMENT {self.measurement.op} {name}"
        return _clauses("SHOW MEASUREMENTS", with_, _where(self.condition), str(self.window))


@dataclass(frozen=True, slots=True)
class ShowTagKeys:
    sources: tuple[Measurement, ...] = ()
    condition: Expr | None = None
    window: Window = Window()

    def __str__(self) -> str:
        return _clauses(
            "SHOW TAG KEYS", _from(self.sources), _where(self.condition), str(self.window)
        )


@dataclass(frozen=True, slots=True)
class ShowTagValues:
    op: str  # =, !=, =~, !~, IN
    keys: tuple[str, ...] = ()  # the names, for = != IN
    regex: str | None = None  # for =~ !~
    sources: tuple[Measurement, ...] = ()
    condition: Expr | None = None
    window: Window = Window()

    def __str__(self) -> str:
        if self.op == "IN":
            key = f"IN ({', '.join(quote_ident(k) for k in self.keys)})"
        elif self.regex is not None:
            key = f"{self.op} {Regex(self.regex)}"
        else:
            key = f"{self.op} {quote_ident(self.keys[0])}"
        return _clauses(
            "SHOW TAG VALUES",
            _from(self.sources),
            f"WITH KEY {key}",
            _where(self.condition),
            str(self.window),
        )


@dataclass(frozen=True, slots=True)
class ShowFieldKeys:
    sources: tuple[Measurement, ...] = ()
    window: Window = Window()

    def __str__(self) -> str:
        return _clauses("SHOW FIELD KEYS", _from(self.sources), str(self.window))


@dataclass(frozen=True, slots=True)
class ShowSeries:
    sources: tuple[Measurement, ...] = ()
    condition: Expr | None = None
    window: Window = Window()

    def __str__(self) -> str:
        return _clauses(
            "SHOW SERIES", _from(self.sources), _where(self.condition), str(self.window)
        )


Show = (
    ShowDatabases
    | ShowRetentionPolicies
    | ShowMeasurements
    | ShowTagKeys
    | ShowTagValues
    | ShowFieldKeys
    | ShowSeries
)


@dataclass(frozen=True, slots=True)
class CreateDatabase:
    name: str

    def __str__(self) -> str:
        return f"CREATE DATABASE {quote_ident(self.name)}"


Statement = Select | Show | CreateDatabase


def format_query(statements: list[Statement]) -> str:
    return "; ".join(str(s) for s in statements)
