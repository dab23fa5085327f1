"""The fast path of line protocol: a body of plain lines (`series field=value timestamp`, one
field, nothing escaped) parsed with a few C-level passes over all its lines at once, and the
bulk conversion of every parse's raw values and timestamps.

Measured here on the shared workload (5,000 lines `sensor,id=s0001 value=21.3 1577836800`, one
core, CPU time): the line-by-line loop ~1.3 µs per line, this path ~0.6 µs (while the machine ran
other benchmarks: unloaded, both about half that).
"""

from __future__ import annotations

import operator
from typing import Any

import msgspec
import numpy as np
import numpy.typing as npt

from sensorbase.dialects.influx.syntax import (
    KNOWN,
    MAX_INT64,
    LineError,
    Lines,
    learn,
    timestamp_of,
    value_of,
)

_FIRST = operator.itemgetter(0)
_SECOND = operator.itemgetter(1)
_OTHER_SPACE = (b"  ", b"\t", b"\r", b"\x0b", b"\x0c")  # whitespace bytes.split() splits at


def parse_columnar(body: bytes, precision: tuple[int, int]) -> Lines | None:
    """The body parsed with a few C-level passes over all its lines at once, when every line
    is `series field=value timestamp` with one field and nothing to unescape (the shape of
    the shared benchmark, and of many a sensor's batch); None otherwise, or when any line is
    bad, for the line-by-line parser to name. ~4x faster than the loop on such bodies."""
    if b"\\" in body or b'"' in body:
        return None
    text = body[:-1] if body.endswith(b"\n") else body
    if not text or any(c in text for c in _OTHER_SPACE):
        return None
    n = text.count(b"\n") + 1
    if text.count(b" ") != 2 * n:
        return None
    # Exactly two spaces on each line: the 2i-th and (2i+1)-th spaces lie on line i. With no
    # other whitespace and no doubled space, every line is then three non-empty tokens when,
    # and only when, there are 3n tokens in all.
    raw = np.frombuffer(text, np.uint8)
    newlines = np.flatnonzero(raw == 10)
    spaces = np.flatnonzero(raw == 32)
    if not ((spaces[1:-1:2] < newlines).all() and (spaces[2::2] > newlines).all()):
        return None
    tokens = text.split()
    if len(tokens) != 3 * n:
        return None
    keys, stamps = tokens[0::3], tokens[2::3]
    # One '=' in each field: the i-th '=' lies between the (i-1)-th and i-th separator.
    fields = b" ".join(tokens[1::3])
    if b"," in fields or b"#" in text[:1] or b"\n#" in text:
        return None
    equals = np.flatnonzero(np.frombuffer(fields, np.uint8) == 61)
    if len(equals) != n:
        return None
    gaps = np.flatnonzero(np.frombuffer(fields, np.uint8) == 32)
    if not ((equals[:-1] < gaps).all() and (equals[1:] > gaps).all()):
        return None
    if equals[0] == 0 or equals[-1] == len(fields) - 1:
        return None  # the first name, or the last value, is empty
    if len(gaps) and ((equals[1:] == gaps + 1).any() or (equals[:-1] + 1 == gaps).any()):
        return None  # a name or a value is empty
    halves = fields.replace(b"=", b" ").split(b" ")
    names, values = halves[0::2], halves[1::2]
    # Each distinct (series part, field key) as sent, looked up in the process's cache with
    # C-level iteration (map, zip): a body names its few hundred series again and again.
    one = names[0]
    by: list[Any]
    if names.count(one) == n:  # one field key: the series part alone tells the series apart
        by = keys
        unique = dict.fromkeys(keys)
        pairs = [(key, one) for key in unique]
    else:
        by = list(zip(keys, names, strict=True))
        unique = dict.fromkeys(by)
        pairs = list(unique)  # type: ignore[arg-type]
    hits: list[Any] = list(map(KNOWN.get, pairs))
    if None in hits:
        try:
            hits = [
                hit or learn(key, name, b"=", b"0")
                for hit, (key, name) in zip(hits, pairs, strict=True)
            ]
        except LineError:
            return None
    series = list(map(_FIRST, hits))
    out = Lines()
    out.series = dict(zip(series, range(len(series)), strict=True))
    if len(out.series) != len(series):  # two spellings of one series: the loop merges them
        return None
    out.sources = dict(zip(map(_FIRST, series), map(_SECOND, hits), strict=True))
    index = dict(zip(unique, range(len(series)), strict=True))
    bad: dict[int, str] = {}
    lines = list(range(1, n + 1))
    value = _values(values, lines, bad)
    time_us = _times(stamps, lines, bad, precision, 0)
    if bad:
        return None
    out.series_index = np.fromiter(map(index.__getitem__, by), np.int32, n)
    out.value, out.time_us = value, time_us
    out.line = np.arange(1, n + 1, dtype=np.int32)
    out.lines = n
    out.text = []  # (only bad lines are ever shown, and there are none)
    return out


def convert(
    out: Lines,
    series: list[int],
    raw_values: list[bytes],
    raw_stamps: list[bytes],
    lines: list[int],
    precision: tuple[int, int],
    now_us: int,
) -> None:
    """The rows' raw values and timestamps converted in bulk: float() over a list, and one
    check of the bytes they hold, cost less than a check per value. A line with a bad value
    or timestamp is refused whole."""
    bad: dict[int, str] = {}
    values = _values(raw_values, lines, bad)
    times = _times(raw_stamps, lines, bad, precision, now_us)
    index = np.asarray(series, np.int32)
    numbers = np.asarray(lines, np.int32)
    if bad:
        out.bad.extend(bad.items())
        out.bad.sort()
        keep = ~np.isin(numbers, np.fromiter(bad, np.int32, len(bad)))
        index, values, times, numbers = index[keep], values[keep], times[keep], numbers[keep]
    out.series_index, out.value, out.time_us, out.line = index, values, times, numbers


def _values(raw: list[bytes], lines: list[int], bad: dict[int, str]) -> npt.NDArray[np.float64]:
    """The values as float64, decoded at once as a JSON array: JSON's numbers are a subset of
    line protocol's floats and integers (no `nan`, `inf`, `+1`, `1_0`, `.5` or `1.`), and
    msgspec reads them ~4x faster than float() in a loop. Anything else (`1i`, `t`, `.5`, a bad
    value) goes through value_of one by one, which names the line of a bad one. (A raw item
    holding a comma would read as two numbers: the count must match.)"""
    try:
        values = np.array(_floats.decode(b"[" + b",".join(raw) + b"]"), np.float64)
    except (msgspec.DecodeError, OverflowError):
        pass
    else:
        if len(values) == len(raw) and np.isfinite(values).all():
            return values
    out = np.zeros(len(raw), np.float64)
    for i, (text, line) in enumerate(zip(raw, lines, strict=True)):
        try:
            out[i] = value_of(text)
        except LineError as exc:
            bad.setdefault(line, str(exc))
    return out


def _times(
    raw: list[bytes],
    lines: list[int],
    bad: dict[int, str],
    precision: tuple[int, int],
    now_us: int,
) -> npt.NDArray[np.int64]:
    """The timestamps in microseconds, decoded at once as a JSON array of integers when every
    line has one in range; else one by one (a line without one: `now_us`). (A timestamp
    holding a comma, `-1,0`, would read as two: the count must match.)"""
    mul, div = precision
    try:
        stamps = np.array(_ints.decode(b"[" + b",".join(raw) + b"]"), np.int64)
    except (msgspec.DecodeError, OverflowError):
        pass
    else:
        limit = MAX_INT64 // mul
        fits = len(stamps) == len(raw) and len(stamps)
        if fits and int(stamps.max()) <= limit and int(stamps.min()) >= -limit:
            if mul != 1:
                stamps *= mul
            if div != 1:
                stamps //= div
            return stamps
    out = np.zeros(len(raw), np.int64)
    for i, (stamp, line) in enumerate(zip(raw, lines, strict=True)):
        if not stamp:
            out[i] = now_us
            continue
        try:
            out[i] = timestamp_of(stamp, mul, div)
        except LineError as exc:
            bad.setdefault(line, str(exc))
    return out


_floats = msgspec.json.Decoder(list[float])
_ints = msgspec.json.Decoder(list[int])
