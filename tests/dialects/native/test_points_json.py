"""The query reply's points encoded from the columns in bulk (points_json.py), by the compiled
module (`_points_json.c`) and by the numpy path that runs without it, are, byte for byte, what
encoding one object a point gives."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import msgspec
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sensorbase.dialects.native import points_json as module
from sensorbase.times import format_many
from tests.dialects.native.test_columns import BUILDABLE

PATHS = ["compiled", "numpy"]

FIRST_US = -62_135_596_800_000_000  # 0001-01-01T00:00:00Z
LAST_US = 253_402_300_799_999_999  # 9999-12-31T23:59:59.999999Z


def _one_object_a_point(time_us: np.ndarray, value: np.ndarray) -> bytes:
    points = zip(format_many(time_us), value.tolist(), strict=True)
    return msgspec.json.encode([{"time": t, "value": v} for t, v in points])


@contextmanager
def _path(name: str) -> Iterator[Callable[[np.ndarray, np.ndarray], bytes]]:
    """points_json as it runs with the compiled module, or without it."""
    if name == "compiled" and module.compiled is None:
        pytest.skip("the _points_json module is not built")
    saved = module.compiled
    if name == "numpy":
        module.compiled = None
    try:
        yield module.points_json
    finally:
        module.compiled = saved


def test_the_compiled_module_is_built() -> None:
    """`pip install -e .` compiles _points_json.c beside _columns.c (setup.py); it may be
    missing only where no C compiler is, and never under SENSORBASE_REQUIRE_COMPILED=1 (CI)."""
    if module.compiled is not None:
        return
    assert not BUILDABLE, "a C compiler is here but _points_json.c was not built: pip install -e ."
    assert os.environ.get("SENSORBASE_REQUIRE_COMPILED") != "1", "_points_json is not built"
    pytest.skip("the _points_json module is not built")


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(FIRST_US - 10**15, LAST_US + 10**15),
            st.floats(allow_nan=False, allow_infinity=False),
        ),
        max_size=40,
    )
)
def test_any_times_and_values(points: list[tuple[int, float]]) -> None:
    """Times anywhere (before 1970, leap days, out of the four-digit years, which take the
    per-point path) and any finite value, in any order."""
    time_us = np.array([t for t, _ in points], np.int64)
    value = np.array([v for _, v in points], np.float64)
    for name in PATHS:
        if name == "compiled" and module.compiled is None:
            continue
        with _path(name) as points_json:
            assert points_json(time_us, value) == _one_object_a_point(time_us, value), name


@pytest.mark.parametrize("name", PATHS)
def test_a_series_newest_first_across_days_and_leap_years(name: str) -> None:
    """Runs of one day (the date is worked out once a run), newest first as `order=desc` reads
    them, over 29 February and a century that is no leap year."""
    for start in (951_782_400, 4_107_456_000, -2_203_891_200):  # 2000-02-29, 2100-02-28, 1900-02-28
        time_us = (start + np.arange(0, 3 * 86_400, 7, dtype=np.int64))[::-1] * 1_000_000 + 123
        value = np.round(np.random.default_rng(abs(start)).normal(20, 5, len(time_us)), 1)
        with _path(name) as points_json:
            assert points_json(time_us, value) == _one_object_a_point(time_us, value)


@pytest.mark.parametrize("name", PATHS)
def test_the_last_and_first_microseconds(name: str) -> None:
    time_us = np.array([FIRST_US, -1, 0, 1, LAST_US], np.int64)
    value = np.array([-0.0, 5e-324, 1e300, -1.5e-7, 123456789.123])
    with _path(name) as points_json:
        assert points_json(time_us, value) == _one_object_a_point(time_us, value)
        assert points_json(time_us[:0], value[:0]) == b"[]"
        beyond = np.array([0, LAST_US + 1], np.int64)  # the compiled module defers these
        assert points_json(beyond, value[:2]) == _one_object_a_point(beyond, value[:2])


def test_the_compiled_module_refuses_columns_that_disagree() -> None:
    """Its two arguments come from one column; a list of another length, or not a list, is an
    error and never a reply with points missing or invented."""
    if module.compiled is None:
        pytest.skip("the _points_json module is not built")
    encode_numbers, encode = module.compiled.encode_numbers, module.compiled.encode
    times = np.array([0, 1, 2], np.int64)
    for numbers in (b"[1.0,2.0]", b"[1.0,2.0,3.0,4.0]", b"[]", b"[1.0,,3.0]", b"1.0,2.0,3.0", b""):
        with pytest.raises(ValueError, match=r"numbers|times"):
            encode_numbers(times, numbers)
    with pytest.raises(ValueError, match="numbers"):
        encode_numbers(times[:0], b"[1.0]")
    assert encode_numbers(times[:0], b"[]") == b"[]"
    with pytest.raises(ValueError, match="int64"):
        encode_numbers(b"1234567", b"[1.0]")
    for values in (np.zeros(2), np.zeros(4), np.zeros(3, np.float32)):
        with pytest.raises(ValueError, match="float64"):
            encode(times, values)
    assert encode(times[:0], np.zeros(0)) == b"[]"


def _written_by_the_module(value: float) -> bool:
    """Whether `_points_json.c` writes `value` itself (the decimals of its comment)."""
    if value != value or value in (float("inf"), float("-inf")):
        return True
    scaled = round(value * 10**6)
    return abs(value * 10**6) < 10**15 and scaled / 10**6 == value and not 0 < abs(scaled) < 10


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(-(10**15) + 1, 10**15 - 1), st.integers(0, 6)),
        min_size=1,
        max_size=40,
    )
)
def test_decimals_are_written_by_the_module_as_msgspec_writes_them(
    decimals: list[tuple[int, int]],
) -> None:
    """Values of at most 6 places and 15 digits, as sensors send them: the module writes their
    digits itself (no float object, no list), byte for byte msgspec's."""
    if module.compiled is None:
        pytest.skip("the _points_json module is not built")
    value = np.array([digits / 10**places for digits, places in decimals])
    time_us = np.arange(len(value), dtype=np.int64) * 1_000_003
    expected = _one_object_a_point(time_us, value)
    assert module.points_json(time_us, value) == expected
    fast = module.compiled.encode(time_us, value)
    assert (fast is not None) == all(_written_by_the_module(v) for v in value.tolist())
    assert fast is None or fast == expected


EDGES = [0.0, -0.0, 22.0, -1.5, 1e-5, -1e-5, 0.000012, 9e-6, 1e-6, 0.1 + 0.2, 999_999_999.999999,
         1e9, -1e9, 123_456_789.123456, 0.000001, 5e-324, 1e16, 2.5e-7, float("nan"),
         float("inf"), float("-inf")]  # fmt: skip


@pytest.mark.parametrize("value", EDGES)
def test_values_at_the_edges_of_the_modules_decimals(value: float) -> None:
    """Each side of every edge (plain notation from 1e-5, 15 digits, 6 places, signed zero,
    NaN and infinities as null), alone and beside decimals: the module writes it or defers the
    whole column to msgspec's numbers, and the reply is the same."""
    if module.compiled is None:
        pytest.skip("the _points_json module is not built")
    for values in ([value], [21.5, value, -3.25]):
        column = np.array(values)
        time_us = np.arange(len(column), dtype=np.int64)
        expected = _one_object_a_point(time_us, column)
        assert module.points_json(time_us, column) == expected
        fast = module.compiled.encode(time_us, column)
        assert (fast is not None) == _written_by_the_module(value)
        assert fast is None or fast == expected


def _in_epoch(time_us: np.ndarray, epoch: str) -> list[int]:
    """Integers of the unit since 1970, floored, by Python's arithmetic."""
    unit = {"s": 1_000_000, "ms": 1_000, "us": 1}
    return [t * 1_000 if epoch == "ns" else t // unit[epoch] for t in time_us.tolist()]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(-(2**62), 2**62),
            st.floats(allow_nan=False, allow_infinity=False),
        ),
        max_size=30,
    ),
    st.sampled_from([None, "s", "ms", "us", "ns"]),
)
def test_epoch_times_and_columns(points: list[tuple[int, float]], epoch: str | None) -> None:
    """Times as integers of a unit (floored, before 1970 too; nanoseconds past int64's range)
    in the records and as one column, and the values' column: each as msgspec encodes the
    lists, on both paths."""
    time_us = np.array([t for t, _ in points], np.int64)
    value = np.array([v for _, v in points], np.float64)
    times = format_many(time_us) if epoch is None else _in_epoch(time_us, epoch)
    records = msgspec.json.encode(
        [{"time": t, "value": v} for t, v in zip(times, value.tolist(), strict=True)]
    )
    for name in PATHS:
        if name == "compiled" and module.compiled is None:
            continue
        with _path(name) as points_json:
            if epoch is not None:  # (ISO times out of 0001-9999: test_any_times_and_values)
                assert points_json(time_us, value, epoch) == records, name
            assert module.times_json(time_us, epoch) == msgspec.json.encode(times), name
            assert module.values_json(value) == msgspec.json.encode(value.tolist()), name


def test_the_compiled_module_refuses_an_unknown_epoch() -> None:
    if module.compiled is None:
        pytest.skip("the _points_json module is not built")
    times = np.array([0, 1], np.int64)
    for call in (
        lambda: module.compiled.encode(times, np.zeros(2), 60_000_000),
        lambda: module.compiled.encode_numbers(times, b"[1,2]", 2),
        lambda: module.compiled.times(times, -1),
    ):
        with pytest.raises(ValueError, match="epoch"):
            call()
    with pytest.raises(ValueError, match="float64"):
        module.compiled.values(b"1234567")
    assert module.compiled.values(np.array([0.1 + 0.2])) is None  # msgspec's digits then
