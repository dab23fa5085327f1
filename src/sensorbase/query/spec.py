"""The query model: which series, which time range, and which of raw, latest, aggregates or
M4 (a chart's downsampling: storage/m4.py)."""

from __future__ import annotations

import base64
import functools
import json
import re
from dataclasses import dataclass
from typing import Literal
from zoneinfo import ZoneInfo, available_timezones

from sensorbase.errors import Problem, invalid
from sensorbase.model import TimeRange
from sensorbase.query.fill import FILL_HELP, NO_FILL, Fill, parse_fill
from sensorbase.query.reducers import NAMES, known
from sensorbase.storage.m4 import MAX_WIDTH as MAX_WIDTH  # for the dialects (no storage)
from sensorbase.times import AMOUNT, UNIT_US, WS, now_us, parse_duration_us, parse_instant

UTC_ZONE = ZoneInfo("UTC")
Mode = Literal["raw", "latest", "aggregate", "m4"]
MODES: tuple[Mode, ...] = ("raw", "latest", "aggregate", "m4")
# A bucket width: 1 to 999,999,999 of a unit (999,999,999 h still fits 64-bit microseconds).
# Matched whole; also the pattern the OpenAPI document declares.
EVERY_PATTERN = rf"^{WS}*{AMOUNT}{WS}*(s|m|h|d|w|mo|y){WS}*$"
_EVERY = re.compile(EVERY_PATTERN)
EARLIEST_US = -(2**62)  # where a relative period reaching further back starts


@functools.cache
def time_zones() -> tuple[str, ...]:
    """The IANA zones this server knows (its tz database), sorted: `tz` takes these only
    (ZoneInfo itself would also open other files of the database's directory)."""
    return tuple(sorted(available_timezones()))


@dataclass(frozen=True, slots=True)
class Every:
    """A bucket width: fixed (`us`) or calendar (`unit` in d, w, mo, y, counted in `tz`)."""

    amount: int
    unit: str

    @property
    def fixed_us(self) -> int | None:
        return self.amount * UNIT_US[self.unit] if self.unit in ("s", "m", "h") else None


@dataclass(frozen=True, slots=True)
class Cursor:
    series_id: int
    time_us: int

    def encode(self) -> str:
        raw = json.dumps([self.series_id, self.time_us]).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str) -> Cursor:
        try:
            padded = text + "=" * (-len(text) % 4)
            series_id, time_us = json.loads(base64.urlsafe_b64decode(padded))
            cursor = cls(int(series_id), int(time_us))
        except (ValueError, TypeError, OverflowError, RecursionError):
            cursor = None
        if cursor is None or not all(
            -(2**63) <= n < 2**63 for n in (cursor.series_id, cursor.time_us)
        ):
            raise invalid([Problem("is not a cursor this server issued", "cursor")])
        return cursor


@dataclass(frozen=True, slots=True)
class QuerySpec:
    bucket: str | None
    sources: list[str] | None
    fields: list[str] | None
    time_range: TimeRange
    mode: Mode = "raw"
    aggregates: tuple[str, ...] = ()
    every: Every | None = None
    tz: ZoneInfo = UTC_ZONE
    limit: int | None = None
    order: str = "asc"
    cursor: Cursor | None = None
    width: int | None = None  # pixel columns (mode m4)
    fill: Fill = NO_FILL  # empty buckets (query/fill.py)
    integral_unit_us: int = 1_000_000  # what `integral` multiplies values by


class Exact(list[str]):
    """Names as a JSON list gives them (the POST form of a query): each taken whole, since a
    source key may hold a comma (an InfluxDB series key: `cpu,host=a`)."""


def split_list(value: str | list[str] | None) -> list[str] | None:
    """`a,b` or repeated parameters into a list (an `Exact` list as it is); None when absent."""
    if value is None:
        return None
    if isinstance(value, Exact):
        return list(value) or None
    items = value if isinstance(value, list) else [value]
    out = [part.strip() for item in items for part in item.split(",") if part.strip()]
    return out or None


def parse_spec(
    *,
    bucket: str | None = None,
    source: str | list[str] | None = None,
    field: str | list[str] | None = None,
    start: str | None = None,
    end: str | None = None,
    last: str | None = None,
    mode: str | None = None,
    aggregate: str | list[str] | None = None,
    every: str | None = None,
    tz: str | None = None,
    limit: int | None = None,
    order: str | None = None,
    cursor: str | None = None,
    width: int | None = None,
    fill: str | None = None,
    integral_unit: str | None = None,
) -> QuerySpec:
    """Turn loose parameters into a QuerySpec, naming every bad one at once."""
    problems: list[Problem] = []
    start_us = end_us = None
    if last is not None:
        if start is not None:
            problems.append(Problem("give either 'last' or 'start', not both", "last"))
        try:
            end_us = now_us()
            start_us = max(end_us - parse_duration_us(last), EARLIEST_US)
        except ValueError as exc:
            problems.append(Problem(str(exc), "last"))
    for name, text in (("start", start), ("end", end)):
        if text is None:
            continue
        try:
            value = parse_instant(text)
        except ValueError as exc:
            problems.append(Problem(str(exc), name))
            continue
        if name == "start":
            start_us = value
        else:
            end_us = value
    if start_us is not None and end_us is not None and end_us <= start_us:
        problems.append(Problem("must be after start", "end"))

    aggregates = tuple(split_list(aggregate) or ())
    for name in aggregates:
        if not known(name):
            reason = f"'{name}' is not one of {', '.join(NAMES)} or a percentile p0 to p100"
            problems.append(Problem(reason, "aggregate"))
    chosen_mode: Mode
    if mode is None:
        chosen_mode = "aggregate" if aggregates or every else "raw"
    elif mode in MODES:
        chosen_mode = mode
    else:
        problems.append(Problem("must be raw, latest, aggregate or m4", "mode"))
        chosen_mode = "raw"
    if chosen_mode == "aggregate" and not aggregates:
        aggregates = ("count", "min", "max", "avg")

    if chosen_mode == "m4":
        if width is None:
            problems.append(
                Problem("is required with mode=m4 (the chart's width in pixels)", "width")
            )
        if start_us is None or end_us is None:
            problems.append(
                Problem("mode=m4 needs a bounded range: start and end, or last", "start")
            )
        if aggregates:
            problems.append(Problem("is not taken with mode=m4", "aggregate"))
    elif width is not None:
        problems.append(Problem("is taken with mode=m4 only", "width"))
    if width is not None and not 1 <= width <= MAX_WIDTH:
        problems.append(Problem(f"must be an integer from 1 to {MAX_WIDTH}", "width"))

    parsed_every = None
    if every is not None:
        match = _EVERY.fullmatch(every)
        if not match:
            problems.append(
                Problem(
                    "must be like 30s, 15m, 1h, 1d, 1w, 1mo or 1y (1 to 999999999 of a unit)",
                    "every",
                )
            )
        else:
            parsed_every = Every(int(match.group(1)), match.group(2))
        if chosen_mode != "aggregate":
            problems.append(Problem("needs aggregates (mode=aggregate)", "every"))

    parsed_fill = parse_fill(fill)
    if isinstance(parsed_fill, Problem):
        problems.append(parsed_fill)
        parsed_fill = NO_FILL
    elif parsed_fill.kind != "none" and every is None:
        problems.append(Problem(f"needs every (buckets to fill): {FILL_HELP}", "fill"))
    unit_us = 1_000_000
    if integral_unit is not None:
        try:
            unit_us = parse_duration_us(integral_unit)
        except ValueError as exc:
            problems.append(Problem(str(exc), "integral_unit"))
        if "integral" not in aggregates:
            problems.append(Problem("is taken with aggregate=integral only", "integral_unit"))

    zone = ZoneInfo("UTC")
    if tz is not None:
        if tz in time_zones():
            zone = ZoneInfo(tz)
        else:
            problems.append(Problem(f"'{tz}' is not an IANA time zone such as Europe/Paris", "tz"))

    if limit is not None and limit <= 0:
        problems.append(Problem("must be a positive integer", "limit"))
    if order is not None and order not in ("asc", "desc"):
        problems.append(Problem("must be asc or desc", "order"))
    parsed_cursor = Cursor.decode(cursor) if cursor else None
    if problems:
        raise invalid(problems)
    return QuerySpec(
        bucket=bucket,
        sources=split_list(source),
        fields=split_list(field),
        time_range=TimeRange(start_us, end_us),
        mode=chosen_mode,
        aggregates=aggregates,
        every=parsed_every,
        tz=zone,
        limit=limit,
        order=order or ("desc" if chosen_mode == "latest" else "asc"),
        cursor=parsed_cursor,
        width=width,
        fill=parsed_fill,
        integral_unit_us=unit_us,
    )
