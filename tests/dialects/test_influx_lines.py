"""The compiled parser of line protocol's plain lines (`_lines.c`) gives, for every body it
takes, the very columns the line loop (lineproto.parse_lines) gives: the same series, rows,
bits of every value and time, line numbers; and it takes no body in which the loop finds a bad
line. Bodies are drawn from line protocol's grammar and then mutated."""

from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sensorbase.dialects.influx import lineproto
from sensorbase.dialects.influx.syntax import PRECISIONS, Lines
from tests.dialects.native.test_columns import BUILDABLE

NOW_US = 1_765_000_000_123_456
needs_module = pytest.mark.skipif(lineproto.compiled is None, reason="_lines is not built")


def test_the_compiled_module_is_built() -> None:
    """`pip install -e .` compiles _lines.c (setup.py); it may be missing only where no C
    compiler is, and never under SENSORBASE_REQUIRE_COMPILED=1 (CI)."""
    if lineproto.compiled is not None:
        return
    assert not BUILDABLE, "a C compiler is here but _lines.c was not built: pip install -e ."
    assert os.environ.get("SENSORBASE_REQUIRE_COMPILED") != "1", "_lines is not built"
    pytest.skip("the _lines module is not built")


def _compiled(body: bytes, precision: tuple[int, int]) -> Lines | None:
    assert lineproto.compiled is not None
    return lineproto._parse_compiled(lineproto.compiled, body, precision, NOW_US)


def _same(got: Lines, body: bytes, precision: tuple[int, int]) -> None:
    want = lineproto.parse_lines(body, precision, NOW_US)
    assert not want.bad, (body, want.bad)
    assert got.series == want.series
    assert got.sources == want.sources
    assert got.lines == want.lines
    assert np.array_equal(got.series_index, want.series_index)
    assert np.array_equal(got.time_us, want.time_us)
    # (equal floats are equal bits, but for zero's sign: the loop decodes `-0` as 0.0 in a
    # body of JSON numbers and as -0.0 in any other, one value at a time)
    assert np.array_equal(got.value, want.value)
    assert np.array_equal(got.line, want.line)


NAME = st.text("abcXYZ_019.-é/:", min_size=1, max_size=6)
TAG = st.tuples(NAME, NAME).map(lambda kv: f"{kv[0]}={kv[1]}")
KEY = st.tuples(NAME, st.lists(TAG, max_size=3)).map(lambda mt: ",".join([mt[0], *mt[1]]))
GOOD_NUMBER = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.floats(-1e6, 1e6).map(lambda f: f"{f:.3f}"),
    st.integers(-(2**63), 2**63 - 1).map(lambda i: f"{i}i"),
    st.integers(-(2**63), 2**63 - 1).map(str),
    st.integers(0, 2**64 - 1).map(lambda i: f"{i}u"),
    st.sampled_from(["t", "T", "true", "True", "TRUE", "f", "F", "false", "False", "FALSE"]),
    st.sampled_from([".5", "5.", "-.5", "-0", "007", "1e5", "1E+05", "1e-500", "-1e-400"]),
)
BAD_NUMBER = st.sampled_from(
    [
        *("1e400", "nan", "inf", "-inf", "1_0", "+1", ".", "-", "1e", "0x10", "1.5i", "12.5u"),
        *("-1u", "i", "u", "-i", "tru", "9" * 30 + "i", "1" * 1200, "9223372036854775808i"),
    ]
)
GOOD_STAMP = st.one_of(
    st.none(),
    st.integers(-(10**12), 10**19).map(str),
    st.sampled_from(["0", "-0", "007", "-1", "9223372036854775807", "-9223372036854775807"]),
)
BAD_STAMP = st.sampled_from(["1.5", "1e9", "+5", "9223372036854775808", "-", "x"])


def _body(
    number: st.SearchStrategy[str], stamp: st.SearchStrategy[str | None]
) -> st.SearchStrategy[list[str]]:
    field = st.tuples(NAME, number).map(lambda nv: f"{nv[0]}={nv[1]}")
    line = st.tuples(KEY, st.lists(field, min_size=1, max_size=4), stamp).map(
        lambda kfs: f"{kfs[0]} {','.join(kfs[1])}" + ("" if kfs[2] is None else f" {kfs[2]}")
    )
    return st.lists(st.one_of(line, line, line, st.sampled_from(["", "# a comment"])), max_size=12)


GOOD_BODY = _body(GOOD_NUMBER, GOOD_STAMP)
ANY_BODY = _body(
    st.one_of(GOOD_NUMBER, BAD_NUMBER, st.just("time")), st.one_of(GOOD_STAMP, BAD_STAMP)
)


@needs_module
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(GOOD_BODY, st.sampled_from(sorted(PRECISIONS)))
def test_every_good_body_is_taken_as_the_loop_reads_it(lines: list[str], unit: str) -> None:
    """A body of plain lines the loop reads without a bad line is taken, never deferred (bar a
    timestamp out of range for its precision, which the loop refuses too)."""
    body = "\n".join(lines).encode()
    precision = PRECISIONS[unit]
    want = lineproto.parse_lines(body, precision, NOW_US)
    got = _compiled(body, precision)
    if want.bad:
        assert got is None
        return
    assert got is not None, body
    _same(got, body, precision)


@needs_module
@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    ANY_BODY,
    st.sampled_from(sorted(PRECISIONS)),
    st.sampled_from(["\n", "\r\n"]),
    st.lists(
        st.tuples(st.integers(0, 400), st.sampled_from(list(' ,=\n#\\"\t\r\x0bé\x00'))), max_size=3
    ),
)
def test_any_body_taken_is_what_the_loop_reads(
    lines: list[str], unit: str, newline: str, mutations: list[tuple[int, str]]
) -> None:
    """Bad values, timestamps and field keys, and a byte inserted anywhere (spaces,
    separators, escapes, quotes): whatever is taken equals the loop's reading."""
    text = newline.join(lines)
    for at, char in mutations:
        at = min(at, len(text))
        text = text[:at] + char + text[at:]
    body = text.encode()
    precision = PRECISIONS[unit]
    got = lineproto.parse(body, precision, NOW_US)
    if got.bad:
        return  # (the compiled module deferred it: only the loop words bad lines)
    if b"\r" in body:
        body = body.replace(b"\r\n", b"\n")
    compiled = _compiled(body, precision)
    if compiled is not None:
        _same(compiled, body, precision)


@needs_module
def test_the_benchmark_and_telegraf_shapes_are_taken() -> None:
    """What the shared benchmark and Telegraf send is taken, never deferred."""
    fleet = b"\n".join(
        b"sensor,id=s%04d value=%d.%d %d" % (i % 1000, i % 40, i % 10, 1577836800 + i)
        for i in range(5000)
    )
    telegraf = (
        b"cpu,cpu=cpu0,host=node1 usage_idle=97.5,usage_user=1.25,usage_system=1.25 "
        b"1765000000000000000\nmem,host=node1 used=123456789i,available_percent=42.5,"
        b"active=t 1765000000000000000\n"
    )
    for body, unit in ((fleet, "s"), (telegraf, "ns"), (fleet + b"\n", "s")):
        got = _compiled(body, PRECISIONS[unit])
        assert got is not None
        _same(got, body, PRECISIONS[unit])
    assert _compiled(fleet, PRECISIONS["s"]).lines == 5000  # type: ignore[union-attr]


@needs_module
@pytest.mark.parametrize(
    ("line", "value", "time_us"),
    [
        (b"m v=-9223372036854775808i -1", -(2.0**63), -1),  # ns: floor, as Python divides
        (b"m v=9223372036854775807i 1", 2.0**63, 0),
        (b"m v=18446744073709551615u 1999", 2.0**64, 1),
        (b"m v=-0i 0", 0.0, 0),
        (b"m v=-0 0", 0.0, 0),
        (b"m v=-0.0 0", -0.0, 0),
        (b"m v=5e-324 9223372036854775807", 5e-324, 9223372036854775),
        (b"m v=-.5 -9223372036854775807", -0.5, -9223372036854776),
        (b"m v=9007199254740993i 0", 9007199254740992.0, 0),  # rounded to even, as float(int)
    ],
)
def test_the_edges_of_numbers_and_times(line: bytes, value: float, time_us: int) -> None:
    got = _compiled(line, PRECISIONS["ns"])
    assert got is not None
    assert got.value.tolist() == [value]
    assert np.signbit(got.value[0]) == np.signbit(value)
    assert got.time_us.tolist() == [time_us]
    _same(got, line, PRECISIONS["ns"])


@needs_module
@pytest.mark.parametrize(
    "line",
    [
        b"m v=9223372036854775808i",  # past int64
        b"m v=18446744073709551616u",
        b"m v=1e309",  # inf
        b"m v=1 9223372036854775808",  # past int64
        b"m v=1 9223372036854775807",  # in seconds: past int64 microseconds
        b'm v="text"',
        b"m v=1  1",
        b"m v=1 ",
        b" m v=1",
        b"m v=1,",
        b"m =1",
        b"m v=",
        b"m v=1=2",
        b"m",
        b"m time=1",  # the loop refuses the field key
        b",t=1 v=1",  # and the missing measurement
        b"m\\ x v=1",
        b"m\tv=1",
    ],
)
def test_what_it_defers_to_the_loop(line: bytes) -> None:
    assert _compiled(line, PRECISIONS["s"]) is None


@needs_module
def test_many_series_and_one_series_spelled_two_ways() -> None:
    """Thousands of distinct pairs (the table grows); tags in another order are one series."""
    body = b"\n".join(b"m,a=%d,b=x v=%d %d" % (i, i, i) for i in range(20_000))
    body += b"\nm,b=x,a=7 v=1 7"
    got = _compiled(body, PRECISIONS["s"])
    assert got is not None
    assert len(got.series) == 20_000
    assert got.series_index[-1] == got.series_index[7]
    _same(got, body, PRECISIONS["s"])
