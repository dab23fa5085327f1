"""Chunks, as both backends store them (the layout: sqlite/__init__.py): a series' points, at
most `CHUNK_POINTS` of them, compressed with pcodec in blocks of `BLOCK_POINTS`, stored beside
their count, min, max, sum, first and last, and the same per block. Each backend holds the SQL
that stores them (sqlite/chunks.py, postgres/chunks.py); the reads that merge them with the
write log are chunk_reads.py's.

A chunk's times and values are each one pcodec chunk of `BLOCK_POINTS`-point pages (pcodec's
"wrapped" format: the model once, then pages that decode on their own), so that an aggregate
over intervals decodes only the blocks that straddle an interval's edge and takes the others
from their summaries (`Blocks`). The blocks' summaries (their first and last time, their
min, max, sum, first and last value, their pages' sizes) are varints in a compact form where
the values are decimals (block_summaries.py: the 8 blocks of a full chunk of the benchmark's
dense series take ~115 bytes), else pcodec-compressed (~250 bytes; every chunk written
before schema 9). A chunk of decimals whose times are one step apart has no time column:
its summaries hold its first time and the step.

Values that are all decimals of at most `MAX_DECIMALS` places (a thermometer's 19.9) are
stored as the integers 10^d times them, exactly (every value is checked to come back
bit for bit, else the floats are stored): pcodec takes a rounded sensor series in ~0.3
bytes a point as integers and ~0.42 as floats (measured on the benchmark's series).
Measured on the benchmark's 1 Hz series, by chunk size (times + values, pcodec level 4):
2,048 points 0.48 B/point, 8,192 0.44, 65,536 0.54 (its model fits the whole chunk worse);
as integers 2,048 0.35, 8,192 0.30."""

from __future__ import annotations

import itertools
import struct
from dataclasses import dataclass
from typing import Any

import msgspec
import numpy as np
import numpy.typing as npt
from pcodec import ChunkConfig, ModeSpec, PagingSpec, standalone, wrapped

from sensorbase.model import PointColumns
from sensorbase.storage import block_summaries
from sensorbase.storage.block_summaries import Layout

try:  # (built by setup.py where a C compiler is found; without it, numpy does the same)
    from sensorbase.storage import _chunk_blocks
except ImportError:
    _chunk_blocks = None  # type: ignore[assignment]

EXTRAS_ENCODER = msgspec.json.Encoder()
EXTRAS_DECODER = msgspec.json.Decoder(list[str | None])

CHUNK_POINTS = 8192  # most points in one chunk
# Points of a block (a pcodec page) of a chunk written now, the last block of a chunk fewer:
# each block costs its summary (~45 bytes) and a page header in each column (~8 bytes), so
# that blocks of 512 points, as chunks were written before (issue 28), took ~0.07 byte a
# point of the benchmark's fleet in summaries alone. Against 512, 1,024 took the fleet's
# chunks of 3,000 points from 0.414 to 0.372 bytes a point and the dense series' of 8,192
# from 0.381 to 0.343 (2,048: 0.357 and 0.324, but twice the points decoded at each edge of
# an interval). A chunk says its own (`_block_points`), so chunks of both sizes are read.
BLOCK_POINTS = 1024
# A fold refills a series' last chunk with its new points while that chunk holds fewer than
# this, else starts a new one: a series that gets a few hundred points a fold (a fleet's
# device) keeps chunks of ~1,000-1,500 points, each point re-encoded a few times, and a
# series that gets thousands (a dense one) gets chunks of CHUNK_POINTS. Refilling up to
# half of CHUNK_POINTS re-encoded a fleet's points ~7 times: 3.2 us a point folded, against
# 1.0 us with chunks of 2,048 (benchmarks/README.md).
REFILL_BELOW = 1024
MAX_DECIMALS = 6
_LEVEL = 4  # times: ~as small as pcodec's default 8 here, and faster
# Values: level 6 took the values of the benchmark's store (benchmarks/disk.py) from 0.3041
# bytes a point at level 4 to 0.2963 (8: 0.2975), the encode no slower (~50 ns a point either
# way in chunks of 3,000); its times grew at 6 (0.0048 -> 0.0050), so they keep 4.
_VALUE_LEVEL = 6
_SUMMARY_CONFIG = ChunkConfig(compression_level=_LEVEL)
_HEADER = wrapped.FileCompressor().write_header()
_FILE, _ = wrapped.FileDecompressor.new(_HEADER)
_LENGTH = struct.Struct("<I")  # the blocks blob's first word: its integers' bytes...
_SIZE_SHIFT = 28  # ...and above this bit log2(its block points / 512): 0 in chunks before


@dataclass(slots=True)
class Blocks:
    """The blocks of some chunks (`blocks_of`), as columns: per block its chunk (an index into
    the chunks given), first and last time, count and min, max, sum, first and last value, and
    where its pages lie in the chunk's blobs; `points` decodes the blocks asked for."""

    chunk: npt.NDArray[np.int64]
    start_us: npt.NDArray[np.int64]
    end_us: npt.NDArray[np.int64]
    count: npt.NDArray[np.int64]
    min: npt.NDArray[np.float64]
    max: npt.NDArray[np.float64]
    sum: npt.NDArray[np.float64]
    first: npt.NDArray[np.float64]
    last: npt.NDArray[np.float64]
    time_page: npt.NDArray[np.int64]  # (n, 2): where its time page starts and ends in the blob
    value_page: npt.NDArray[np.int64]  # likewise in the value blob
    decimals: list[int]  # per chunk
    narrow: list[bool]  # per chunk: its values 32-bit integers in pcodec

    def points(self, blobs: list[tuple[bytes, bytes]], which: list[int]) -> PointColumns:
        """The points of the blocks `which` (ascending), without extras; `blobs`: each
        chunk's time and value blob."""
        counts = self.count[which].tolist()
        times = np.empty(sum(counts), np.int64)
        scaled = np.empty(len(times), np.int64)  # values as decimals' integers...
        floats = np.empty(0, np.float64)  # ...or as floats, where a chunk has other values
        scale = np.empty(len(which), np.float64)  # per block: 10^decimals, or 0 for floats
        # (only the blocks asked for: lists of every block cost more than the decoding)
        chunk_of = self.chunk[which].tolist()
        time_page, value_page = self.time_page[which].tolist(), self.value_page[which].tolist()
        start_us, end_us = self.start_us[which].tolist(), self.end_us[which].tolist()
        at = 0
        held = -1
        time_decoder: Any = None
        value_decoder: Any = None
        narrow = np.empty(0, np.int32)  # (a narrow chunk's page, widened into `scaled`)
        for i, n in enumerate(counts):
            chunk = chunk_of[i]
            time_blob, value_blob = blobs[chunk]
            decimals = self.decimals[chunk]
            if chunk != held:
                held = chunk
                if time_blob:
                    time_decoder, _ = _FILE.chunk_decompressor(time_blob, "i64")
                kind = _value_kind(decimals, self.narrow[chunk])
                value_decoder, _ = _FILE.chunk_decompressor(value_blob, kind)
            if time_blob:
                lo, hi = time_page[i]
                time_decoder.read_page_into(time_blob[lo:hi], n, times[at : at + n])
            else:  # (one step apart: block_summaries.py)
                step = (end_us[i] - start_us[i]) // max(n - 1, 1)
                times[at : at + n] = start_us[i] + np.arange(n, dtype=np.int64) * step
            lo, hi = value_page[i]
            if decimals < 0:
                if not len(floats):
                    floats = np.zeros(len(times), np.float64)
                value_decoder.read_page_into(value_blob[lo:hi], n, floats[at : at + n])
                scale[i] = 0.0
            else:
                if self.narrow[chunk]:
                    if len(narrow) < n:
                        narrow = np.empty(max(n, BLOCK_POINTS), np.int32)
                    value_decoder.read_page_into(value_blob[lo:hi], n, narrow[:n])
                    scaled[at : at + n] = narrow[:n]
                else:
                    value_decoder.read_page_into(value_blob[lo:hi], n, scaled[at : at + n])
                scale[i] = 10.0**decimals
            at += n
        per_point = np.repeat(scale, counts)
        values = scaled / np.where(per_point == 0.0, 1.0, per_point)
        if len(floats):
            values = np.where(per_point == 0.0, floats, values)
        return PointColumns(times, values, None)


@dataclass(slots=True)
class Chunk:
    start_us: int
    end_us: int
    count: int
    stats: tuple[float, float, float, float, float]  # min, max, sum, first, last
    blobs: tuple[bytes, bytes, bytes | None, bytes]  # times, values, extras, blocks

    def points(self) -> PointColumns:
        """Every point of the chunk: its pages one after another."""
        time_blob, value_blob, extra_blob, blocks_blob = self.blobs
        if block_summaries.is_compact(blocks_blob):
            found = block_summaries.page_sizes(blocks_blob)
        else:
            found = _older_page_sizes(blocks_blob)
        decimals, narrow, total, block_points, first_us, step, time_sizes, value_sizes = found
        kind = _value_kind(decimals, narrow)
        values = _pages(value_blob, kind, value_sizes, block_points, total)
        if time_blob:
            times = _pages(time_blob, "i64", time_sizes, block_points, total)
        else:  # (one step apart: block_summaries.py)
            times = first_us + np.arange(total, dtype=np.int64) * step
        return PointColumns(
            times,
            _unscaled(values, decimals),
            None if extra_blob is None else EXTRAS_DECODER.decode(extra_blob),
        )


CHUNK_COLUMNS = "start_us, end_us, count, min, max, sum, first, last, time_us, value, extra, blocks"


def chunk_of_row(row: tuple[Any, ...]) -> Chunk:
    return Chunk(row[0], row[1], row[2], tuple(row[3:8]), (row[8], row[9], row[10], row[11]))


def _decimals(v: npt.NDArray[np.float64]) -> tuple[int, npt.NDArray[Any], float]:
    """The fewest decimal places d that hold every value exactly, the values times 10^d as
    integers, and the largest of them in magnitude; or -1, the values themselves and inf.
    Each d is tried on a few values first, so that a chunk of arbitrary floats costs little.
    (In one pass of C where it is built: storage/_chunk_blocks.c.)"""
    if _chunk_blocks is not None:
        d, ints, largest = _chunk_blocks.scaled(v, MAX_DECIMALS)
        return (-1, v, np.inf) if ints is None else (d, np.frombuffer(ints, np.int64), largest)
    sample = v[:: max(1, len(v) // 8)]
    for d in range(MAX_DECIMALS + 1):
        if _scaled(sample, d) is not None:
            ints = _scaled(v, d)
            if ints is not None:
                return d, ints, float(np.abs(ints).max())
    return -1, v, np.inf


def _scaled(v: npt.NDArray[np.float64], d: int) -> npt.NDArray[np.int64] | None:
    scaled = np.round(v * 10.0**d)
    if not np.abs(scaled).max() < 2.0**53:
        return None
    ints = scaled.astype(np.int64)
    same = np.array_equal(_unscaled(ints, d).view(np.int64), v.view(np.int64))
    return ints if same else None


def _value_kind(decimals: int, narrow: bool) -> str:
    """pcodec's type of a chunk's value column."""
    return "f64" if decimals < 0 else "i32" if narrow else "i64"


def _unscaled(values: npt.NDArray[Any], decimals: int) -> npt.NDArray[np.float64]:
    if decimals < 0:
        return values.astype(np.float64, copy=False)
    if decimals == 0:
        return values.astype(np.float64)
    return values / 10.0**decimals


def _paged(
    array: npt.NDArray[Any], sizes: list[int], mode: ModeSpec | None = None, level: int = _LEVEL
) -> tuple[bytes, list[int]]:
    """`array` as one wrapped pcodec chunk in pages of `sizes`: its bytes, and the byte
    size of its model and of each page."""
    config = ChunkConfig(
        compression_level=level,
        paging_spec=PagingSpec.exact_page_sizes(sizes),
        mode_spec=mode or ModeSpec.auto(),
    )
    compressor = wrapped.FileCompressor().chunk_compressor(np.ascontiguousarray(array), config)
    parts = [compressor.write_meta()]
    parts.extend(compressor.write_page(i) for i in range(len(sizes)))
    return b"".join(parts), [len(p) for p in parts]


def _paged_times(times: npt.NDArray[np.int64], sizes: list[int]) -> tuple[bytes, list[int]]:
    """`_paged` for a time column: the smaller of pcodec's own choice of mode and its
    classic mode. Its own choice sees that a regular series' times are all multiples of the
    interval and divides them by it, which on some chunks costs ~130 bytes a page where the
    classic mode's deltas (all one value) cost ~8: 1,000 times 10 s apart took 310 bytes,
    0.31 byte a point, against 29 classic (the fleet of benchmarks/bench.py, whose time
    column was a third of its bytes). Times of millisecond precision are the opposite case
    (the multiples halve them), hence both, for ~20 ns a point. Times at one interval
    throughout take the classic mode alone: its deltas are one value, which no mode writes in
    fewer bytes (never more than the other choice, over chunks of 3 to 8,192 points at
    intervals of 1 us to 1 h), and a fold encodes such a chunk in ~15 us less (of ~80 us for
    a chunk of 500 points)."""
    if len(times) > 2 and (np.diff(times, 2) == 0).all():
        return _paged(times, sizes, ModeSpec.classic())
    found = _paged(times, sizes)
    classic = _paged(times, sizes, ModeSpec.classic())
    return classic if len(classic[0]) < len(found[0]) else found


def layout(blobs: list[bytes]) -> Layout:
    """What the `blocks` blobs say, of either form (block_summaries.py: the compact one), in
    the order given: each run of blobs of one form decoded together (a store written before
    and after the compact form holds a series' older chunks, then its newer ones)."""
    compact = [block_summaries.is_compact(b) for b in blobs]
    runs = [0, *(i for i in range(1, len(blobs)) if compact[i] != compact[i - 1]), len(blobs)]
    parts = [
        (block_summaries.decode if compact[lo] else _older_layout)(blobs[lo:hi])
        for lo, hi in itertools.pairwise(runs)
    ]
    return parts[0] if len(parts) == 1 else Layout.joined(parts)


def _older_layout(blobs: list[bytes]) -> Layout:
    """The layout of blobs of the older form: pcodec's standalone format, in one chunk of
    integers, and the stats of a chunk of floats in another."""
    headers, starts, spans, time_sizes, value_sizes = [], [], [], [], []
    stats: list[list[npt.NDArray[Any]]] = [[], [], [], [], []]
    for blob in blobs:
        int_bytes, block_points = _block_points(blob)
        ints = standalone.simple_decompress(blob[4 : 4 + int_bytes])
        decimals, total, first_us = ints[:3].tolist()
        n = -(-total // block_points)
        headers.append((decimals, total, first_us, n, block_points))
        starts.append(ints[3 : 3 + n])
        spans.append(ints[3 + n : 3 + 2 * n])
        time_sizes.append(ints[3 + 2 * n : 4 + 3 * n])
        value_sizes.append(ints[4 + 3 * n : 5 + 4 * n])
        found = (
            standalone.simple_decompress(blob[4 + int_bytes :])
            if decimals < 0
            else ints[5 + 4 * n :]
        )
        for i, column in enumerate(stats):
            column.append(found[i * n : (i + 1) * n])
    decimals, totals, firsts, ns, sizes = (
        np.array(c, np.int64) for c in zip(*headers, strict=True)
    )
    return Layout(
        decimals,
        np.zeros(len(blobs), np.bool_),
        totals,
        firsts,
        ns,
        sizes,
        np.concatenate(starts).astype(np.int64),
        np.concatenate(spans).astype(np.int64),
        [np.concatenate(c) for c in stats],
        np.concatenate(time_sizes).astype(np.int64),
        np.concatenate(value_sizes).astype(np.int64),
    )


def _older_page_sizes(
    blob: bytes,
) -> tuple[int, bool, int, int, int, int, list[int], list[int]]:
    """block_summaries.page_sizes of a blob of the older form (its step: 0, unused: the
    older form always has a time column)."""
    int_bytes, block_points = _block_points(blob)
    ints = standalone.simple_decompress(blob[4 : 4 + int_bytes])
    decimals, total, first_us = ints[:3].tolist()
    n = -(-total // block_points)
    sizes = ints[3 + 2 * n : 5 + 4 * n].tolist()
    return decimals, False, total, block_points, first_us, 0, sizes[: n + 1], sizes[n + 1 :]


def _pages(
    blob: bytes, dtype: str, sizes: list[int], block_points: int, total: int
) -> npt.NDArray[Any]:
    """A column's `total` points from its pages (`sizes`: the model's bytes, then each
    page's), `block_points` a page."""
    column = np.empty(total, {"f64": np.float64, "i64": np.int64, "i32": np.int32}[dtype])
    decoder, _ = _FILE.chunk_decompressor(blob, dtype)
    at_byte = sizes[0]  # (after the model)
    for page in range(-(-total // block_points)):
        at = page * block_points
        end_byte = at_byte + sizes[page + 1]
        decoder.read_page_into(blob[at_byte:end_byte], min(block_points, total - at), column[at:])
        at_byte = end_byte
    return column


def blocks_of(blobs: list[bytes]) -> Blocks:
    """The blocks of the chunks whose `blocks` blobs these are, decoded together: a few
    slices per chunk, the arithmetic once over all their blocks."""
    found = layout(blobs)
    decimals, totals, firsts, ns, sizes = (
        found.decimals, found.total, found.first_us, found.blocks, found.block_points,
    )  # fmt: skip
    chunk = np.repeat(np.arange(len(blobs)), ns)
    last_block = np.cumsum(ns) - 1
    count = sizes[chunk]
    count[last_block] = totals - sizes * (ns - 1)
    start_us = found.start_us + firsts[chunk]
    end_us = start_us + found.span_us
    scale = np.where(decimals < 0, 1.0, 10.0 ** np.maximum(decimals, 0))[chunk]
    # Each chunk's page ends (its model's, then its pages'), from the start of its blob: one
    # more than it has blocks, so that block b's page is at b + its chunk's index.
    pages = np.repeat(np.arange(len(blobs)), ns + 1)
    time_ends = _segment_sums(found.time_sizes, pages, ns + 1)
    value_ends = _segment_sums(found.value_sizes, pages, ns + 1)
    at = np.arange(len(chunk)) + chunk
    mins, maxs, sums, firsts_v, lasts_v = (c / scale for c in found.stats)
    return Blocks(
        chunk,
        start_us,
        end_us,
        count,
        mins,
        maxs,
        sums,
        firsts_v,
        lasts_v,
        np.column_stack((time_ends[at], time_ends[at + 1])),
        np.column_stack((value_ends[at], value_ends[at + 1])),
        decimals.tolist(),
        found.narrow.tolist(),
    )


def _block_points(blob: bytes) -> tuple[int, int]:
    """A blocks blob's integers' bytes, and its chunk's block points (see _SIZE_SHIFT)."""
    (word,) = _LENGTH.unpack_from(blob)
    return word & ((1 << _SIZE_SHIFT) - 1), 512 << (word >> _SIZE_SHIFT)


def _segment_sums(
    sizes: npt.NDArray[np.int64], segment: npt.NDArray[np.int64], lengths: npt.NDArray[np.int64]
) -> npt.NDArray[np.int64]:
    """Running sums of `sizes` that start again at each segment (`segment`: each size's,
    `lengths`: each segment's number of sizes)."""
    total = np.cumsum(sizes)
    ends = np.cumsum(lengths)
    before = np.zeros(len(lengths), np.int64)
    before[1:] = total[ends[:-1] - 1]
    return total - before[segment]


def encode(
    series_id: int,
    points: PointColumns,
    block_points: int = BLOCK_POINTS,
    older: bool = False,
    wide: bool = False,
) -> tuple[Any, ...]:
    """The chunk row of time-ordered points of a series (at most CHUNK_POINTS), in blocks of
    `block_points` (512 times a power of two), its blocks' summaries in the compact form
    where its values are decimals (block_summaries.py), else in the older one; decimals'
    integers within int32 as 32-bit integers. (Blocks of other than BLOCK_POINTS, `older` and
    `wide`: tests of chunks written before.)"""
    t = np.ascontiguousarray(points.time_us, np.int64)
    v = np.ascontiguousarray(points.value, np.float64)
    extra = points.extra
    extra_blob = None
    if extra is not None and any(e is not None for e in extra):
        extra_blob = EXTRAS_ENCODER.encode(extra)
    n = len(t)
    sizes = [min(block_points, n - at) for at in range(0, n, block_points)]
    decimals, stored, largest = _decimals(v)
    compact = not older and decimals >= 0 and largest < block_summaries.MOST_VALUE
    if compact and block_summaries.regular(t):  # (the blocks blob holds them: no column)
        time_blob, time_sizes = b"", [0] * (len(sizes) + 1)
    else:
        time_blob, time_sizes = _paged_times(t, sizes)
    narrow = compact and not wide and largest < block_summaries.NARROW_BELOW
    values = stored.astype(np.int32) if narrow else stored
    value_blob, value_sizes = _paged(values, sizes, level=_VALUE_LEVEL)
    if compact:
        blocks_blob = block_summaries.encode(
            decimals, t, stored, block_points, time_sizes, value_sizes, narrow
        )
    else:
        starts = np.arange(0, n, block_points)
        ends = np.minimum(starts + block_points, n) - 1
        stats = block_summaries.block_stats(stored, starts, ends)
        blocks_blob = _older_blocks(decimals, t, block_points, time_sizes, value_sizes, stats)
    return (
        series_id,
        int(t[0]),
        int(t[-1]),
        n,
        float(v.min()),
        float(v.max()),
        float(v.sum()),
        float(v[0]),
        float(v[-1]),
        time_blob,
        value_blob,
        extra_blob,
        blocks_blob,
    )


def _older_blocks(
    decimals: int,
    t: npt.NDArray[np.int64],
    block_points: int,
    time_sizes: list[int],
    value_sizes: list[int],
    stats: list[npt.NDArray[Any]],
) -> bytes:
    """The blocks blob in pcodec's standalone format: the form of every chunk before the
    compact one, and still of chunks of floats."""
    n = len(t)
    starts = np.arange(0, n, block_points)
    ends = np.minimum(starts + block_points, n) - 1
    # Small numbers compress best: times from the chunk's first, sizes rather than offsets.
    ints = [[decimals, n, t[0]], t[starts] - t[0], t[ends] - t[starts], time_sizes, value_sizes]
    float_blob = b""
    if decimals < 0:
        float_blob = standalone.simple_compress(np.concatenate(stats), _SUMMARY_CONFIG)
    else:  # as integers too: they are values of the chunk (sums of them)
        ints.extend(stats)
    int_blob = standalone.simple_compress(np.concatenate(ints).astype(np.int64), _SUMMARY_CONFIG)
    size_code = (block_points // 512).bit_length() - 1
    return _LENGTH.pack(len(int_blob) | size_code << _SIZE_SHIFT) + int_blob + float_blob


Summary = tuple[int, int, int, float, float, float, float, float]


def expire_chunk(chunk: Chunk, cutoff_us: int) -> tuple[Summary, PointColumns, int]:
    """A chunk's points before `cutoff_us` (which must hold some): their summary (start, end,
    count, min, max, sum, first, last), the points it keeps, and how many expire. A wholly
    expired chunk's own stats are its summary, and nothing of it is decoded."""
    if chunk.end_us < cutoff_us:
        mn, mx, sm, first, last = chunk.stats
        summary = (chunk.start_us, chunk.end_us, chunk.count, mn, mx, sm, first, last)
        return summary, PointColumns.empty(), chunk.count
    points = chunk.points()
    cut = int(np.searchsorted(points.time_us, cutoff_us))
    t, v = points.time_us[:cut], points.value[:cut]
    summary = (
        int(t[0]), int(t[-1]), cut, float(v.min()), float(v.max()),
        float(v.sum()), float(v[0]), float(v[-1]),
    )  # fmt: skip
    return summary, points.take(slice(cut, len(points))), cut
