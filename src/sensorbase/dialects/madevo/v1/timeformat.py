"""A /api/v1 data source's `timeformat`: how its time field's strings are read, and which
format a sample of them has (`detect-timeformat`).

A format is `ISO8601` (a zone is optional; none means UTC), `unix` or `unix_ms` (epoch seconds
or milliseconds, as digits), or a strftime pattern (`%Y-%m-%d %H:%M:%S`, read as UTC unless it
has `%z`)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from sensorbase.times import datetime_to_us, parse_iso_us

ISO = "ISO8601"
NAMED = (ISO, "unix", "unix_ms")
_DIGITS = re.compile(r"-?[0-9]{1,19}(\.[0-9]+)?")
# What detection tries after the named formats, most common first; a day-first date is tried
# before a month-first one (Madevo's users write dates as Europe does, when both read).
CANDIDATES = (
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%d %H:%M:%S.%f",
    "%Y-%m-%d %H:%M",
    "%Y/%m/%d %H:%M:%S",
    "%d/%m/%Y %H:%M:%S",
    "%m/%d/%Y %H:%M:%S",
    "%d-%m-%Y %H:%M:%S",
    "%d.%m.%Y %H:%M:%S",
    "%d/%m/%Y %H:%M",
    "%m/%d/%Y %H:%M",
    "%Y-%m-%d",
    "%d/%m/%Y",
    "%m/%d/%Y",
)


def check(timeformat: str) -> str | None:
    """Why `timeformat` is not one this server reads, or None."""
    if timeformat in NAMED:
        return None
    if "%" not in timeformat:
        return f"must be {', '.join(NAMED)} or a strftime pattern such as %Y-%m-%d %H:%M:%S"
    try:
        datetime.now(UTC).strftime(timeformat)
    except ValueError as exc:
        return f"is not a strftime pattern: {exc}"
    return None


def parser(timeformat: str) -> Callable[[Any, dict[str, int]], int]:
    """UTC microseconds of a time string in `timeformat` (ValueError naming the format);
    the dict caches repeated strings, as the decoder's own parser does."""

    def read(text: str) -> int:
        if timeformat == ISO:
            return parse_iso_us(text, naive_is_utc=True)
        if timeformat in ("unix", "unix_ms"):
            if not _DIGITS.fullmatch(text):
                raise ValueError("not an epoch number")
            scale = 1_000_000 if timeformat == "unix" else 1_000
            return round(float(text) * scale)
        moment = datetime.strptime(text, timeformat)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return datetime_to_us(moment)

    def parse(stamp: Any, parsed: dict[str, int]) -> int:
        if not isinstance(stamp, str) or not stamp.strip():
            raise ValueError("time field is empty")
        moment = parsed.get(stamp)
        if moment is None:
            try:
                moment = parsed[stamp] = read(stamp)
            except (ValueError, OverflowError):
                raise ValueError(
                    f"time field '{stamp[:60]}' does not match timeformat '{timeformat}'"
                ) from None
        return moment

    return parse


def detect(values: Iterable[str]) -> str | None:
    """The first format that reads every value, or None."""
    sample = [v.strip() for v in values if isinstance(v, str) and v.strip()]
    if not sample:
        return None
    order = list(NAMED) + list(CANDIDATES)
    if not all("T" in v or "+" in v or v.endswith("Z") for v in sample):
        order = [*order[1:3], *CANDIDATES, ISO]  # "2024-01-01 10:00" is ISO too: say it plainly
    for timeformat in order:
        parse = parser(timeformat)
        try:
            for value in sample:
                parse(value, {})
        except ValueError:
            continue
        if timeformat == "unix" and any(len(v.split(".")[0].lstrip("-")) > 11 for v in sample):
            continue  # 13 digits are milliseconds
        return timeformat
    return None
