"""Times as dakkio writes them: ISO 8601 in UTC, to the precision sent (`...T10:30:00Z`,
`....123Z`), and an entity's `createdAt` to the millisecond, as a JavaScript server has it."""

from __future__ import annotations

import time

from sensorbase.model import Int64Array
from sensorbase.times import format_many, format_us


def short_time(iso: str) -> str:
    """`...T10:30:00.000000Z` → `...T10:30:00Z`; `....123000Z` → `....123Z` (as sent)."""
    if iso.endswith(".000000Z"):
        return iso[:-8] + "Z"
    if iso.endswith("000Z"):
        return iso[:-4] + "Z"
    return iso


def time_text(time_us: int) -> str:
    return short_time(format_us(time_us))


def ms_text(time_us: int) -> str:
    """An entity's createdAt, to the millisecond as a JavaScript server writes it."""
    return time_text(time_us // 1_000 * 1_000)


def time_texts(time_us: Int64Array) -> list[str]:
    return [short_time(t) for t in format_many(time_us)]


def now_ms_us() -> int:
    """Now, to the millisecond (what a JavaScript server's createdAt carries)."""
    return time.time_ns() // 1_000_000 * 1_000
