"""Bucket boundaries in a time zone: days, weeks (Monday), months and years begin at local
midnight, so a day in Europe/Paris is 23, 24 or 25 hours long across the DST changes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sensorbase.times import datetime_to_us

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _local(time_us: int, tz: ZoneInfo) -> datetime:
    return (_EPOCH + timedelta(microseconds=time_us)).astimezone(tz)


def _floor(moment: datetime, unit: str) -> datetime:
    day = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    if unit == "w":
        day -= timedelta(days=day.weekday())
    elif unit == "mo":
        day = day.replace(day=1)
    elif unit == "y":
        day = day.replace(month=1, day=1)
    return day


def _step(moment: datetime, amount: int, unit: str) -> datetime:
    if unit in ("d", "w"):
        days = amount * (7 if unit == "w" else 1)
        naive = moment.replace(tzinfo=None) + timedelta(days=days)
    else:
        months = moment.month - 1 + amount * (12 if unit == "y" else 1)
        naive = moment.replace(tzinfo=None, year=moment.year + months // 12, month=months % 12 + 1)
    return naive.replace(tzinfo=moment.tzinfo)


def bounds(start_us: int, end_us: int, amount: int, unit: str, tz: ZoneInfo, cap: int) -> list[int]:
    """Boundaries b0 <= start < b1 < ... with the last >= end; at most `cap` + 1 of them.

    Local calendars end at years 1 and 9999: a bucket that would begin before the first local
    midnight begins at `start`, and one that would end after the last runs to `end`."""
    try:
        current = _floor(_local(start_us, tz), unit)
    except OverflowError:  # outside the years 1 to 9999 of this zone's calendar
        if start_us > 0:
            return [start_us, max(end_us, start_us + 1)]
        current = _floor(datetime.min.replace(tzinfo=tz), unit)
        out = [start_us]
    else:
        out = [datetime_to_us(current)]
    while out[-1] < end_us and len(out) <= cap:
        try:
            current = _step(current, amount, unit)
        except (OverflowError, ValueError):  # past year 9999
            out.append(end_us)
            break
        out.append(datetime_to_us(current))
    return out


def fixed_origin(start_us: int, every_us: int, tz: ZoneInfo) -> int:
    """Fixed-width buckets align to the zone's offset at the start (hours of a +05:30 zone
    begin at :30 UTC)."""
    offset = _local(start_us, tz).utcoffset() or timedelta(0)
    return -int(offset.total_seconds() * 1_000_000) % every_us
