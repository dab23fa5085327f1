"""The compact form of a chunk's `blocks` blob (storage/chunks.py), for chunks whose values
are decimals' integers: each number a varint, each predicted from what comes before it, so
that a block's summary (its first and last time, min, max, sum, first and last value, its
pages' sizes) takes ~10 bytes where pcodec's standalone format took ~45 (one model fitted to
~50 unlike integers, with a header of its own). On benchmarks/disk.py's store, the blob of
a fleet chunk of 3,000 points went from 143 to ~55 bytes, of the dense series' 8,192 points
from 247 to ~115: 0.056 -> 0.023 bytes a point.

The blob: the first word of the older form (chunks._LENGTH), its top bit set (`COMPACT`),
bits 27-30 log2(its block points / 512), its low bits the chunk's points; then zigzag
LEB128 varints:

    decimals (plus NARROW where the value column holds 32-bit integers), first time, step (the
               second time less the first; 0 for one point),
    per block: its start less the previous block's end and the step (0 for the first),
               its span less (points - 1) x step (both 0 for a series at one interval),
    the time column's model size and page sizes, the value column's likewise,
    per block: first less the previous block's last (the first block: first itself),
               last less first, min(first, last) less min, max less max(first, last),
               2 x sum less points x (first + last).

A chunk whose times are all one step apart stores them here alone: its time column is empty
(and its time pages' sizes 0), its times are the first time and the step.

`decode` takes many blobs at once with numpy, a few with a loop.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

try:  # (built by setup.py where a C compiler is found; without it, numpy does the same)
    from sensorbase.storage import _chunk_blocks
except ImportError:
    _chunk_blocks = None  # type: ignore[assignment]

COMPACT = 1 << 31  # in the blob's first word: this form
SIZE_SHIFT = 27  # the word's bits 27-30: log2(block points / 512)
POINTS_MASK = (1 << SIZE_SHIFT) - 1  # the word's low bits: the chunk's points
# Values whose sums could leave int64 (2 x sum of 8,192 of them) keep the older form.
MOST_VALUE = 1 << 40
# Added to the decimals of a chunk whose value column pcodec holds as 32-bit integers (every
# value's integer within int32; chunks before 2026-12-08 hold 64-bit ones): pcodec takes the
# same integers in ~7% fewer bytes as i32 (the benchmark's fleet and dense series alike).
NARROW = 16
NARROW_BELOW = 1 << 31
# Up to this many blobs, `decode` loops over their bytes: numpy's ~40 calls cost ~200 us
# however few blobs they take, the loop ~20-50 us a blob; 122 blobs by numpy ~1.1 ms (the
# older form's per-blob decoding ~1.8 ms).
FEW_BLOBS = 8

Ints = npt.NDArray[np.int64]


@dataclass(slots=True)
class Layout:
    """What blocks blobs of either form say: per chunk, per block, per page (a chunk's model
    and its pages, one more than its blocks), each in the order of the chunks given."""

    decimals: Ints
    narrow: npt.NDArray[np.bool_]  # per chunk: its values 32-bit integers in pcodec
    total: Ints
    first_us: Ints
    blocks: Ints  # per chunk: how many
    block_points: Ints
    start_us: Ints  # per block, from its chunk's first time
    span_us: Ints
    stats: list[npt.NDArray[np.generic]]  # per block: min, max, sum, first, last, as stored
    time_sizes: Ints  # per page
    value_sizes: Ints

    @staticmethod
    def joined(parts: list[Layout]) -> Layout:
        def cat(name: str) -> npt.NDArray[Any]:
            return np.concatenate([getattr(p, name) for p in parts])

        stats = [np.concatenate([p.stats[i] for p in parts]) for i in range(5)]
        return Layout(
            cat("decimals"),
            cat("narrow"),
            cat("total"),
            cat("first_us"),
            cat("blocks"),
            cat("block_points"),
            cat("start_us"),
            cat("span_us"),
            stats,
            cat("time_sizes"),
            cat("value_sizes"),
        )


def is_compact(blob: bytes) -> bool:
    return blob[3] & 0x80 != 0


def regular(times: Ints) -> bool:
    """Whether the times are all one step apart (then the time column is left empty)."""
    if _chunk_blocks is not None:
        return _chunk_blocks.regular(times)
    return len(times) < 3 or bool((np.diff(times, 2) == 0).all())


def encode(
    decimals: int,
    times: Ints,
    stored: Ints,
    block_points: int,
    time_sizes: list[int],
    value_sizes: list[int],
    narrow: bool,
) -> bytes:
    """The compact blob of a chunk of these times and values (`stored`, the decimals'
    integers, each under MOST_VALUE), in blocks of `block_points`, with its pages' sizes;
    `narrow`: its value column holds them as 32-bit integers."""
    n = len(times)
    if narrow:
        decimals += NARROW
    size_code = (block_points // 512).bit_length() - 1
    word = (COMPACT | size_code << SIZE_SHIFT | n).to_bytes(4, "little")
    if _chunk_blocks is not None:
        sizes = time_sizes + value_sizes
        return word + _chunk_blocks.compact_numbers(decimals, times, stored, block_points, sizes)
    starts = np.arange(0, n, block_points)
    ends = np.minimum(starts + block_points, n) - 1
    counts = ends - starts + 1
    step = int(times[1] - times[0]) if n > 1 else 0
    gap = np.zeros(len(starts), np.int64)
    gap[1:] = times[starts[1:]] - times[ends[:-1]] - step
    span = times[ends] - times[starts] - (counts - 1) * step
    mn, mx, sm, first, last = block_stats(stored, starts, ends)
    previous = np.zeros(len(starts), np.int64)
    previous[1:] = last[:-1]
    low, high = np.minimum(first, last), np.maximum(first, last)
    per_block = (
        first - previous,
        last - first,
        low - mn,
        mx - high,
        2 * sm - counts * (first + last),
    )
    numbers = [decimals, int(times[0]), step]
    numbers += np.column_stack((gap, span)).ravel().tolist()
    numbers += time_sizes + value_sizes
    numbers += np.column_stack(per_block).ravel().tolist()
    return word + _varints(numbers)


def block_stats(stored: npt.NDArray[Any], starts: Ints, ends: Ints) -> list[npt.NDArray[Any]]:
    """Each block's min, max, sum, first and last value (`starts`, `ends`: its first and last
    index)."""
    return [
        np.minimum.reduceat(stored, starts),
        np.maximum.reduceat(stored, starts),
        np.add.reduceat(stored, starts),  # exact, of integers
        stored[starts],
        stored[ends],
    ]


def page_sizes(blob: bytes) -> tuple[int, bool, int, int, int, int, list[int], list[int]]:
    """What decoding the whole chunk needs, read from its first bytes alone: its decimals,
    whether its values are 32-bit integers, points, block points, first time, step, and its
    time and value pages' sizes."""
    total, block_points, blocks = _word(blob)
    numbers = _numbers(blob, 3 + 2 * blocks + 2 * (blocks + 1))
    sizes = numbers[3 + 2 * blocks :]
    narrow = numbers[0] >= NARROW
    return (numbers[0] - NARROW * narrow, narrow, total, block_points, numbers[1], numbers[2],
            sizes[: blocks + 1], sizes[blocks + 1 :])  # fmt: skip


def decode(blobs: list[bytes]) -> Layout:
    """The layout of compact blobs, together."""
    if len(blobs) <= FEW_BLOBS:
        return _decode_few(blobs)
    words = np.array([int.from_bytes(b[:4], "little") for b in blobs], np.int64)
    total = words & POINTS_MASK
    block_points = 512 << ((words >> SIZE_SHIFT) & 0xF)
    blocks = -(-total // block_points)
    numbers, first_of = _unvarints(b"".join(b[4:] for b in blobs), [len(b) - 4 for b in blobs])
    code, first_us, step = (numbers[first_of + i] for i in range(3))
    narrow = code >= NARROW
    chunk = np.repeat(np.arange(len(blobs)), blocks)
    nth = np.arange(len(chunk)) - np.repeat(np.cumsum(blocks) - blocks, blocks)  # in its chunk
    first_block = nth == 0
    at = first_of[chunk]
    count = np.minimum(block_points[chunk], total[chunk] - nth * block_points[chunk])
    gap, span = numbers[at + 3 + 2 * nth], numbers[at + 4 + 2 * nth] + (count - 1) * step[chunk]
    pages = np.repeat(np.arange(len(blobs)), blocks + 1)
    page_nth = np.arange(len(pages)) - np.repeat(np.cumsum(blocks + 1) - blocks - 1, blocks + 1)
    time_at = first_of + 3 + 2 * blocks
    value_at = time_at + blocks + 1
    stat_at = value_at[chunk] + blocks[chunk] + 1 + 5 * nth
    delta, rise, below, above, twice = (numbers[stat_at + i] for i in range(5))
    # A block starts at the previous one's end, the step and its gap; its first value is the
    # previous one's last and its delta: running sums within each chunk.
    start = _chunk_sums(gap + np.where(first_block, 0, _previous(span) + step[chunk]), first_block)
    first = _chunk_sums(delta + np.where(first_block, 0, _previous(rise)), first_block)
    last = first + rise
    low, high = np.minimum(first, last), np.maximum(first, last)
    return Layout(
        code - NARROW * narrow,
        narrow,
        total,
        first_us,
        blocks,
        block_points,
        start,
        span,
        [low - below, high + above, (twice + count * (first + last)) // 2, first, last],
        numbers[time_at[pages] + page_nth],
        numbers[value_at[pages] + page_nth],
    )


def _decode_few(blobs: list[bytes]) -> Layout:
    """`decode` by a loop over each blob's numbers, into lists made arrays once."""
    per_chunk: list[list[int]] = [[], [], [], [], []]  # decimals, total, first_us, blocks, bp
    narrow: list[bool] = []
    starts: list[int] = []
    spans: list[int] = []
    mins: list[int] = []
    maxs: list[int] = []
    sums: list[int] = []
    firsts: list[int] = []
    lasts: list[int] = []
    time_sizes: list[int] = []
    value_sizes: list[int] = []
    for blob in blobs:
        total, block_points, blocks = _word(blob)
        numbers = _numbers(blob)
        decimals, first_us, step = numbers[:3]
        narrow.append(decimals >= NARROW)
        decimals -= NARROW * narrow[-1]
        for column, x in zip(per_chunk, (decimals, total, first_us, blocks, block_points),
                             strict=True):  # fmt: skip
            column.append(x)
        time_at = 3 + 2 * blocks
        value_at = time_at + blocks + 1
        stat_at = value_at + blocks + 1
        time_sizes += numbers[time_at:value_at]
        value_sizes += numbers[value_at:stat_at]
        end = last = 0
        for b in range(blocks):
            count = min(block_points, total - b * block_points)
            start = end + step + numbers[3 + 2 * b] if b else 0
            end = start + numbers[4 + 2 * b] + (count - 1) * step
            starts.append(start)
            spans.append(end - start)
            at = stat_at + 5 * b
            first = last + numbers[at] if b else numbers[at]
            last = first + numbers[at + 1]
            mins.append(min(first, last) - numbers[at + 2])
            maxs.append(max(first, last) + numbers[at + 3])
            sums.append((numbers[at + 4] + count * (first + last)) // 2)
            firsts.append(first)
            lasts.append(last)

    def ints(x: list[int]) -> Ints:
        return np.array(x, np.int64)

    decimals_, total_, first_us_, blocks_, block_points_ = (ints(c) for c in per_chunk)
    return Layout(
        decimals_,
        np.array(narrow, np.bool_),
        total_,
        first_us_,
        blocks_,
        block_points_,
        ints(starts),
        ints(spans),
        [ints(c) for c in (mins, maxs, sums, firsts, lasts)],
        ints(time_sizes),
        ints(value_sizes),
    )


def _word(blob: bytes) -> tuple[int, int, int]:
    """The chunk's points, its block points and its blocks."""
    word = int.from_bytes(blob[:4], "little")
    total, block_points = word & POINTS_MASK, 512 << ((word >> SIZE_SHIFT) & 0xF)
    return total, block_points, -(-total // block_points)


def _previous(x: Ints) -> Ints:
    """Each element's predecessor (0 for the first): masked by the callers at a chunk's start."""
    out = np.zeros(len(x), np.int64)
    out[1:] = x[:-1]
    return out


def _chunk_sums(x: Ints, first_block: npt.NDArray[np.bool_]) -> Ints:
    """Running sums of `x` that start again at each chunk (`first_block`: where one starts)."""
    total = np.cumsum(x)
    starts = np.flatnonzero(first_block)
    return total - np.repeat((total - x)[starts], np.diff(starts, append=len(x)))


def _varints(numbers: list[int]) -> bytes:
    """Zigzag LEB128 of each number, in order (a loop: ~50 numbers a chunk, fewer steps than
    numpy's per-call costs)."""
    out = bytearray()
    for x in numbers:
        u = ~x << 1 | 1 if x < 0 else x << 1
        while u >= 0x80:
            out.append(u & 0x7F | 0x80)
            u >>= 7
        out.append(u)
    return bytes(out)


def _numbers(blob: bytes, most: int = -1) -> list[int]:
    """The numbers of a compact blob's varints (the first `most` of them)."""
    numbers: list[int] = []
    append = numbers.append
    u = shift = 0
    for byte in blob[4:]:
        if byte < 0x80 and not shift:  # (most of them: one byte)
            append(_ONE_BYTE[byte])
        else:
            u |= (byte & 0x7F) << shift
            shift += 7
            if byte >= 0x80:
                continue
            append(u >> 1 if not u & 1 else ~(u >> 1))
            u = shift = 0
        if len(numbers) == most:
            break
    return numbers


_ONE_BYTE = [u >> 1 if not u & 1 else ~(u >> 1) for u in range(0x80)]


def _unvarints(body: bytes, lengths: list[int]) -> tuple[Ints, Ints]:
    """The numbers of varints end to end, and the index of each part's first (`lengths`:
    each part's bytes)."""
    b = np.frombuffer(body, np.uint8)
    ends = np.flatnonzero(b < 0x80)
    starts = np.concatenate(([0], ends[:-1] + 1))
    nth = np.arange(len(b)) - np.repeat(starts, ends - starts + 1)
    shifted = (b & 0x7F).astype(np.uint64) << (7 * nth).astype(np.uint64)
    u = np.bitwise_or.reduceat(shifted, starts)
    numbers = (u >> np.uint64(1)).view(np.int64) ^ -(u & np.uint64(1)).view(np.int64)
    part_starts = np.cumsum(lengths) - np.array(lengths, np.int64)
    return numbers, np.searchsorted(starts, part_starts)
