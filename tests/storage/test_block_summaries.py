"""The compact form of a chunk's block summaries (storage/block_summaries.py): it says exactly
what the older form said, alone, mixed with chunks of the older form and in any number (a
loop for a few blobs, numpy for many), and a store whose chunks are of the older form still
reads them, on SQLite and PostgreSQL. Likewise chunks whose values pcodec holds as 32-bit
integers (written now) beside those of 64-bit ones (written before)."""

from __future__ import annotations

import sqlite3
from typing import Any

import numpy as np
import psycopg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sensorbase.model import PointColumns, ResolvedBatch, TimeRange
from sensorbase.storage import block_summaries, chunks
from sensorbase.storage.postgres.store import PostgresStore
from tests.storage.conftest import Folding, another_series

FIELDS = ("chunk", "start_us", "end_us", "count", "min", "max", "sum", "first", "last",
          "time_page", "value_page", "decimals")  # fmt: skip


def _chunk(seed: int, n: int, regular: bool, block_points: int, form: str) -> chunks.Chunk:
    """A chunk written now, or in a `form` written before: "wide" (64-bit integer values),
    "older" (the older form of summaries, 64-bit values too)."""
    rng = np.random.default_rng(seed)
    if regular:
        times = (int(rng.integers(-(10**15), 10**15)) + np.arange(n) * 10_000_000).astype(np.int64)
    else:
        times = np.cumsum(rng.integers(1, 10**10, n)).astype(np.int64) - 10**15
    # (decimals as chunks.py scales them back, so that they are stored as integers)
    scale = 10.0 ** int(rng.integers(0, 4))
    values = np.round(rng.normal(0, 10.0 ** rng.integers(0, 6), n) * scale) / scale + 0.0  # (no -0)
    points = PointColumns(times, values, None)
    row = chunks.encode(1, points, block_points, older=form == "older", wide=form == "wide")
    return chunks.chunk_of_row(row[1:])


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.one_of(st.integers(1, 40), st.integers(1000, chunks.CHUNK_POINTS)),
    regular=st.booleans(),
    block_points=st.sampled_from([512, chunks.BLOCK_POINTS]),
    mix=st.lists(
        st.sampled_from(["now", "wide", "older"]),
        min_size=1,
        max_size=2 * block_summaries.FEW_BLOBS + 3,
    ),
)
def test_the_compact_form_says_what_the_older_one_said(
    seed: int, n: int, regular: bool, block_points: int, mix: list[str]
) -> None:
    forms = {f: _chunk(seed, n, regular, block_points, f) for f in ("now", "wide", "older")}
    new, wide, old = forms["now"], forms["wide"], forms["older"]
    assert block_summaries.is_compact(new.blobs[3]) and not block_summaries.is_compact(old.blobs[3])
    assert wide.blobs[1:3] == old.blobs[1:3]
    assert (new.blobs[0] == b"") == (regular or n < 3)  # (times one step apart: no column)
    assert len(new.blobs[3]) < len(old.blobs[3])
    for chunk in (new, wide):
        back = chunk.points()
        assert np.array_equal(back.time_us, old.points().time_us)
        assert np.array_equal(back.value.view(np.int64), old.points().value.view(np.int64))
    # (chunks of every form in one read, as a store that was written before and after holds)
    found = chunks.blocks_of([forms[f].blobs[3] for f in mix])
    want = chunks.blocks_of([old.blobs[3]] * len(mix))
    same = np.array([mix[c] != "now" for c in found.chunk], bool)  # (other value pages)
    for name in FIELDS:
        if name == "value_page":
            assert np.array_equal(found.value_page[same], want.value_page[same])
        elif name != "time_page" or new.blobs[0]:
            assert np.array_equal(getattr(found, name), getattr(want, name)), name
    assert found.narrow == [f == "now" for f in mix]  # (every value here within int32)
    some = list(range(0, len(found.count), 3))
    blobs = [forms[f].blobs[:2] for f in mix]
    got = found.points(blobs, some)
    expected = want.points([old.blobs[:2]] * len(mix), some)
    assert np.array_equal(got.time_us, expected.time_us)
    assert np.array_equal(got.value, expected.value)


def test_floats_and_very_large_integers_keep_the_older_form() -> None:
    times = np.arange(3, dtype=np.int64)
    for values in ([0.1234567891, 2.0, 3.0], [2.0**45, 1.0, 0.0], [-(2.0**41), 1.0, 0.0]):
        row = chunks.encode(1, PointColumns(times, np.array(values), None))
        assert not block_summaries.is_compact(row[12])
        assert chunks.chunk_of_row(row[1:]).points().value.tolist() == values
    row = chunks.encode(1, PointColumns(times, np.array([2.0**35, -(2.0**35), 0.5]), None))
    assert block_summaries.is_compact(row[12])
    assert chunks.blocks_of([row[12]]).sum.tolist() == [0.5]


@pytest.mark.parametrize(
    ("values", "narrow"),
    [
        ([2.0**31 - 1, -(2.0**31 - 1), 0.0], True),
        ([214748.3647, -214748.3647, 0.5], True),  # (4 decimals: the same integers)
        ([2.0**31, 0.0, 1.0], False),
        ([-(2.0**31), 0.0, 1.0], False),
        ([21474836.48, 0.0, 1.0], False),
    ],
)
def test_values_within_int32_are_stored_narrow(values: list[float], narrow: bool) -> None:
    times = np.arange(3, dtype=np.int64) * 1_000_000
    row = chunks.encode(1, PointColumns(times, np.array(values), None))
    assert block_summaries.is_compact(row[12])
    assert block_summaries.page_sizes(row[12])[1] is narrow
    chunk = chunks.chunk_of_row(row[1:])
    assert chunk.points().value.tolist() == values
    blocks = chunks.blocks_of([row[12]])
    assert blocks.narrow == [narrow]
    assert blocks.points([chunk.blobs[:2]], [0]).value.tolist() == values
    assert [blocks.min[0], blocks.max[0]] == [min(values), max(values)]


def test_narrow_values_take_fewer_bytes() -> None:
    """The benchmark's kind of series (a thermometer's walk, one decimal): pcodec's i32 pages
    are smaller than its i64 pages of the same integers."""
    rng = np.random.default_rng(3)
    n = 3000
    times = (1_577_836_800 + np.arange(n) * 10).astype(np.int64) * 1_000_000
    values = np.round(20 + np.cumsum(rng.normal(0, 0.1, n)), 1) + 0.0  # (no -0)
    points = PointColumns(times, values, None)
    narrow, wide = chunks.encode(1, points), chunks.encode(1, points, wide=True)
    assert len(narrow[10]) < 0.97 * len(wide[10])


def _execute(store: Folding, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if isinstance(store, PostgresStore):
        with psycopg.connect(store.url, autocommit=True) as conn:
            cur = conn.execute(sql.replace("?", "%s"), params)
            return cur.fetchall() if cur.description else []
    conn = sqlite3.connect(store.path, isolation_level=None)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def test_chunks_of_the_older_form_still_read(store: Folding) -> None:
    """A store's chunks, rewritten with their blocks in the older form (as a store written
    before holds them), read as before: points, aggregates over parts of blocks, stats."""
    sid = another_series(store)
    rng = np.random.default_rng(7)
    n = 2 * chunks.CHUNK_POINTS + 500
    times = (1_700_000_000 + np.arange(n) * 10).astype(np.int64) * 1_000_000
    values = np.round(20 + np.cumsum(rng.normal(0, 0.1, n)), 1) + 0.0  # (no -0)
    writer = store.writer()
    tx = writer.begin()
    tx.append(ResolvedBatch(np.full(n, sid, np.int64), times, values, None))
    writer.commit()
    store.fold_points()
    rows = _execute(store, f"SELECT {chunks.CHUNK_COLUMNS} FROM point_chunks WHERE series_id = ?",
                    (sid,))  # fmt: skip
    assert rows and all(block_summaries.is_compact(bytes(r[11])) for r in rows)
    assert all(bytes(r[8]) == b"" for r in rows)  # (10 s apart: no time column)
    reader = store.reader()
    inside = TimeRange(int(times[1234]), int(times[n - 777]))
    stats = ("count", "min", "max", "sum", "first", "last")
    before = reader.aggregate(sid, inside, stats), reader.read_range(sid, inside, n)
    for row in rows:
        points = chunks.chunk_of_row(row).points()
        older = chunks.encode(sid, points, older=True)
        _execute(
            store,
            "UPDATE point_chunks SET time_us = ?, value = ?, blocks = ?"
            " WHERE series_id = ? AND start_us = ?",
            (older[9], older[10], older[12], sid, row[0]),
        )
    rows = _execute(store, "SELECT blocks FROM point_chunks WHERE series_id = ?", (sid,))
    assert not any(block_summaries.is_compact(bytes(r[0])) for r in rows)
    reader = store.reader()
    after = reader.aggregate(sid, inside, stats), reader.read_range(sid, inside, n)
    assert after[0] == before[0]
    assert after[0].values["count"] == int(
        ((times >= inside.start_us) & (times < inside.end_us)).sum()
    )
    assert np.array_equal(after[1].time_us, before[1].time_us)
    assert np.array_equal(after[1].value, before[1].value)


@pytest.mark.parametrize("n", [1, 3, 1024, 1025, chunks.CHUNK_POINTS])
def test_a_regular_series_summaries_take_a_few_bytes_a_block(n: int) -> None:
    """A regular 10 s series of one decimal: ~12 bytes a block and ~20 a chunk (its first
    time, the word), where pcodec's standalone format took ~45 a block."""
    rng = np.random.default_rng(n)
    times = (1_577_836_800 + np.arange(n) * 10).astype(np.int64) * 1_000_000
    values = np.round(20 + np.cumsum(rng.normal(0, 0.1, n)), 1) + 0.0  # (no -0)
    row = chunks.encode(1, PointColumns(times, values, None))
    blocks = -(-n // chunks.BLOCK_POINTS)
    assert len(row[12]) <= 22 + 13 * blocks
