"""SQL text that both backends share for reading points and listing series (parameters use `?`;
PostgreSQL rewrites them: postgres/reader.py `pg_sql`)."""

from __future__ import annotations

from typing import Any

from sensorbase.model import TimeRange

SIMPLE_AGGREGATES = {
    "min": "min(value)",
    "max": "max(value)",
    "avg": "avg(value)",
    "sum": "sum(value)",
    "count": "count(*)",
}


def range_clause(time_range: TimeRange, column: str = "time_us") -> tuple[str, list[int]]:
    parts, params = [], []
    if time_range.start_us is not None:
        parts.append(f"{column} >= ?")
        params.append(time_range.start_us)
    if time_range.end_us is not None:
        parts.append(f"{column} < ?")
        params.append(time_range.end_us)
    return "".join(f" AND {p}" for p in parts), params


def simple_select(aggregates: tuple[str, ...]) -> tuple[list[str], str]:
    names = [a for a in aggregates if a in SIMPLE_AGGREGATES]
    return names, ", ".join(SIMPLE_AGGREGATES[a] for a in names) or "count(*)"


def series_select(
    org_id: int,
    bucket_id: int | None,
    source_keys: list[str] | None,
    fields: list[str] | None,
    collate: str = "",
) -> tuple[str, list[Any]]:
    """The series of an organisation, narrowed by bucket, source keys and fields, in
    (bucket, source, field) order; `collate` pins that order to bytes where the locale would
    not (PostgreSQL: ' COLLATE "C"')."""
    sql = (
        "SELECT se.id, b.key, so.key, se.field, se.unit FROM series se "
        "JOIN sources so ON so.id = se.source_id JOIN buckets b ON b.id = so.bucket_id "
        "WHERE b.org_id = ?"  # (a source's organisation is its bucket's: catalog_sql.py)
    )
    params: list[Any] = [org_id]
    if bucket_id is not None:
        sql += " AND so.bucket_id = ?"
        params.append(bucket_id)
    if source_keys:
        sql += f" AND so.key IN ({','.join('?' * len(source_keys))})"
        params.extend(source_keys)
    if fields:
        sql += f" AND se.field IN ({','.join('?' * len(fields))})"
        params.extend(fields)
    sql += f" ORDER BY b.key{collate}, so.key{collate}, se.field{collate}"
    return sql, params
