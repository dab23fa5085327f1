"""The query reply's points encoded from the columns in bulk (points_json.py) are, byte for
byte, what encoding one object a point gives."""

from __future__ import annotations

import msgspec
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from sensorbase.dialects.native.points_json import points_json
from sensorbase.times import format_many

FIRST_US = -62_135_596_800_000_000  # 0001-01-01T00:00:00Z
LAST_US = 253_402_300_799_999_999  # 9999-12-31T23:59:59.999999Z


def _one_object_a_point(time_us: np.ndarray, value: np.ndarray) -> bytes:
    points = zip(format_many(time_us), value.tolist(), strict=True)
    return msgspec.json.encode([{"time": t, "value": v} for t, v in points])


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
    assert points_json(time_us, value) == _one_object_a_point(time_us, value)


def test_a_series_newest_first_across_days_and_leap_years() -> None:
    """Runs of one day (the date is worked out once a run), newest first as `order=desc` reads
    them, over 29 February and a century that is no leap year."""
    for start in (951_782_400, 4_107_456_000, -2_203_891_200):  # 2000-02-29, 2100-02-28, 1900-02-28
        time_us = (start + np.arange(0, 3 * 86_400, 7, dtype=np.int64))[::-1] * 1_000_000 + 123
        value = np.round(np.random.default_rng(abs(start)).normal(20, 5, len(time_us)), 1)
        assert points_json(time_us, value) == _one_object_a_point(time_us, value)


def test_the_last_and_first_microseconds() -> None:
    time_us = np.array([FIRST_US, -1, 0, 1, LAST_US], np.int64)
    value = np.array([-0.0, 5e-324, 1e300, -1.5e-7, 123456789.123])
    assert points_json(time_us, value) == _one_object_a_point(time_us, value)
    assert points_json(time_us[:0], value[:0]) == b"[]"
