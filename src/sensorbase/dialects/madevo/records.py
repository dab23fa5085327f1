"""Madevo records: the vocabulary of an insert, its envelope, and the records turned into one
canonical PointBatch (columns built once). Which column plays which part comes from schema.py."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import msgspec
import numpy as np

from sensorbase.dialects.body import parse_json
from sensorbase.errors import InvalidInput, PayloadTooLarge, Problem, UnprocessableInput
from sensorbase.model import PointBatch, SeriesKey
from sensorbase.times import parse_iso_us

TIMESTAMP = "timestamp"
VALUE = "value"
METRIC_COLUMNS = ("metric", "metric_name")
ENTITY = "entity_id"
BAD_TIME = "Invalid timestamp format"
MAX_KEY_CHARS = 200

ColumnType = Literal["number", "string"]
Role = Literal["entity", "metric", "dimension", "metric_name", "value"]
Kind = Literal["int", "float", "numeric", "text", "other"]
NUMBERS: frozenset[str] = frozenset({"int", "float", "numeric"})
IDENTIFIERS: frozenset[str] = frozenset({"int", "numeric", "text"})
STRINGS: frozenset[str] = frozenset({"numeric", "text"})
_NUMERIC = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")  # ASCII
encode = msgspec.json.Encoder()


def describe(problem: Problem) -> str:
    where = []
    if problem.index is not None:
        where.append(f"row {problem.index}")
    if problem.field:
        where.append(f"column '{problem.field}'")
    return f"{', '.join(where)}: {problem.reason}" if where else problem.reason


def refuse(problems: list[Problem], kind: type[InvalidInput] = UnprocessableInput) -> InvalidInput:
    """Every problem, by row; the message is Madevo's own when only timestamps are wrong."""
    unique = sorted(set(problems), key=lambda p: (p.index or 0, p.field or ""))
    if all(p.reason.startswith(BAD_TIME) for p in unique):
        return kind(BAD_TIME, unique)
    first = describe(unique[0])
    return kind(first if len(unique) == 1 else f"{len(unique)} problems; first: {first}", unique)


# --- the request: envelope and what its columns hold ------------------------------------------


def envelope(raw: bytes, max_records: int) -> tuple[str, list[Any]]:
    """`datasource_id` and `data` of an insert body (400 or 413 when they are unusable)."""
    body = parse_json(raw)
    if not isinstance(body, dict):
        raise InvalidInput('the body must be a JSON object {"datasource_id", "data"}')
    problems = []
    source_id = body.get("datasource_id")
    if isinstance(source_id, int) and not isinstance(source_id, bool):
        source_id = str(source_id)
    if source_id is None:
        problems.append(Problem("is required", "datasource_id"))
    elif not isinstance(source_id, str) or not source_id.strip():
        problems.append(Problem("must be a non-empty string", "datasource_id"))
    data = body.get("data")
    if data is None:
        problems.append(Problem("is required", "data"))
    elif not isinstance(data, list):
        problems.append(Problem("must be an array of records", "data"))
    elif not data:
        problems.append(Problem("must hold at least one record", "data"))
    if problems:
        raise refuse(problems, InvalidInput)
    assert isinstance(source_id, str) and isinstance(data, list)
    if len(data) > max_records:
        raise PayloadTooLarge(
            f"{len(data)} records in one request; the limit is {max_records}: split the insert"
        )
    return source_id, data


def kind_of(value: Any) -> Kind:
    if isinstance(value, bool):
        return "other"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "numeric" if _NUMERIC.fullmatch(value) else "text"
    return "other"


# --- records → canonical points ----------------------------------------------------------------


@dataclass(slots=True)
class Built:
    batch: PointBatch
    row: list[int]  # per point: the record it came from
    column: list[str]  # per point: the column holding its value
    problems: list[Problem]


def build(
    records: list[Any],
    roles: dict[str, Role],
    narrow: bool,
    source_id: str,
    skip: set[int],
    parse: Callable[[Any, dict[str, int]], int] | None = None,
) -> Built:
    """The records' points, columns built once. Rows in `skip` are already refused. `parse`
    reads a record's `timestamp` (default: ISO 8601 with a zone; a /api/v1 data source's own
    `timeformat` otherwise)."""
    parse = parse or parse_timestamp
    index: dict[SeriesKey, int] = {}
    series_index: list[int] = []
    time_us: list[int] = []
    values: list[float] = []
    extras: list[str | None] = []
    rows: list[int] = []
    columns: list[str] = []
    problems: list[Problem] = []
    parsed: dict[str, int] = {}
    narrow_ready = VALUE in roles and any(m in roles for m in METRIC_COLUMNS)
    for i, record in enumerate(records):
        if not isinstance(record, dict):
            continue
        stamp = record.get(TIMESTAMP)
        try:
            moment = parse(stamp, parsed)
        except ValueError as exc:
            problems.append(Problem(str(exc), TIMESTAMP, i))
            continue
        if i in skip:
            continue
        source, metric_name, metric_column = source_id, None, None
        dimensions: dict[str, Any] = {}
        pairs: list[tuple[str, str, Any]] = []  # (field, column, value)
        unresolved = False
        for name, value in record.items():
            role = roles.get(name)
            if value is None or name == TIMESTAMP:
                continue
            if role is None:
                unresolved = True  # its column is refused already
            elif role == "entity":
                source = str(value)
                if len(source) > MAX_KEY_CHARS or not source.strip():
                    problems.append(Problem(f"must be 1 to {MAX_KEY_CHARS} characters", name, i))
            elif role == "metric":
                pairs.append((name, name, value))
            elif role == "dimension":
                dimensions[name] = value
            elif role == "metric_name":
                if metric_column is not None:
                    problems.append(Problem("give 'metric' or 'metric_name', not both", name, i))
                metric_name, metric_column = value, name
        if narrow:
            if not narrow_ready:
                # Its value or metric column is refused already, or holds only nulls.
                if record.get(VALUE) is None:
                    problems.append(Problem("is required", VALUE, i))
                continue
            if metric_name is None or not str(metric_name).strip():
                problems.append(Problem("is required: the metric this value measures", "metric", i))
            elif record.get(VALUE) is None:
                problems.append(Problem("is required", VALUE, i))
            else:
                pairs.append((str(metric_name), VALUE, record[VALUE]))
        elif not pairs and not unresolved and any(m in record for m in METRIC_COLUMNS):
            problems.append(
                Problem("is required: a record naming its metric carries a value", VALUE, i)
            )
        elif not pairs and not unresolved:
            problems.append(
                Problem(
                    "holds no metric: a record needs a number column besides the timestamp",
                    None,
                    i,
                )
            )
        extra = encode.encode({"meta": dimensions}).decode() if dimensions else None
        for name, column, value in pairs:
            key = SeriesKey(source_id, source, name)
            series_index.append(index.setdefault(key, len(index)))
            time_us.append(moment)
            values.append(_float(value))
            extras.append(extra)
            rows.append(i)
            columns.append(column)
    batch = PointBatch(
        keys=list(index),
        series_index=np.array(series_index, np.int32),
        time_us=np.array(time_us, np.int64),
        value=np.array(values, np.float64),
        extra=extras if any(e is not None for e in extras) else None,
    )
    return Built(batch, rows, columns, problems)


def _float(value: Any) -> float:
    """A JSON number or numeric string as a float64; one beyond its range (a 400-digit
    integer) as ±inf, which the pipeline's check refuses, naming the row and column."""
    try:
        return float(value)
    except OverflowError:
        return math.inf if value > 0 else -math.inf


def parse_timestamp(stamp: Any, parsed: dict[str, int]) -> int:
    """UTC microseconds of an ISO 8601 timestamp with a zone; `parsed` caches repeated ones."""
    if not isinstance(stamp, str):
        if stamp is None:
            raise ValueError(f"{BAD_TIME}: the timestamp is required")
        raise ValueError(f"{BAD_TIME}: must be an ISO 8601 string with a time zone")
    moment = parsed.get(stamp)
    if moment is None:
        try:
            moment = parsed[stamp] = parse_iso_us(stamp)
        except ValueError as exc:
            raise ValueError(f"{BAD_TIME}: {exc}") from None
    return moment
