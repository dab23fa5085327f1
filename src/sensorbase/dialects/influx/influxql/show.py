"""The SHOW statements, answered from the bucket's series (series.py) in InfluxDB's shape:
DATABASES, RETENTION POLICIES, MEASUREMENTS, TAG KEYS, TAG VALUES, FIELD KEYS and SERIES."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sensorbase.dialects.influx.influxql import ast
from sensorbase.dialects.influx.influxql.answer import Series
from sensorbase.dialects.influx.influxql.series import (
    InfluxSeries,
    StatementError,
    compile_regex,
    measurement_matcher,
)
from sensorbase.dialects.influx.influxql.where import matches, split

# Sensorbase keeps every point until it is deleted: one retention policy, InfluxDB's default.
RETENTION_POLICY = ["autogen", "0s", "168h0m0s", 1, True]


def _window(rows: list[Any], window: ast.Window) -> list[Any]:
    end = window.offset + window.limit if window.limit else None
    return rows[window.offset : end]


def _selected(
    series: list[InfluxSeries], sources: Iterable[ast.Measurement], condition: ast.Expr | None
) -> list[InfluxSeries]:
    """The series of the FROM list whose tags satisfy the condition (no time bound: a SHOW
    answers from the catalog, as InfluxDB's answers from its index)."""
    wanted = measurement_matcher(sources)
    fields = {f for s in series for f in s.fields}
    found = split(condition, 0, fields)
    if found.start_ns is not None or found.end_ns is not None:
        raise StatementError("SHOW statements take no time condition here")
    return [s for s in series if wanted(s.measurement) and matches(found.tags, s.tags)]


def databases(names: list[str]) -> list[Series]:
    return [Series("databases", {}, ["name"], [[n] for n in names])]


def retention_policies() -> list[Series]:
    columns = ["name", "duration", "shardGroupDuration", "replicaN", "default"]
    return [Series(None, {}, columns, [list(RETENTION_POLICY)])]


def measurements(stmt: ast.ShowMeasurements, series: list[InfluxSeries]) -> list[Series]:
    chosen = _selected(series, (), stmt.condition)
    names = sorted({s.measurement for s in chosen})
    if stmt.measurement is not None:
        rhs = stmt.measurement.rhs
        if isinstance(rhs, ast.Regex):
            pattern = compile_regex(rhs.pattern)
            names = [n for n in names if pattern.search(n)]
        elif isinstance(rhs, ast.VarRef):
            names = [n for n in names if n == rhs.name]
    rows = _window([[n] for n in names], stmt.window)
    return [Series("measurements", {}, ["name"], rows)] if rows else []


def _by_measurement(chosen: list[InfluxSeries]) -> dict[str, list[InfluxSeries]]:
    out: dict[str, list[InfluxSeries]] = {}
    for s in chosen:
        out.setdefault(s.measurement, []).append(s)
    return dict(sorted(out.items()))


def tag_keys(stmt: ast.ShowTagKeys, series: list[InfluxSeries]) -> list[Series]:
    out = []
    for name, members in _by_measurement(_selected(series, stmt.sources, stmt.condition)).items():
        keys = sorted({k for s in members for k in s.tags})
        rows = _window([[k] for k in keys], stmt.window)
        if rows:
            out.append(Series(name, {}, ["tagKey"], rows))
    return out


def tag_values(stmt: ast.ShowTagValues, series: list[InfluxSeries]) -> list[Series]:
    if stmt.op in ("=~", "!~"):
        pattern = compile_regex(stmt.regex or "")

        def wanted(key: str) -> bool:
            return (pattern.search(key) is not None) == (stmt.op == "=~")
    elif stmt.op == "!=":

        def wanted(key: str) -> bool:
            return key != stmt.keys[0]
    else:

        def wanted(key: str) -> bool:
            return key in stmt.keys

    out = []
    for name, members in _by_measurement(_selected(series, stmt.sources, stmt.condition)).items():
        pairs = sorted({(k, v) for s in members for k, v in s.tags.items() if wanted(k)})
        rows = _window([[k, v] for k, v in pairs], stmt.window)
        if rows:
            out.append(Series(name, {}, ["key", "value"], rows))
    return out


def field_keys(stmt: ast.ShowFieldKeys, series: list[InfluxSeries]) -> list[Series]:
    out = []
    for name, members in _by_measurement(_selected(series, stmt.sources, None)).items():
        keys = sorted({f for s in members for f in s.fields})
        # Sensorbase stores numbers: every field is a float to InfluxDB's clients.
        rows = _window([[k, "float"] for k in keys], stmt.window)
        if rows:
            out.append(Series(name, {}, ["fieldKey", "fieldType"], rows))
    return out


def series_keys(stmt: ast.ShowSeries, series: list[InfluxSeries]) -> list[Series]:
    keys = sorted(s.series_key for s in _selected(series, stmt.sources, stmt.condition))
    rows = _window([[k] for k in keys], stmt.window)
    return [Series(None, {}, ["key"], rows)] if rows else []
