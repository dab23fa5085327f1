"""Time at the edges: ISO 8601 and epoch numbers in, UTC microseconds inside, ISO `Z` out."""

from __future__ import annotations

import math
import re
import time
from collections.abc import Iterable
from datetime import UTC, datetime

import numpy as np

from sensorbase.model import Int64Array

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
PRECISION_US = {"s": 1_000_000, "ms": 1_000, "us": 1, "ns": 0}
# Python's whitespace (what `str.strip()` removes), spelled out so that the same pattern means
# the same in a JSON Schema (ECMAScript's `\s` lacks U+001C-U+001F and U+0085, and has U+FEFF).
WS = r"[\t-\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
# The grammars below are matched whole (`fullmatch`) and are also the patterns the OpenAPI
# document declares (dialects/openapi.py). Digits are ASCII (`\d` also takes Arabic-Indic
# ones); amounts at most nine digits: a period or a bucket width then fits 64-bit microseconds.
AMOUNT = r"0*([1-9][0-9]{0,8})"
DURATION_PATTERN = rf"^{WS}*{AMOUNT}{WS}*(us|ms|s|m|h|d|w){WS}*$"
# An epoch number, its unit told by its magnitude (`parse_instant`); 21 digits at most, so that
# nanoseconds too stay within 64-bit microseconds.
EPOCH_PATTERN = rf"^{WS}*-?0*[0-9]{{1,21}}(\.[0-9]+)?{WS}*$"
_DURATION = re.compile(DURATION_PATTERN)
_EPOCH = re.compile(EPOCH_PATTERN)
UNIT_US = {
    "us": 1,
    "ms": 1_000,
    "s": 1_000_000,
    "m": 60_000_000,
    "h": 3_600_000_000,
    "d": 86_400_000_000,
    "w": 7 * 86_400_000_000,
}


def now_us() -> int:
    return time.time_ns() // 1_000


def datetime_to_us(moment: datetime) -> int:
    delta = moment - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def parse_iso_us(text: str, *, naive_is_utc: bool = False) -> int:
    """Parse an ISO 8601 instant. Raises ValueError with a reason a client can act on.

    An offset (`Z`, `+00:00`, `+0000`) is required unless `naive_is_utc`: a dialect whose
    document says its times are UTC passes it.
    """
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"'{text}' is not an ISO 8601 time") from None
    if moment.tzinfo is None:
        if not naive_is_utc:
            raise ValueError(f"'{text}' has no time zone; add 'Z' or an offset such as +00:00")
        moment = moment.replace(tzinfo=UTC)
    return datetime_to_us(moment)


def parse_iso_many(texts: Iterable[str], *, naive_is_utc: bool = False) -> dict[str, int]:
    """Parse each distinct string once: a batch usually repeats its timestamps."""
    return {t: parse_iso_us(t, naive_is_utc=naive_is_utc) for t in set(texts)}


def epoch_to_us(number: float, precision: str) -> int | None:
    """Microseconds of an epoch number in `precision`; None when it is none (not finite, or
    so large that it is no longer once scaled: 1.7e308 s)."""
    if not math.isfinite(number):
        return None
    if precision == "ns":
        return int(number) // 1_000
    scaled = number * PRECISION_US[precision]
    return round(scaled) if math.isfinite(scaled) else None


def format_us(time_us: int) -> str:
    """Microseconds to ISO 8601 UTC with `Z`, always six fractional digits."""
    return str(np.datetime64(time_us, "us")) + "Z"


def format_many(time_us: Int64Array) -> list[str]:
    texts = np.datetime_as_string(time_us.astype("datetime64[us]"), unit="us")
    return [t + "Z" for t in texts.tolist()]


def parse_duration_us(text: str) -> int:
    """`90s`, `15m`, `6h`, `7d`, `2w` to microseconds (calendar units are for buckets only):
    1 to 999,999,999 of us, ms, s, m, h, d or w."""
    match = _DURATION.fullmatch(text)
    if not match:
        raise ValueError(
            f"'{text}' is not a duration such as 30s, 15m, 6h, 7d or 2w "
            "(1 to 999999999 of us, ms, s, m, h, d or w)"
        )
    return int(match.group(1)) * UNIT_US[match.group(2)]


def format_duration_us(duration_us: int) -> str:
    """A duration in the largest unit of `parse_duration_us` that holds it exactly."""
    for unit in ("w", "d", "h", "m", "s", "ms"):
        if duration_us % UNIT_US[unit] == 0:
            return f"{duration_us // UNIT_US[unit]}{unit}"
    return f"{duration_us}us"


def parse_instant(text: str) -> int:
    """A query bound: ISO 8601 with a zone, or epoch seconds/ms/us/ns told apart by magnitude
    (at most 21 digits before the point)."""
    stripped = text.strip()
    if _EPOCH.fullmatch(text):
        number = float(stripped)
        magnitude = abs(number)
        if magnitude < 1e11:
            return round(number * 1_000_000)
        if magnitude < 1e14:
            return round(number * 1_000)
        if magnitude < 1e17:
            return int(number)
        return int(number) // 1_000
    if re.fullmatch(r"-?[0-9]+(\.[0-9]+)?", stripped):
        raise ValueError(f"'{text}' is no time Sensorbase can hold (at most 21 digits)")
    return parse_iso_us(stripped)
