"""Databoom dates: what JavaScript's `new Date(...)` reads, to UTC microseconds.

ISO 8601 first (any offset: `Z`, `+00:00`, `+0000`), then the loose forms through dateutil:
`04/23/2018`, `04/23/2018 12:26:00.996+02:00`, `Mar 23 2018 10:26:00.996Z`, `March 23 2018`,
`Mon Apr 23 2018 12:26:00 GMT+0200 (Central European Summer Time)`. Slashed dates are
month/day/year. A date without a zone is UTC. A number is milliseconds since 1970.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from typing import Any

from dateutil import parser as dateparser

# The zone names JavaScript's date parser knows; other names are refused, not guessed.
_ZONE_HOURS = {
    "UT": 0, "UTC": 0, "GMT": 0, "Z": 0,
    "EST": -5, "EDT": -4, "CST": -6, "CDT": -5, "MST": -7, "MDT": -6, "PST": -8, "PDT": -7,
}  # fmt: skip
# `Date.prototype.toString()` writes `... GMT+0200 (Central European Summer Time)`: the offset
# after GMT is ISO-signed there (dateutil would read it POSIX-signed), the name is a comment.
_GMT_OFFSET = re.compile(r"\b(?:GMT|UTC)(?=[+-]\d)", re.IGNORECASE)
_COMMENT = re.compile(r"\s*\([^)]*\)\s*$")
# JavaScript reads a slashed date as month/day/year, always: "15/01/2024" is an Invalid Date
# there, where dateutil would quietly read it day first.
_SLASHED = re.compile(r"^\s*(\d{1,2})/(\d{1,2})/\d")
# Parsed twice with different defaults: a string that lacks a year or a month shows it.
_DEFAULT_A = datetime(2000, 1, 1)
_DEFAULT_B = datetime(2001, 2, 1)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)


def _zone(name: str | None, offset_s: int | None) -> tzinfo | None:
    if offset_s is not None:
        return timezone(timedelta(seconds=offset_s))
    if name is None:
        return None
    hours = _ZONE_HOURS.get(name.upper())
    if hours is None:
        raise ValueError(f"unknown time zone '{name}'; use an offset such as +02:00")
    return timezone(timedelta(hours=hours))


def parse_date(text: str) -> int:
    """A date string to UTC microseconds; ValueError with a reason a client can act on."""
    stripped = text.strip()
    try:
        moment = datetime.fromisoformat(stripped)
    except ValueError:
        moment = _parse_loose(text, stripped)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - _EPOCH) // _US


def _parse_loose(text: str, stripped: str) -> datetime:
    """The non-ISO forms. A string without at least a year and a month is refused (dateutil
    would fill them in from today; JavaScript gives an Invalid Date)."""
    loose = _GMT_OFFSET.sub("", _COMMENT.sub("", stripped))
    slashed = _SLASHED.match(loose)
    if slashed and not (1 <= int(slashed.group(1)) <= 12 and 1 <= int(slashed.group(2)) <= 31):
        raise ValueError(
            f"'{text}' is not a date: a slashed date is month/day/year, as JavaScript reads it"
        )
    try:
        moment = dateparser.parse(loose, default=_DEFAULT_A, tzinfos=_zone)
        other = dateparser.parse(loose, default=_DEFAULT_B, tzinfos=_zone)
    except dateparser.ParserError as exc:
        raise ValueError(f"'{text}' is not a date ({str(exc).split(':')[0]})") from None
    except (ValueError, OverflowError) as exc:
        raise ValueError(f"'{text}' is not a date ({exc})") from None
    if (moment.year, moment.month) != (other.year, other.month):
        raise ValueError(f"'{text}' is not a date (it needs at least a year and a month)")
    return moment


# Numbers of milliseconds: what JavaScript's `new Date(number)` takes (a chart's range), and
# what a push may store (a date string is in the years 1 to 9999; so is every number a push
# takes, which any time window of the server's lies within).
JS_MS = (-8_640_000_000_000_000, 8_640_000_000_000_000)
STORED_MS = (-62_135_596_800_000, 253_402_300_799_999)


def date_us(value: Any, cache: dict[str, int], limits_ms: tuple[int, int] = JS_MS) -> int:
    """A JSON date: a string (each distinct string parsed once, through `cache`) or a number of
    milliseconds since 1970 (as `new Date(number)`) within `limits_ms`."""
    if type(value) is str:
        found = cache.get(value)
        if found is None:
            found = cache[value] = parse_date(value)
        return found
    low, high = limits_ms
    if type(value) in (int, float) and math.isfinite(value) and low <= value <= high:
        return round(value * 1_000)
    if type(value) in (int, float):
        where = "JavaScript accepts" if limits_ms == JS_MS else "in the years 1 to 9999"
        raise ValueError(f"{value!r} is not a number of milliseconds {where}")
    raise ValueError("must be a date string or a number of milliseconds since 1970")


def dates_us(values: Iterable[Any]) -> dict[Any, int]:
    """Each of the distinct JSON dates `values` of a push to UTC microseconds; ValueError at a
    bad one. ISO 8601 strings (the common case) take a short path."""
    out: dict[Any, int] = {}
    fromisoformat = datetime.fromisoformat
    for value in values:
        if type(value) is str:
            try:
                moment = fromisoformat(value)
            except ValueError:
                out[value] = parse_date(value)
                continue
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
            out[value] = (moment - _EPOCH) // _US
        else:
            out[value] = date_us(value, {}, STORED_MS)
    return out
