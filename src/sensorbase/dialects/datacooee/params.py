"""The fetch endpoints' query parameters, in every spelling the document uses.

A name is matched case-insensitively with `-` and `_` alike (`timeperiod-start` is
`timeperiod_start`); `input_ids` and `inputs_ids` are one parameter. A value may be wrapped in
double (or single) quotes, as in the document's examples: `inputs_ids="senA,senB"`,
`asset_id="67"`, `timeperiod_start="2020-10-03 15:31:55"`. An empty optional value counts as
absent. Every bad parameter is named in one 400.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

from sensorbase.dialects.openapi import YES_NO, any_case
from sensorbase.errors import Problem, invalid
from sensorbase.model import TimeRange
from sensorbase.times import UNIT_US, WS, parse_iso_us

CANONICAL = {
    "asset_id": "asset_id",
    "input_ids": "inputs_ids",
    "inputs_ids": "inputs_ids",
    "timeperiod_start": "timeperiod_start",
    "timeperiod_finish": "timeperiod_finish",
    "timeperiod_last": "timeperiod_last",
    "limit": "limit",
    "is_add_lat_long": "is_add_lat_long",
    "is_add_x_axis_data": "is_add_x_axis_data",
    "is_add_metadata": "is_add_metadata",
    "order_by": "order_by",
    "sort_by": "sort_by",
    "aggregation_func": "aggregation_func",
}
AGGREGATION_FUNCS = ("min", "max", "avg")
DEFAULT_LIMIT = 1000
# The grammars (matched whole), which the OpenAPI document declares too (`PARAMETERS`): ASCII
# digits and letters in any case, spelled out (`\d` and re.IGNORECASE take more than ASCII).
POSITIVE = "0*([1-9][0-9]{0,17})"  # 1 to 10**18 - 1: an id or a count
LAST = (
    f"0*([1-9][0-9]{{0,11}}){WS}*[_-]?{WS}*"
    f"({any_case('hour')}|{any_case('day')}|{any_case('week')})[Ss]?"
)
_LAST = re.compile(LAST)
_LAST_UNIT_US = {"hour": UNIT_US["h"], "day": UNIT_US["d"], "week": UNIT_US["w"]}
_COUNT = re.compile(POSITIVE)
_EARLIEST_US = -(2**62)  # a period reaching further back starts here (int64 stays safe)
_PLUS_LOST = re.compile(r"(\d\d:\d\d(?::\d\d(?:\.\d+)?)?) (\d\d:?\d\d)$")
_TRUE, _FALSE = ("true", "1", "yes", "on"), ("false", "0", "no", "off")


@dataclass(frozen=True, slots=True)
class FetchParams:
    asset_id: int | None
    input_ids: list[str] | None
    time_range: TimeRange  # start inclusive, end exclusive (timeperiod_finish + 1 µs)
    limit: int
    add_lat_long: bool
    add_x_axis: bool
    add_metadata: bool
    order_by: Literal["time", "value"]
    order: Literal["asc", "desc"]
    aggregates: tuple[str, ...]
    names: dict[str, str]  # canonical name → the name the client used (for messages)

    def name(self, canonical: str) -> str:
        return self.names.get(canonical, canonical)


def unquote(text: str) -> str:
    value = text.strip()
    while len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        value = value[1:-1].strip()
    return value


def _split(values: list[str]) -> list[str]:
    """`"a,b"`, `"a","b"`, `a, b` → [a, b]: quotes and blanks dropped, duplicates once."""
    items = [part.strip().strip("\"'").strip() for value in values for part in value.split(",")]
    return list(dict.fromkeys(item for item in items if item))


class _Given:
    """The parameters sent, by canonical name, with the problems found reading them."""

    def __init__(self, items: list[tuple[str, str]], problems: list[Problem]) -> None:
        self.problems = problems
        self.values: dict[str, list[str]] = {}
        self.names: dict[str, str] = {}
        for raw_name, raw_value in items:
            canonical = CANONICAL.get(raw_name.strip().lower().replace("-", "_"))
            if canonical is None:
                known = ", ".join(sorted(set(CANONICAL) - {"input_ids"}))
                problems.append(
                    Problem(f"is not a parameter of this API (known: {known}, input_ids)", raw_name)
                )
                continue
            self.names.setdefault(canonical, raw_name)
            self.values.setdefault(canonical, []).append(raw_value)

    def name(self, canonical: str) -> str:
        return self.names.get(canonical, canonical)

    def scalar(self, canonical: str) -> str | None:
        values = [v for v in (unquote(v) for v in self.values.get(canonical, [])) if v]
        if len(set(values)) > 1:
            self.problems.append(Problem("is given more than once", self.name(canonical)))
        return values[0] if values else None

    def items(self, canonical: str) -> list[str] | None:
        return _split(self.values[canonical]) if canonical in self.values else None

    def flag(self, canonical: str) -> bool:
        text = self.scalar(canonical)
        if text is None:
            return False
        if text.lower() in _TRUE:
            return True
        if text.lower() not in _FALSE:
            self.problems.append(
                Problem(f"must be true or false, got '{text}'", self.name(canonical))
            )
        return False

    def fail(self, reason: str, canonical: str) -> None:
        self.problems.append(Problem(reason, self.name(canonical)))


def parse(
    items: list[tuple[str, str]], *, by_asset: bool, now_us: int, max_limit: int
) -> FetchParams:
    problems: list[Problem] = []
    given = _Given(items, problems)

    asset_id = None
    asset_text = given.scalar("asset_id")
    if by_asset and asset_text is None:
        given.fail("is required (the id of an asset, such as 67)", "asset_id")
    elif asset_text is not None:
        if counted := _COUNT.fullmatch(asset_text):
            asset_id = int(counted.group(1))
        else:
            given.fail(
                f"must be a positive integer (an asset's id, such as 67), got '{asset_text}'; "
                "to choose inputs use inputs_ids",
                "asset_id",
            )

    input_ids = given.items("inputs_ids")
    if not by_asset and not input_ids:
        given.fail('is required: the ids of inputs, such as "senA,senB"', "inputs_ids")
    if by_asset and not input_ids:
        input_ids = None

    time_range = _time_range(given, now_us)

    limit = DEFAULT_LIMIT
    limit_text = given.scalar("limit")
    if limit_text is not None:
        counted = _COUNT.fullmatch(limit_text)
        if not counted:
            given.fail(f"must be a positive integer, got '{limit_text}'", "limit")
        elif int(counted.group(1)) > max_limit:
            given.fail(f"may be at most {max_limit}", "limit")
        else:
            limit = int(counted.group(1))

    order_by: Literal["time", "value"] = "time"
    order_text = given.scalar("order_by")
    if order_text is not None:
        if order_text.lower() == "value":
            order_by = "value"
        elif order_text.lower() not in ("timestamp", "date"):
            given.fail(f"must be timestamp, date or value, got '{order_text}'", "order_by")
    order: Literal["asc", "desc"] = "asc"
    sort_text = given.scalar("sort_by")
    if sort_text is not None:
        if sort_text.lower() == "desc":
            order = "desc"
        elif sort_text.lower() != "asc":
            given.fail(f"must be asc or desc, got '{sort_text}'", "sort_by")

    aggregates: tuple[str, ...] = AGGREGATION_FUNCS
    chosen = [name.lower() for name in given.items("aggregation_func") or []]
    unknown = [name for name in chosen if name not in AGGREGATION_FUNCS]
    for name in unknown:
        given.fail(f"'{name}' is not one of min, max, avg", "aggregation_func")
    if chosen and not unknown:
        aggregates = tuple(name for name in AGGREGATION_FUNCS if name in chosen)

    params = FetchParams(
        asset_id=asset_id,
        input_ids=input_ids,
        time_range=time_range,
        limit=limit,
        add_lat_long=given.flag("is_add_lat_long"),
        add_x_axis=given.flag("is_add_x_axis_data"),
        add_metadata=given.flag("is_add_metadata"),
        order_by=order_by,
        order=order,
        aggregates=aggregates,
        names=given.names,
    )
    if problems:
        raise invalid(problems)
    return params


def _time_range(given: _Given, now_us: int) -> TimeRange:
    start_text = given.scalar("timeperiod_start")
    finish_text = given.scalar("timeperiod_finish")
    last_text = given.scalar("timeperiod_last")
    bounds: dict[str, int] = {}
    for canonical, text in (("timeperiod_start", start_text), ("timeperiod_finish", finish_text)):
        if text is None:
            continue
        # An unencoded `+01:00` arrives as ` 01:00` (form decoding): restore the plus.
        text = _PLUS_LOST.sub(r"\1+\2", text)
        try:
            bounds[canonical] = parse_iso_us(text, naive_is_utc=True)
        except ValueError:
            given.fail(
                f"must be a UTC date such as \"2020-11-02 14:24:38\", got '{text}'", canonical
            )
    if last_text is not None:
        if start_text is not None or finish_text is not None:
            given.fail(
                "cannot be combined with timeperiod_start or timeperiod_finish", "timeperiod_last"
            )
            return TimeRange(None, None)
        match = _LAST.fullmatch(last_text.strip())
        if not match:
            given.fail(
                'must be a count and a unit (hours, days or weeks) such as "5_days", '
                f'"1_hour" or "2_weeks", got \'{last_text}\'',
                "timeperiod_last",
            )
            return TimeRange(None, None)
        span = int(match.group(1)) * _LAST_UNIT_US[match.group(2).lower()]
        return TimeRange(max(now_us - span, _EARLIEST_US), None)
    start = bounds.get("timeperiod_start")
    finish = bounds.get("timeperiod_finish")
    if start is not None and finish is not None and finish < start:
        given.fail("is before timeperiod_start", "timeperiod_finish")
    return TimeRange(start, finish + 1 if finish is not None else None)


# --- the parameters as the OpenAPI document declares them ------------------------------------

_QUOTES = "[\"']"
# What `_split` makes of an item: blanks, then quotes, then blanks stripped from its ends.
_AROUND = f"{WS}*{_QUOTES}*{WS}*"
# A time as parse_iso_us reads it (a UTC date, a time, an offset), and an offset whose `+` a
# form decoding made a space (`_PLUS_LOST`).
_TIME = (
    "[0-9]{4}-[0-9]{2}-[0-9]{2}"
    "(?:[T ][0-9]{2}(?::[0-9]{2}(?::[0-9]{2}(?:[.,][0-9]+)?)?)?)?"
    "(?:Z|[+-][0-9]{2}(?::?[0-9]{2})?| [0-9]{2}:?[0-9]{2})?"
)


def _value(inner: str, *, required: bool = False) -> dict[str, Any]:
    """A value as `unquote` reads it: blanks around it, and a pair of double or single quotes
    (the document's examples quote their values); empty, unless required, is absent."""
    body = f"(?:{inner})" if required else f"(?:{inner})?"
    quoted = "|".join(f"{q}{WS}*{body}{WS}*{q}" for q in ('"', "'"))
    return {"type": "string", "pattern": f"^{WS}*(?:{body}|{quoted}){WS}*$"}


def _words(words: tuple[str, ...]) -> dict[str, Any]:
    """A comma-separated list of `words` (any case) as `_split` reads it; empty items ignored."""
    word = "|".join(any_case(w) for w in words)
    item = f"{_AROUND}(?:{word})?{_AROUND}"
    return {"type": "string", "pattern": f"^{item}(?:,{item})*$"}


def parameters(by_asset: bool, max_limit: int) -> list[dict[str, Any]]:
    """The fetch parameters, as `parse` reads them (in OpenAPI, by their first spelling)."""
    digits = str(max_limit)
    assert digits.rstrip("0") == "1", "the pattern below says <= a power of ten"
    limit = f"0*(?:[1-9][0-9]{{0,{len(digits) - 2}}}|{digits})"
    flag = _value(YES_NO)
    schemas: dict[str, tuple[dict[str, Any], str]] = {
        "asset_id": (_value(POSITIVE, required=by_asset), "An asset's id: a group's (67)"),
        "inputs_ids": (
            # At least one input by_inputs: a character that is no comma, quote or blank.
            {"type": "string", "pattern": f"^[\\s\\S]*[^,\"'{WS[1:-1]}][\\s\\S]*$"}
            if not by_asset
            else {"type": "string"},
            'Input ids, comma-separated: "senA,senB" (also spelled input_ids)',
        ),
        "timeperiod_start": (_value(_TIME), "From (inclusive), UTC: 2020-11-02 14:24:38"),
        "timeperiod_finish": (_value(_TIME), "To (inclusive), UTC: 2020-11-03 15:24:38"),
        "timeperiod_last": (_value(LAST), "The last N hours, days or weeks: 5_days"),
        "limit": (_value(limit), f"Readings per input (default 1000, at most {max_limit})"),
        "is_add_lat_long": (flag, "Add latitude and longitude"),
        "is_add_x_axis_data": (flag, "Add x_axis_value"),
        "is_add_metadata": (flag, "Add metadata"),
        "order_by": (_value("|".join(map(any_case, ("timestamp", "date", "value")))), ""),
        "sort_by": (_value(f"{any_case('asc')}|{any_case('desc')}"), "asc or desc"),
        "aggregation_func": (_words(AGGREGATION_FUNCS), "Statistics: any of min,max,avg"),
    }
    return [
        {
            "name": name,
            "in": "query",
            "required": name == ("asset_id" if by_asset else "inputs_ids"),
            "description": f"{text}; also \"quoted\" (names: any case, '-' for '_')",
            "schema": schema,
        }
        for name, (schema, text) in schemas.items()
    ]
