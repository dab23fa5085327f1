"""A chunk encoded with the compiled module (`storage/_chunk_blocks.c`: values scaled to
integers, regular times found, the compact blocks blob) is, byte for byte, the chunk the numpy
path that runs without it encodes, and decodes to the same points."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sensorbase.model import PointColumns
from sensorbase.storage import block_summaries, chunks
from tests.dialects.native.test_columns import BUILDABLE

COMPILED = chunks._chunk_blocks
BIG = block_summaries.MOST_VALUE


def test_the_compiled_module_is_built() -> None:
    """`pip install -e .` compiles _chunk_blocks.c (setup.py); it may be missing only where no
    C compiler is, and never under SENSORBASE_REQUIRE_COMPILED=1 (CI)."""
    if COMPILED is not None:
        return
    assert not BUILDABLE, "a C compiler is here but _chunk_blocks.c was not built: pip install -e ."
    assert os.environ.get("SENSORBASE_REQUIRE_COMPILED") != "1", "_chunk_blocks is not built"
    pytest.skip("the _chunk_blocks module is not built")


@contextmanager
def _numpy_path() -> Iterator[None]:
    saved = chunks._chunk_blocks, block_summaries._chunk_blocks
    chunks._chunk_blocks = block_summaries._chunk_blocks = None
    try:
        yield
    finally:
        chunks._chunk_blocks, block_summaries._chunk_blocks = saved


def _both(points: PointColumns, block_points: int = chunks.BLOCK_POINTS) -> tuple[Any, Any]:
    if COMPILED is None:
        pytest.skip("the _chunk_blocks module is not built")
    with np.errstate(over="ignore"):  # (values of 1e300: numpy warns as it scales or sums them)
        compiled = chunks.encode(7, points, block_points)
        with _numpy_path():
            by_numpy = chunks.encode(7, points, block_points)
    return compiled, by_numpy


def _assert_same(points: PointColumns, block_points: int = chunks.BLOCK_POINTS) -> None:
    compiled, by_numpy = _both(points, block_points)
    assert compiled == by_numpy
    decoded = chunks.chunk_of_row(compiled[1:]).points()
    assert decoded.time_us.tobytes() == points.time_us.tobytes()
    assert decoded.value.tobytes() == points.value.tobytes()


def _regular_times(n: int, first: int = 1_700_000_000_000_000, step: int = 10_000_000) -> Any:
    return first + np.arange(n, dtype=np.int64) * step


VALUES = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.integers(-(10**6), 10**6).map(lambda k: k / 10),
    st.integers(-(10**9), 10**9).map(lambda k: k / 1000),
    st.integers(-(2**53), 2**53).map(float),
    st.integers(-BIG, BIG).map(lambda k: k / 100),
    st.sampled_from([0.0, -0.0, 0.1 + 0.2, 1e-7, 2.0**53, -(2.0**53), 2.0**53 - 1, 1e300]),
)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(VALUES, min_size=1, max_size=3000),
    st.lists(st.integers(0, 10**9), min_size=1, max_size=3000),
    st.sampled_from([512, 1024, 2048]),
    st.booleans(),
)
def test_any_chunk_encodes_alike(
    values: list[float], gaps: list[int], block_points: int, regular: bool
) -> None:
    """Decimals of every scale, arbitrary floats, -0.0, integers about 2^53 and MOST_VALUE;
    times one step apart or not (repeated times too); blocks of each size."""
    n = len(values)
    if regular:
        times = _regular_times(n, step=gaps[0] + 1)
    else:
        steps = np.resize(np.array(gaps, np.int64), n)
        times = 1_600_000_000_000_000 + np.cumsum(steps)
    _assert_same(PointColumns(times, np.array(values, np.float64), None), block_points)


@pytest.mark.parametrize("n", [1, 2, 3, 1023, 1024, 1025, 8192])
@pytest.mark.parametrize("decimals", [0, 1, 3, 6])
def test_decimal_chunks_of_every_length(n: int, decimals: int) -> None:
    rng = np.random.default_rng(n * 10 + decimals)
    values = np.round(rng.normal(20, 5, n), decimals)
    _assert_same(PointColumns(_regular_times(n), values, None))


def test_times_at_int64s_edges() -> None:
    """Differences that leave int64 wrap in the compiled module as in numpy's."""
    top, bottom = np.iinfo(np.int64).max, np.iinfo(np.int64).min
    for times in ([bottom, 0, top], [bottom, bottom + 1, top - 1, top], [top - 2, top - 1, top]):
        t = np.array(times, np.int64)
        assert COMPILED is None or COMPILED.regular(t) == bool((np.diff(t, 2) == 0).all())
        _assert_same(PointColumns(t, np.arange(len(t), dtype=np.float64) / 10, None))


def test_the_fewest_decimals_are_chosen() -> None:
    if COMPILED is None:
        pytest.skip("the _chunk_blocks module is not built")
    for values, wanted in (
        ([1.0, 2.0], 0),
        ([1.5, 2.0], 1),
        ([0.125], 3),
        ([0.1 + 0.2], -1),
        ([-0.0], -1),  # (no integer's quotient is -0.0)
        ([2.0**53], -1),
        ([2.0**53 - 1], 0),
        ([1e-6], 6),
        ([1e-7], -1),
    ):
        v = np.array(values, np.float64)
        d, ints, largest = COMPILED.scaled(v, chunks.MAX_DECIMALS)
        assert d == wanted, values
        with _numpy_path(), np.errstate(over="ignore"):
            assert chunks._decimals(v)[0] == wanted
        if d >= 0:
            assert (np.frombuffer(ints, np.int64) / 10.0**d).tobytes() == v.tobytes()
            assert largest == int(np.abs(np.frombuffer(ints, np.int64)).max())


def test_wrong_columns_are_refused() -> None:
    if COMPILED is None:
        pytest.skip("the _chunk_blocks module is not built")
    with pytest.raises(TypeError):
        COMPILED.scaled(np.arange(3, dtype=np.int64), 6)
    with pytest.raises(TypeError):
        COMPILED.regular(np.arange(3, dtype=np.float64))
    with pytest.raises(ValueError):
        COMPILED.scaled(np.arange(3, dtype=np.float64), 16)
    t = np.arange(3, dtype=np.int64)
    with pytest.raises(ValueError):
        COMPILED.compact_numbers(0, t, t[:2], 1024, [])
    with pytest.raises(ValueError):
        COMPILED.compact_numbers(0, t, t, 0, [])
