"""What `query()` returns: typed records parsed from `GET /v1/query`, and DataFrames of them
(polars or pandas, whichever is installed; neither is a dependency of the client)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class Record:
    """One stored point of one series (raw and latest queries)."""

    bucket: str
    source: str
    field: str
    time: datetime
    value: float
    unit: str | None = None


@dataclass(frozen=True)
class AggregateRecord:
    """The aggregates of one series over the range (`time` None) or over one time bucket
    (`every`: `time` is the bucket's start)."""

    bucket: str
    source: str
    field: str
    time: datetime | None
    values: dict[str, float | None]
    unit: str | None = None


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def parse_series(document: dict[str, Any]) -> list[Record | AggregateRecord]:
    out: list[Record | AggregateRecord] = []
    for entry in document.get("series", []):
        names = (entry["bucket"], entry["source"], entry["field"])
        unit = entry.get("unit")
        for point in entry.get("points", []):
            out.append(Record(*names, parse_time(point["time"]), point["value"], unit))
        if "aggregates" in entry:
            out.append(AggregateRecord(*names, None, dict(entry["aggregates"]), unit))
        for row in entry.get("buckets", []):
            values = {k: v for k, v in row.items() if k != "time"}
            out.append(AggregateRecord(*names, parse_time(row["time"]), values, unit))
    return out


def rows(records: Sequence[Record | AggregateRecord]) -> list[dict[str, Any]]:
    """One flat dict per record: bucket, source, field, time, then value or each aggregate."""
    flat = []
    for r in records:
        row: dict[str, Any] = {"bucket": r.bucket, "source": r.source, "field": r.field}
        row["time"] = r.time
        if isinstance(r, Record):
            row["value"] = r.value
        else:
            row.update(r.values)
        flat.append(row)
    return flat


def to_frame(records: Sequence[Record | AggregateRecord], library: str | None = None) -> Any:
    """A DataFrame of `records`: `library` "polars" or "pandas", or the first of them installed.
    Times are timezone-aware UTC."""
    table = rows(records)
    for name in (library,) if library else ("polars", "pandas"):
        try:
            if name == "polars":
                import polars

                return polars.DataFrame(table) if table else polars.DataFrame()
            if name == "pandas":
                import pandas

                return pandas.DataFrame(table)
        except ImportError:
            if library:
                raise
            continue
        raise ValueError(f"library must be 'polars' or 'pandas', not {library!r}")
    raise ImportError("query_frame() needs polars or pandas: pip install polars (or pandas)")
