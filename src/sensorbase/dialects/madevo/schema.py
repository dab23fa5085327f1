"""A Madevo data source's schema: column → type ("number" | "string") and at most one entity
column, kept in its bucket's `meta.madevo`; and the plan of one request against it (what part
each column plays, the schema once stored, every row and column that breaks it)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sensorbase.dialects.madevo.records import (
    ENTITY,
    IDENTIFIERS,
    METRIC_COLUMNS,
    NUMBERS,
    STRINGS,
    TIMESTAMP,
    VALUE,
    ColumnType,
    Kind,
    Role,
    encode,
    kind_of,
)
from sensorbase.errors import Conflict, Problem
from sensorbase.model import Bucket

META_KEY = "madevo"


@dataclass(slots=True)
class Column:
    first_row: int
    rows: dict[Kind, list[int]] = field(default_factory=dict)  # kind of value → rows

    def kinds(self) -> set[Kind]:
        return set(self.rows)

    def rows_not_in(self, allowed: frozenset[str]) -> list[int]:
        return sorted(r for kind, rows in self.rows.items() if kind not in allowed for r in rows)


@dataclass(slots=True)
class Observed:
    """What one request's records hold: their form and, per column, the kinds of its values."""

    narrow: bool
    columns: dict[str, Column]
    problems: list[Problem]
    # Every value a string (/api/v1): a new column holds numbers when most of its values are
    # numeric strings (else one stray word would make a number column text).
    by_majority: bool = False


def observe(records: list[Any]) -> Observed:
    columns: dict[str, Column] = {}
    problems: list[Problem] = []
    narrow: bool | None = None
    for i, record in enumerate(records):
        if not isinstance(record, dict):
            problems.append(Problem("must be a JSON object", None, i))
            continue
        is_narrow = VALUE in record and any(m in record for m in METRIC_COLUMNS)
        if narrow is None:
            narrow = is_narrow
        elif is_narrow != narrow:
            problems.append(
                Problem(
                    f"is {_form(is_narrow)} while the records before it are {_form(narrow)}: "
                    "all records of one request follow one schema",
                    None,
                    i,
                )
            )
            continue
        for name, value in record.items():
            if name == TIMESTAMP or value is None:
                continue
            if not name.strip():
                problems.append(Problem("a column name must not be empty", name, i))
                continue
            column = columns.get(name)
            if column is None:
                column = columns[name] = Column(i)
            column.rows.setdefault(kind_of(value), []).append(i)
    return Observed(bool(narrow), columns, problems)


def _form(narrow: bool) -> str:
    return "narrow {timestamp, metric, value}" if narrow else "wide {timestamp, m1, m2, ...}"


# --- the data source's schema ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Schema:
    columns: dict[str, ColumnType]
    entity: str | None
    declared: bool  # declared by the user: other columns are refused; else inferred and growing

    def meta(self) -> dict[str, Any]:
        return {"entity": self.entity, "columns": dict(self.columns), "inferred": not self.declared}


def schema_of(bucket: Bucket) -> Schema:
    """The schema kept in the bucket's `meta.madevo` (none yet: an empty inferred one)."""
    raw = bucket.meta.get(META_KEY)
    if raw is None:
        return Schema({}, None, False)
    columns = raw.get("columns", {}) if isinstance(raw, dict) else None
    entity = raw.get("entity") if isinstance(raw, dict) else None
    if (
        not isinstance(columns, dict)
        or not all(isinstance(t, str) and t in ("number", "string") for t in columns.values())
        or not isinstance(entity, str | None)
    ):
        raise Conflict(
            f"data source '{bucket.key}' declares an invalid schema in its meta.madevo: expected "
            '{"entity": "<column>" or null, "columns": {"<column>": "number" | "string"}}'
        )
    return Schema(columns, entity, not raw.get("inferred", False))


@dataclass(slots=True)
class Plan:
    """What each column of a request is, and the data source's schema once it is stored."""

    roles: dict[str, Role]
    schema: Schema
    problems: list[Problem]


def plan(schema: Schema, seen: Observed, records: list[Any], source_id: str) -> Plan:
    columns = dict(schema.columns)
    entity = schema.entity
    if entity is None and not schema.declared:
        ids = [n for n in seen.columns if n == ENTITY] or [
            n for n in seen.columns if n.endswith("_id")
        ]
        entity = ids[0] if ids else None
    roles: dict[str, Role] = {}
    problems: list[Problem] = []

    def bad(rows: list[int], name: str, reason: str) -> None:
        for row in rows:
            shown = encode.encode(records[row][name]).decode()
            shown = shown if len(shown) <= 60 else shown[:57] + "..."
            problems.append(Problem(f"{reason}; got {shown}", name, row))

    for name, column in seen.columns.items():
        if name == entity:
            roles[name] = "entity"
            bad(column.rows_not_in(IDENTIFIERS), name, "an entity id is a string or an integer")
            continue
        known = columns.get(name)
        if known is None and schema.declared:
            declared = ", ".join(sorted(columns)) or "none"
            problems.append(
                Problem(
                    f"is not a column of data source '{source_id}' (declared: {declared})",
                    name,
                    column.first_row,
                )
            )
            continue
        if known is None:
            known = columns[name] = _new_type(name, column, seen)
        required = _required_type(name, seen.narrow)
        if required is not None and known != required:
            problems.append(
                Problem(
                    f"is a {known} column of data source '{source_id}'; here it would hold "
                    f"{required}s (a column keeps its type)",
                    name,
                    column.first_row,
                )
            )
            continue
        allowed = NUMBERS if known == "number" else IDENTIFIERS if _is_id(name) else STRINGS
        bad(column.rows_not_in(allowed), name, _expectation(name, known, seen.narrow))
        roles[name] = _role(name, known, seen.narrow)
    return Plan(roles, Schema(columns, entity, schema.declared), problems)


def _is_id(name: str) -> bool:
    return name.endswith("_id")


def _required_type(name: str, narrow: bool) -> ColumnType | None:
    """The type a column's part demands: ids and metric names are strings, values numbers."""
    if _is_id(name) or (narrow and name in METRIC_COLUMNS):
        return "string"
    if narrow and name == VALUE:
        return "number"
    return None


def _new_type(name: str, column: Column, seen: Observed) -> ColumnType:
    """The type a column new to the data source takes from this request's values: a column
    with JSON numbers, or only numeric strings, holds numbers."""
    required = _required_type(name, seen.narrow)
    if required is not None:
        return required
    if seen.by_majority:
        numeric = len(column.rows.get("numeric", ()))
        return "number" if numeric > len(column.rows.get("text", ())) else "string"
    kinds = column.kinds()
    return "string" if "text" in kinds and not kinds & {"int", "float"} else "number"


def _expectation(name: str, known: ColumnType, narrow: bool) -> str:
    if narrow and name == VALUE:
        return "must be a number or a numeric string"
    if narrow and name in METRIC_COLUMNS:
        return "must be a metric name (a string)"
    if known == "number":
        return "is a number column (a column keeps its type): send a number or a numeric string"
    if _is_id(name):
        return "holds ids: send a string or an integer"
    return "is a string column (a column keeps its type): send a string"


def _role(name: str, known: ColumnType, narrow: bool) -> Role:
    if narrow:
        if name in METRIC_COLUMNS:
            return "metric_name"
        return "value" if name == VALUE else "dimension"
    return "metric" if known == "number" else "dimension"
