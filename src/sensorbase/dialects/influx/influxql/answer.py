"""InfluxDB 1.x's JSON answer: one result per statement, each with its `statement_id` and
its series (`name`, `tags`, `columns`, `values`) or its `error`; times as RFC 3339 strings, or
as integers in the unit of the `epoch` parameter."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

# Microseconds per unit of `epoch` (ns is the one finer than the store: times are multiplied).
EPOCH_UNITS = {"h": 3_600_000_000, "m": 60_000_000, "s": 1_000_000, "ms": 1_000, "u": 1, "µ": 1}
_EPOCH_START = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(slots=True)
class Series:
    name: str | None
    tags: dict[str, str]
    columns: list[str]
    values: list[list[Any]] = field(default_factory=list)


def rfc3339(time_us: int) -> str:
    """RFC 3339 with the fraction's trailing zeros cut, as InfluxDB writes times."""
    moment = _EPOCH_START + timedelta(microseconds=time_us)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if moment.microsecond:
        text += "." + f"{moment.microsecond:06d}".rstrip("0")
    return text + "Z"


def time_formatter(epoch: str | None) -> Any:
    """How the `time` column is written for the request's `epoch` (None: RFC 3339)."""
    if epoch is None:
        return rfc3339
    if epoch in ("n", "ns"):
        return lambda us: us * 1000
    per = EPOCH_UNITS[epoch]
    return lambda us: us // per


def series_json(series: Series, timed: bool, write_time: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if series.name is not None:
        out["name"] = series.name
    if series.tags:
        out["tags"] = series.tags
    out["columns"] = series.columns
    if timed:
        out["values"] = [[write_time(row[0]), *row[1:]] for row in series.values]
    else:
        out["values"] = series.values
    return out


def result_json(
    statement_id: int, series: list[Series], timed: bool, epoch: str | None
) -> dict[str, Any]:
    out: dict[str, Any] = {"statement_id": statement_id}
    if series:
        write_time = time_formatter(epoch)
        out["series"] = [series_json(s, timed, write_time) for s in series]
    return out


def error_json(statement_id: int, message: str) -> dict[str, Any]:
    return {"statement_id": statement_id, "error": message}
