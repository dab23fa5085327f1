"""InfluxDB line protocol, parsed into columns: every good line's points, every bad line named.

    weather,location=us-midwest,station=KX\\ 1 temperature=82,humidity=71i,ok=t 1465839830100400200

A line is `measurement[,tag=value...] field=value[,field=value...] [timestamp]`:

- measurement: `,` and space escaped with a backslash; tag keys, tag values and field keys: `,`,
  `=` and space escaped; a backslash before any other byte is that backslash itself;
- field values: a float (`82`, `-1.5e3`), an integer (`71i`, signed 64-bit), an unsigned integer
  (`71u`, 64-bit), a boolean (`t T true True TRUE f F false False FALSE`) or a string in double
  quotes (`"a \\" quote"`: `"` and `\\` escaped inside);
- timestamp: an integer in the request's precision; absent, the server's time at arrival;
- blank lines and lines starting with `#` are skipped; `\\r\\n` ends a line as `\\n` does.

Sensorbase stores numbers: an integer or unsigned becomes a float64 (exact up to 2**53), a
boolean 1.0 or 0.0; a line with a string field is refused, named. Each point is one row per
field of its line; a line's problems refuse the whole line, never part of it (InfluxDB's rule).

Speed: this is the hot path of the dialect, taken three ways. A body of plain lines (one field,
nothing escaped: the shared benchmark's shape, and many a sensor's batch) is read at once by
columnar.py, with C-level passes over the whole body. Other lines without a backslash or a
double quote (Telegraf's multi-field lines) are split with `bytes.split` one by one; the
escaping-aware scanner (syntax.py) runs only on lines that hold a backslash or a quote. The
series part of a line (measurement and tags: the same few thousand strings again and again)
is parsed once per process and cached; values and timestamps are converted in bulk. Measured
here (5,000 lines `sensor,id=s0001 value=21.3 1577836800`, one core, CPU time, the machine
busy with other work): the columnar path ~0.65 µs per line, the line loop ~1.3 µs.

Where setup.py built it, the compiled `_lines` (`_lines.c`) takes every body without escapes,
quotes, tabs or carriage returns first (Telegraf's multi-field lines, integers and booleans
too) and makes the columns in one pass; it defers anything else, and any bad line, to the
line loop, which words it. tests/dialects/test_influx_lines.py holds it to the loop's answers.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable

import numpy as np

from sensorbase.dialects.influx.columnar import convert, parse_columnar
from sensorbase.dialects.influx.syntax import (
    KNOWN,
    PRECISIONS,
    STRING_FIELD,
    Known,
    LineError,
    Lines,
    SeriesPart,
    is_string,
    learn,
    series_key,
    split_escaped,
    split_line,
    split_pair,
)

__all__ = ["PRECISIONS", "STRING_FIELD", "LineError", "Lines", "SeriesPart", "parse", "series_key"]

Compiled = Callable[
    [bytes, int, int, int, int],
    tuple[list[bytes], list[bytes], bytearray, bytearray, bytearray, bytearray, int] | None,
]


def _compiled() -> Compiled | None:
    try:
        from sensorbase.dialects.influx import _lines
    except ImportError:
        return None
    return _lines.parse


compiled = _compiled()
_SEED = secrets.randbits(64)  # keys the compiled parser's hash table (see _lines.c)


def parse(
    body: bytes, precision: tuple[int, int], now_us: int, skip_strings: bool = False
) -> Lines:
    """Every line of `body`: its points as columns, or why it is refused. `precision` is one
    of PRECISIONS' values; `now_us` the time of a line without a timestamp; `skip_strings`:
    a well-formed string field is left out (counted in `skipped`) rather than refusing its
    line (SENSORBASE_INFLUX_STRING_FIELDS)."""
    if b"\r" in body:
        body = body.replace(b"\r\n", b"\n")
    if compiled is not None:
        found = _parse_compiled(compiled, body, precision, now_us)
        if found is not None:
            return found
    else:
        found = parse_columnar(body, precision)  # (it declines any body with a quote)
        if found is not None:
            found.body = body
            return found
    return parse_lines(body, precision, now_us, skip_strings)


def _parse_compiled(
    parse_plain: Compiled, body: bytes, precision: tuple[int, int], now_us: int
) -> Lines | None:
    """`parse` by the compiled module: its distinct (series part, field key) pairs found in
    the process's cache or learned (a bad one: None, for the loop to name)."""
    got = parse_plain(body, precision[0], precision[1], now_us, _SEED)
    if got is None:
        return None
    keys, names, pair, time_us, value, line, lines = got
    try:
        hits = [
            KNOWN.get(key_name) or learn(key_name[0], key_name[1], b"=", b"0")
            for key_name in zip(keys, names, strict=True)
        ]
    except LineError:
        return None
    out = Lines(body=body)
    found = out.series.get
    series = np.empty(len(hits), np.int32)
    for i, hit in enumerate(hits):
        index = found(hit[0])
        series[i] = _add_series(out, hit) if index is None else index
    out.series_index = series[np.frombuffer(pair, np.int32)]
    out.time_us = np.frombuffer(time_us, np.int64)
    out.value = np.frombuffer(value, np.float64)
    out.line = np.frombuffer(line, np.int32)
    out.lines = lines
    return out


def parse_lines(
    body: bytes, precision: tuple[int, int], now_us: int, skip_strings: bool = False
) -> Lines:
    """`parse` line by line (what it does when the columnar path does not apply)."""
    out = Lines(body=body)
    emptied = 0  # lines of string fields only, skipped whole
    out.text = texts = body.split(b"\n")
    # A body without escapes, quotes or stray whitespace: every line splits at its spaces.
    simple = not (
        b"\\" in body
        or b'"' in body
        or b"\t" in body
        or b"\n " in body
        or b" \n" in body
        or body[:1] == b" "
    )
    known = KNOWN.get
    index_of = out.series
    found = index_of.get
    bad = out.bad
    series: list[int] = []
    values: list[bytes] = []
    stamps: list[bytes] = []
    lines: list[int] = []
    add_series, add_value, add_stamp, add_line = (
        series.append,
        values.append,
        stamps.append,
        lines.append,
    )
    for number, raw in enumerate(texts, 1):
        if simple:
            if not raw or raw[0] == 35:  # blank, or a comment ('#')
                continue
            parts = raw.split(b" ")
            if len(parts) == 3:
                key, fields, stamp = parts
            elif len(parts) == 2:
                key, fields = parts
                stamp = b""
            else:
                bad.append((number, "missing fields" if len(parts) == 1 else _TOO_MANY))
                continue
            if b"," not in fields:  # one field: the common line, on the shortest path
                name, eq, text = fields.partition(b"=")
                hit = known((key, name))
                if hit is None or not text:
                    try:
                        hit = learn(key, name, eq, text)
                    except LineError as exc:
                        bad.append((number, str(exc)))
                        continue
                index = found(hit[0])
                if index is None:
                    index = _add_series(out, hit)
                add_series(index)
                add_value(text)
                add_stamp(stamp)
                add_line(number)
                continue
            pairs = [pair.partition(b"=") for pair in fields.split(b",")]
        else:
            line = raw.strip()
            if not line or line[0] == 35:
                continue
            try:
                key, fields, stamp = split_line(line)
            except LineError as exc:
                bad.append((number, str(exc)))
                continue
            pairs = [split_pair(pair) for pair in split_escaped(fields, 44)]
            if skip_strings:
                numbers = [pair for pair in pairs if not is_string(pair[2])]
                out.skipped += len(pairs) - len(numbers)
                if not numbers:
                    emptied += 1
                    continue
                pairs = numbers
        try:
            hits = [
                (known((key, name)) if text else None) or learn(key, name, eq, text)
                for name, eq, text in pairs
            ]
        except LineError as exc:
            bad.append((number, str(exc)))
            continue
        for hit, pair in zip(hits, pairs, strict=True):
            index = found(hit[0])
            if index is None:
                index = _add_series(out, hit)
            add_series(index)
            add_value(pair[2])
            add_stamp(stamp)
            add_line(number)
    out.lines = len(bad) + len(set(lines)) + emptied
    convert(out, series, values, stamps, lines, precision, now_us)
    return out


_TOO_MANY = "bad timestamp: more than three space-separated parts"


def _add_series(out: Lines, hit: Known) -> int:
    index = out.series[hit[0]] = len(out.series)
    out.sources[hit[0][0]] = hit[1]
    return index
