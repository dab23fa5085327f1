"""The grammar of a line's parts: field values, timestamps, the series part (measurement and
tags) and its canonical key, and the escaping-aware scanner for lines with a backslash or a
double quote. lineproto.py drives them over a body.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

MAX_INT64 = 2**63 - 1
MAX_UINT64 = 2**64 - 1
_BOOLS = {
    b"t": 1.0,
    b"T": 1.0,
    b"true": 1.0,
    b"True": 1.0,
    b"TRUE": 1.0,
    b"f": 0.0,
    b"F": 0.0,
    b"false": 0.0,
    b"False": 0.0,
    b"FALSE": 0.0,
}
# Precision: the unit of a line's timestamp, as (multiply, divide) into microseconds.
PRECISIONS: dict[str, tuple[int, int]] = {
    "ns": (1, 1000),
    "n": (1, 1000),
    "us": (1, 1),
    "u": (1, 1),
    "µ": (1, 1),
    "ms": (1000, 1),
    "s": (1_000_000, 1),
    "m": (60_000_000, 1),
    "h": (3_600_000_000, 1),
}
STRING_FIELD = "string fields are not stored: Sensorbase stores numbers"
_NUMBER_START = frozenset(b"-.0123456789")
_NUMBER_END = frozenset(b".0123456789")
MAX_CACHED_KEYS = 200_000  # series parts cached per process (~ 100 bytes each)


class LineError(ValueError):
    """Why a line cannot be read (InfluxDB's words where it has some)."""


@dataclass(frozen=True, slots=True)
class SeriesPart:
    """The measurement and tag set of a line, and the source key they make: the InfluxDB
    series key in canonical form (tags sorted by key, line-protocol escaping)."""

    source: str
    measurement: str
    tags: dict[str, str]


@dataclass(slots=True)
class Lines:
    """A parsed body: one row per (good line, field), and every bad line with its reason."""

    series: dict[tuple[str, str], int] = field(default_factory=dict)  # (source, field) → index
    sources: dict[str, SeriesPart] = field(default_factory=dict)  # by source key
    series_index: npt.NDArray[np.int32] = field(default_factory=lambda: np.empty(0, np.int32))
    time_us: npt.NDArray[np.int64] = field(default_factory=lambda: np.empty(0, np.int64))
    value: npt.NDArray[np.float64] = field(default_factory=lambda: np.empty(0, np.float64))
    line: npt.NDArray[np.int32] = field(default_factory=lambda: np.empty(0, np.int32))  # 1-based
    bad: list[tuple[int, str]] = field(default_factory=list)  # (line number, reason)
    text: list[bytes] = field(default_factory=list)  # every line as sent (to name bad ones)
    lines: int = 0  # lines that hold a point (good or bad; not blank, not comments)
    skipped: int = 0  # string fields left out (`parse`'s skip_strings)
    body: bytes = b""

    def line_text(self, number: int) -> str:
        """Line `number` (1-based) as sent."""
        if not self.text:
            self.text = self.body.split(b"\n")
        if not 0 < number <= len(self.text):
            return ""
        return self.text[number - 1].strip().decode(errors="replace")


SERIES_CACHE: dict[bytes, SeriesPart | str] = {}  # a series part, or why it is bad
FIELD_CACHE: dict[bytes, str] = {}


def is_string(text: bytes) -> bool:
    """A field value that is a string (value_of refuses it as STRING_FIELD)."""
    return len(text) >= 2 and text[0] == 34 and text[-1] == 34


def value_of(text: bytes) -> float:
    """A field value as a float64, or why not."""
    try:
        number = float(text)
    except ValueError:
        pass
    else:
        # float() takes more than line protocol does: inf, nan, '+1', '1_0', whitespace.
        if (
            text[0] in _NUMBER_START
            and text[-1] in _NUMBER_END
            and number - number == 0.0
            and b"_" not in text
        ):
            return number
        raise LineError(f"invalid number '{shown(text)}'")
    last = text[-1]
    if last == 105:  # i
        digits = text[:-1]
        if digits.isdigit() or (digits[:1] == b"-" and digits[1:].isdigit()):
            integer = int(digits)
            if -MAX_INT64 - 1 <= integer <= MAX_INT64:
                return float(integer)
            raise LineError(f"integer '{shown(text)}' is out of range (signed 64-bit)")
        raise LineError(f"invalid integer '{shown(text)}'")
    if last == 117:  # u
        digits = text[:-1]
        if digits.isdigit():
            integer = int(digits)
            if integer <= MAX_UINT64:
                return float(integer)
            raise LineError(f"unsigned integer '{shown(text)}' is out of range (64-bit)")
        raise LineError(f"invalid unsigned integer '{shown(text)}'")
    boolean = _BOOLS.get(text)
    if boolean is not None:
        return boolean
    if text[0] == 34:  # a string: well-formed ones are refused all the same
        if len(text) >= 2 and text[-1] == 34:
            raise LineError(STRING_FIELD)
        raise LineError("unbalanced quotes")
    raise LineError(f"invalid field value '{shown(text)}'")


def timestamp_of(stamp: bytes, mul: int, div: int) -> int:
    if not (stamp.isdigit() or (stamp[:1] == b"-" and stamp[1:].isdigit())):
        raise LineError(f"bad timestamp '{shown(stamp)}'")
    raw = int(stamp)
    if not -MAX_INT64 <= raw <= MAX_INT64:
        raise LineError(f"bad timestamp '{shown(stamp)}': out of range")
    time_us = raw * mul // div
    if not -MAX_INT64 <= time_us <= MAX_INT64:
        raise LineError(f"bad timestamp '{shown(stamp)}': out of range for its precision")
    return time_us


def field_key(name: bytes) -> str:
    if b"\\" in name:
        name = _unescape(name, b",= ")
    try:
        text = name.decode()
    except UnicodeDecodeError:
        raise LineError("a field key is not valid UTF-8") from None
    if text == "time":
        raise LineError("invalid field key 'time': it names the timestamp")
    if len(FIELD_CACHE) < MAX_CACHED_KEYS:
        FIELD_CACHE[name] = text
    return text


# --- the series part -------------------------------------------------------------------------


def series_part(key: bytes) -> SeriesPart | str:
    """The measurement and tags of a line's series part, or why it is bad (cached either way)."""
    try:
        part: SeriesPart | str = _read_series(key)
    except LineError as exc:
        part = str(exc)
    if len(SERIES_CACHE) >= MAX_CACHED_KEYS:
        SERIES_CACHE.clear()
    SERIES_CACHE[key] = part
    return part


def _read_series(key: bytes) -> SeriesPart:
    pieces = split_escaped(key, 44, quotes=False) if b"\\" in key else key.split(b",")
    measurement = _unescape(pieces[0], b", ")
    if not measurement:
        raise LineError("missing measurement")
    tags: dict[str, str] = {}
    for piece in pieces[1:]:
        name, eq, value = split_pair(piece)
        if not name:
            raise LineError("missing tag key")
        if not eq or not value:
            raise LineError("missing tag value")
        tag = _text(_unescape(name, b",= "), "a tag key")
        if tag in tags:
            raise LineError(f"duplicate tags: '{tag}' appears twice")
        if tag == "time":
            raise LineError("invalid tag key 'time': it names the timestamp")
        tags[tag] = _text(_unescape(value, b",= "), "a tag value")
    text = _text(measurement, "the measurement")
    return SeriesPart(series_key(text, tags), text, dict(sorted(tags.items())))


def series_key(measurement: str, tags: dict[str, str]) -> str:
    """The canonical InfluxDB series key: the measurement, then `,key=value` for each tag sorted
    by key, escaped as line protocol escapes them (a Sensorbase source key)."""
    parts = [_escape(measurement, ", ")]
    for tag in sorted(tags):
        parts.append(f",{_escape(tag, ',= ')}={_escape(tags[tag], ',= ')}")
    return "".join(parts)


def _escape(text: str, special: str) -> str:
    for char in special:
        if char in text:
            text = text.replace(char, "\\" + char)
    return text


def _text(raw: bytes, what: str) -> str:
    try:
        return raw.decode()
    except UnicodeDecodeError:
        raise LineError(f"{what} is not valid UTF-8") from None


def _unescape(raw: bytes, special: bytes) -> bytes:
    if b"\\" not in raw:
        return raw
    out = bytearray()
    i, n = 0, len(raw)
    while i < n:
        c = raw[i]
        if c == 92 and i + 1 < n and raw[i + 1] in special:
            out.append(raw[i + 1])
            i += 2
            continue
        out.append(c)
        i += 1
    return bytes(out)


# --- the escaping-aware scanner (lines with a backslash or a double quote) ------------------


def split_line(line: bytes) -> tuple[bytes, bytes, bytes]:
    """A line's series part, field set and timestamp, split at the spaces that are neither
    escaped nor inside a quoted string value."""
    n = len(line)
    i = 0
    while i < n:
        c = line[i]
        if c == 92:  # a backslash: the next byte is escaped
            i += 2
            continue
        if c == 32:
            break
        i += 1
    if i >= n:
        raise LineError("missing fields")
    start = j = i + 1
    quoted = after_equals = False
    while j < n:
        c = line[j]
        if quoted:
            if c == 92 and j + 1 < n and line[j + 1] in b'"\\':
                j += 2
                continue
            if c == 34:
                quoted = False
        elif c == 92:
            j += 2
            after_equals = False
            continue
        elif c == 34 and after_equals:  # '"' right after an unescaped '=' opens a string
            quoted = True
        elif c == 32:
            break
        after_equals = c == 61 and not quoted
        j += 1
    if quoted:
        raise LineError("unbalanced quotes")
    fields = line[start:j]
    if not fields:
        raise LineError("missing fields")
    stamp = line[j + 1 :] if j < n else b""
    if b" " in stamp:
        raise LineError("bad timestamp: more than three space-separated parts")
    return line[:i], fields, stamp


def split_escaped(raw: bytes, sep: int, quotes: bool = True) -> list[bytes]:
    """`raw` split at each `sep` byte that is neither escaped nor inside a quoted value
    (`quotes`: a field set; in a series key a '"' is an ordinary byte)."""
    pieces = []
    start = i = 0
    n = len(raw)
    quoted = after_equals = False
    while i < n:
        c = raw[i]
        if quoted:
            if c == 92 and i + 1 < n and raw[i + 1] in b'"\\':
                i += 2
                continue
            if c == 34:
                quoted = False
        elif c == 92:
            i += 2
            after_equals = False
            continue
        elif c == 34 and after_equals and quotes:
            quoted = True
        elif c == sep:
            pieces.append(raw[start:i])
            start = i + 1
        after_equals = c == 61 and not quoted
        i += 1
    pieces.append(raw[start:])
    return pieces


def split_pair(piece: bytes) -> tuple[bytes, bytes, bytes]:
    """`key=value` split at its first unescaped `=`."""
    i, n = 0, len(piece)
    while i < n:
        c = piece[i]
        if c == 92:
            i += 2
            continue
        if c == 61:
            return piece[:i], b"=", piece[i + 1 :]
        i += 1
    return piece, b"", b""


def shown(raw: bytes) -> str:
    text = raw.decode(errors="replace")
    return text if len(text) <= 40 else text[:37] + "..."


Known = tuple[tuple[str, str], SeriesPart]  # (source key, field), and the source's part
KNOWN: dict[tuple[bytes, bytes], Known] = {}  # by (series part, field key) as sent


def learn(key: bytes, name: bytes, eq: bytes, text: bytes) -> Known:
    """The series of a field of a line, as sent (cached for the process); or why the line is
    bad."""
    if not eq:
        raise LineError(f"invalid field format '{shown(name)}': expected key=value")
    if not name:
        raise LineError("missing field key")
    if not text:
        raise LineError("missing field value")
    hit = KNOWN.get((key, name))
    if hit is not None:
        return hit
    part = SERIES_CACHE.get(key)
    if part is None:
        part = series_part(key)
    if isinstance(part, str):
        raise LineError(part)
    hit = ((part.source, field_key(name)), part)
    if len(KNOWN) >= MAX_CACHED_KEYS:
        KNOWN.clear()
    KNOWN[(key, name)] = hit
    return hit
