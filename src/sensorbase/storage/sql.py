"""SQL text that both backends share (parameters use `?`; PostgreSQL's module rewrites them)."""

from __future__ import annotations

from sensorbase.model import TimeRange

SIMPLE_AGGREGATES = {
    "min": "min(value)",
    "max": "max(value)",
    "avg": "avg(value)",
    "sum": "sum(value)",
    "count": "count(*)",
}


def range_clause(time_range: TimeRange) -> tuple[str, list[int]]:
    parts, params = [], []
    if time_range.start_us is not None:
        parts.append("time_us >= ?")
        params.append(time_range.start_us)
    if time_range.end_us is not None:
        parts.append("time_us < ?")
        params.append(time_range.end_us)
    return "".join(f" AND {p}" for p in parts), params


def simple_select(aggregates: tuple[str, ...]) -> tuple[list[str], str]:
    names = [a for a in aggregates if a in SIMPLE_AGGREGATES]
    return names, ", ".join(SIMPLE_AGGREGATES[a] for a in names) or "count(*)"
