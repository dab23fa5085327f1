"""A query reply's points as JSON, built from the time and value columns in bulk.

`[{"time":"2026-11-21T10:00:00.000000Z","value":21.5},...]` byte for byte as encoding a list of
dicts gives it, without a dict, a time string or a record per point: the times are written by
integer arithmetic and lookup tables over the whole column, the values encoded by msgspec in
one call (as the dicts' floats were), and the records laid out in a numpy array. For the
newest 10,000 points of the benchmark's series, in process: ~7.4 -> ~3.6 ms of CPU on the
shared 2-core machine (benchmarks/README.md).

Where setup.py built it, the compiled `_points_json` (`_points_json.c`) lays the records out in
one pass instead (~1.6 -> ~0.25 ms for those 10,000 points), and writes the values itself when
each is a decimal of at most 6 places (what sensors send), so no float object or list is made
(~0.56 -> ~0.15 ms); other values are taken from msgspec's encoding of their list. The numpy
path below is what runs without it, and the test of both
(tests/dialects/native/test_points_json.py) holds them equal.

`epoch` (the query's `epoch=s|ms|us|ns`) writes the times as integers since 1970 in that unit,
floored, instead of ISO text; `times_json` and `values_json` give a column as one JSON array
(the reply of `format=columns`).
"""

from __future__ import annotations

from types import ModuleType

import msgspec
import numpy as np
import numpy.typing as npt

from sensorbase.times import format_many

_TIME = b'{"time":"'
_VALUE = b'Z","value":'
_END = b"},"
_TIME_WIDTH = 26  # 2026-11-21T10:00:00.000000 (numpy, microseconds; the Z is _VALUE's)
_encode = msgspec.json.encode
# The query's epoch units as the compiled module takes them: a divisor of microseconds, or
# (nanoseconds) minus the factor; None is ISO text.
EPOCHS = {"s": 1_000_000, "ms": 1_000, "us": 1, "ns": -1_000}
_ISO = 0


def _compiled() -> ModuleType | None:
    try:
        from sensorbase.dialects.native import _points_json
    except ImportError:
        return None
    return _points_json


compiled = _compiled()


_MIN_US = -62_135_596_800_000_000  # 0001-01-01T00:00:00Z
_MAX_US = 253_402_300_799_999_999  # 9999-12-31T23:59:59.999999Z
_DAY_US = 86_400_000_000


def _digits(count: int, width: int) -> npt.NDArray[np.uint8]:
    """Row i: the `width` ASCII digits of i, for i below `count`."""
    numbers = np.arange(count)[:, None] // 10 ** np.arange(width - 1, -1, -1) % 10
    return (numbers + ord("0")).astype(np.uint8)


_TWO, _THREE = _digits(100, 2), _digits(1_000, 3)
# Every second of a day as `HH:MM:SS` (691 kB): a time's clock is one lookup.
_CLOCK = np.concatenate(
    [
        _TWO[np.arange(86_400) // 3_600],
        np.full((86_400, 1), ord(":"), np.uint8),
        _TWO[np.arange(86_400) // 60 % 60],
        np.full((86_400, 1), ord(":"), np.uint8),
        _TWO[np.arange(86_400) % 60],
    ],
    axis=1,
)


def _dates(days: npt.NDArray[np.int64]) -> npt.NDArray[np.uint8]:
    """Days since 1970-01-01 (years 0001-9999) as `YYYY-MM-DD` rows: Howard Hinnant's
    days-to-civil algorithm, over the whole column."""
    z = days + 719_468
    era = z // 146_097
    doe = z - era * 146_097
    yoe = (doe - doe // 1_460 + doe // 36_524 - doe // 146_096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = np.where(mp < 10, mp + 3, mp - 9)
    year = yoe + era * 400 + (month <= 2)
    dash = np.full((len(days), 1), ord("-"), np.uint8)
    parts = (_TWO[year // 100], _TWO[year % 100], dash, _TWO[month], dash, _TWO[day])
    return np.concatenate(parts, axis=1)


def iso_times(
    time_us: npt.NDArray[np.int64], out: npt.NDArray[np.uint8] | None = None
) -> npt.NDArray[np.uint8]:
    """Each time (years 0001-9999) as the 26 ASCII bytes `2026-11-21T10:00:00.000000`, one row
    a time, from lookup tables over the whole column (numpy's datetime_as_string and the
    conversion of its text to bytes took ~8 ms for 10,000 times). The date is worked out once
    per run of times on the same day: a series' points come in time order. `out`: the rows to
    write them in (n x 26, a view of wider rows will do)."""
    n = len(time_us)
    days, of_day = np.divmod(time_us, _DAY_US)
    seconds, micros = np.divmod(of_day, 1_000_000)
    runs = np.concatenate(([0], np.flatnonzero(days[1:] != days[:-1]) + 1))
    if out is None:
        out = np.empty((n, _TIME_WIDTH), np.uint8)
    out[:, :10] = np.repeat(_dates(days[runs]), np.diff(runs, append=n), axis=0)
    out[:, 10] = ord("T")
    out[:, 11:19] = _CLOCK[seconds]
    out[:, 19] = ord(".")
    out[:, 20:23] = _THREE[micros // 1_000]
    out[:, 23:26] = _THREE[micros % 1_000]
    return out


def epoch_times(time_us: npt.NDArray[np.int64], epoch: str) -> list[int]:
    """The times as integers of `epoch`'s unit since 1970, floored (nanoseconds as Python
    integers: a time far from 1970 overflows int64 in them)."""
    unit = EPOCHS[epoch]
    if unit < 0:
        return [t * -unit for t in time_us.tolist()]
    return (time_us // unit).tolist()


def times_json(time_us: npt.NDArray[np.int64], epoch: str | None = None) -> bytes:
    """The JSON array of the times: ISO text, or integers of `epoch`'s unit."""
    if compiled is not None:
        times = np.ascontiguousarray(time_us, np.int64)
        encoded: bytes | None = compiled.times(times, _ISO if epoch is None else EPOCHS[epoch])
        if encoded is not None:
            return encoded
    return _encode(format_many(time_us) if epoch is None else epoch_times(time_us, epoch))


def values_json(value: npt.NDArray[np.float64]) -> bytes:
    """The JSON array of the values, as msgspec writes their list."""
    if compiled is not None:
        encoded: bytes | None = compiled.values(np.ascontiguousarray(value, np.float64))
        if encoded is not None:
            return encoded
    return _encode(value.tolist())


def points_json(
    time_us: npt.NDArray[np.int64], value: npt.NDArray[np.float64], epoch: str | None = None
) -> bytes:
    """The JSON array of `{"time", "value"}` objects of the columns."""
    n = len(time_us)
    if not n:
        return b"[]"
    if compiled is not None:
        times = np.ascontiguousarray(time_us, np.int64)
        unit = _ISO if epoch is None else EPOCHS[epoch]
        values = np.ascontiguousarray(value, np.float64)
        encoded: bytes | None = compiled.encode(times, values, unit)
        if encoded is None:
            encoded = compiled.encode_numbers(times, _encode(value.tolist()), unit)
        if encoded is not None:
            return encoded
    if epoch is not None:
        numbered = zip(epoch_times(time_us, epoch), value.tolist(), strict=True)
        return _encode([{"time": t, "value": v} for t, v in numbered])
    if int(time_us.min()) < _MIN_US or int(time_us.max()) > _MAX_US:  # wider than 26 bytes
        texts = np.datetime_as_string(time_us.astype("datetime64[us]"), unit="us").tolist()
        pairs = zip(texts, value.tolist(), strict=True)
        return _encode([{"time": t + "Z", "value": v} for t, v in pairs])
    # The values as msgspec writes floats, found between the commas of their encoded list.
    numbers = np.frombuffer(_encode(value.tolist()), np.uint8)
    commas = np.flatnonzero(numbers == ord(","))
    starts = np.concatenate(([1], commas + 1))
    lengths = np.concatenate((commas, [len(numbers) - 1])) - starts
    # Each record in a row as wide as the longest: `{"time":"`, the time, `Z","value":`, the
    # value and `},`, then NUL bytes to the row's end, which no JSON text here holds and which
    # one C pass (bytes.translate) drops.
    time_at = len(_TIME)
    value_at = time_at + _TIME_WIDTH + len(_VALUE)
    widest = int(lengths.max())
    rows = np.empty((n, value_at + widest + len(_END)), np.uint8)
    rows[:, :time_at] = np.frombuffer(_TIME, np.uint8)
    iso_times(time_us, rows[:, time_at : time_at + _TIME_WIDTH])
    rows[:, time_at + _TIME_WIDTH : value_at] = np.frombuffer(_VALUE, np.uint8)
    column = np.arange(widest + len(_END))
    padded = np.concatenate((numbers, np.zeros(len(column), np.uint8)))
    rows[:, value_at:] = padded[starts[:, None] + column] * (column < lengths[:, None])
    row = np.arange(n)
    rows[row, value_at + lengths] = _END[0]
    rows[row, value_at + lengths + 1] = _END[1]
    return b"[" + rows.tobytes().translate(None, b"\0")[:-1] + b"]"
