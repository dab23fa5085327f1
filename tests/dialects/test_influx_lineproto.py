"""Line protocol parsing, by property: any measurement, tags and field keys (escaped here by a
writer of the test's own, as InfluxDB documents the escaping) and any numeric field values come
back as written; the columnar fast path and the line-by-line parser agree on every body."""

from __future__ import annotations

import struct

import numpy as np
from hypothesis import example, given, settings
from hypothesis import strategies as st

from sensorbase.dialects.influx import lineproto
from sensorbase.dialects.influx.lineproto import parse, parse_lines

US = lineproto.PRECISIONS["us"]
# Names: printable, without control characters; the characters line protocol escapes included.
NAME = st.text(
    st.characters(blacklist_categories=("Cc", "Cs"), blacklist_characters="\n\r\t\\"),
    min_size=1,
    max_size=12,
).filter(lambda s: not s.startswith("#") and s.strip() == s)
TAG_KEY = NAME.filter(lambda s: s != "time")


def escape(text: str, special: str) -> str:
    return "".join("\\" + c if c in special else c for c in text)


FLOATS = st.floats(allow_nan=False, allow_infinity=False, width=64)
VALUES = st.one_of(
    FLOATS.map(lambda f: (repr(f), f)),
    st.integers(-(2**63), 2**63 - 1).map(lambda i: (f"{i}i", float(i))),
    st.integers(0, 2**64 - 1).map(lambda i: (f"{i}u", float(i))),
    st.sampled_from([("t", 1.0), ("FALSE", 0.0), ("True", 1.0), ("f", 0.0)]),
)


@given(
    measurement=NAME,
    tags=st.dictionaries(TAG_KEY, NAME, max_size=3),
    fields=st.dictionaries(TAG_KEY, VALUES, min_size=1, max_size=3),
    stamp=st.integers(-(2**62), 2**62),
)
@example(  # a quote in a tag value is an ordinary byte (it was read as opening a string)
    measurement="0", tags={"0 0": '"', "0": "0"}, fields={"0": ("0.0", 0.0)}, stamp=0
)
@settings(max_examples=150, deadline=None)
def test_a_written_line_reads_back(
    measurement: str,
    tags: dict[str, str],
    fields: dict[str, tuple[str, float]],
    stamp: int,
) -> None:
    line = escape(measurement, ", ")
    for key, value in tags.items():
        line += f",{escape(key, ',= ')}={escape(value, ',= ')}"
    line += " " + ",".join(f"{escape(k, ',= ')}={text}" for k, (text, _) in fields.items())
    line += f" {stamp}"
    parsed = parse(line.encode(), US, 0)
    assert parsed.bad == [], line
    source = lineproto.series_key(measurement, tags)
    assert source in parsed.sources, (line, list(parsed.sources))
    assert parsed.sources[source].measurement == measurement
    assert parsed.sources[source].tags == dict(sorted(tags.items()))
    got = {
        field: float(parsed.value[parsed.series_index == index][0])
        for (src, field), index in parsed.series.items()
        if src == source
    }
    expected = {k: v for k, (_, v) in fields.items()}
    assert got.keys() == expected.keys()
    for key, value in expected.items():  # the same float64, bit for bit (so -0.0 too)
        assert struct.pack("<d", got[key]) == struct.pack("<d", value), (line, key)
    assert set(parsed.time_us.tolist()) == {stamp}


PLAIN_KEY = st.text("abcdefgh0123456789_-.", min_size=1, max_size=6)
PLAIN_VALUE = st.one_of(
    FLOATS.map(repr),
    st.integers(-(10**6), 10**6).map(str),
    st.sampled_from(["1i", "t", ".5", "1.", "nan", "+1", "1e400", "", "0x1", "-"]),
)
PLAIN_STAMP = st.one_of(
    st.integers(-(10**12), 10**12).map(str),
    st.sampled_from(["", "1.5", "x", "99999999999999999999", "-"]),
)


@given(
    st.lists(
        st.tuples(PLAIN_KEY, PLAIN_KEY, PLAIN_KEY, PLAIN_VALUE, PLAIN_STAMP),
        min_size=1,
        max_size=30,
    )
)
@settings(max_examples=150, deadline=None)
def test_the_fast_path_and_the_line_parser_agree(
    rows: list[tuple[str, str, str, str, str]],
) -> None:
    body = "\n".join(
        f"{m},t={t} {f}={v}" + (f" {s}" if s else "") for m, t, f, v, s in rows
    ).encode()
    fast, slow = parse(body, US, 7), parse_lines(body, US, 7)
    assert fast.bad == slow.bad
    assert fast.series == slow.series
    assert np.array_equal(fast.series_index, slow.series_index)
    assert np.array_equal(fast.value, slow.value)
    assert np.array_equal(fast.time_us, slow.time_us)
    assert np.array_equal(fast.line, slow.line)


def test_a_quote_after_an_escaped_equals_sign_opens_no_string() -> None:
    parsed = parse(b'm,t=" a\\="b=1,c=2 5', US, 0)
    assert parsed.bad == []
    assert list(parsed.series) == [('m,t="', 'a="b'), ('m,t="', "c")]
    assert parsed.value.tolist() == [1.0, 2.0]
