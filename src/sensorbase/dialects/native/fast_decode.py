"""The fast path of native write decoding (decode.py): the common body (one `field` and
`value` per point, integer epoch times, no extras) straight into columns. Anything else returns
None, and decode.py's general path walks the body point by point and names every problem.

Two decoders, tried in turn: the compiled `_columns` module (`_columns.c`, built by `pip
install` where a C compiler and Python's headers are found) parses the body into columns
without a Python object per point; what it does not take (escapes in strings, a repeated name,
anything unusual) and every body where the module is not built go to msgspec, whose structs
are then turned into columns with C-level list and numpy passes. Both give the same batch for
every body the first takes (tests/dialects/native/test_columns.py).

Measured on one 5,000-point body of bench.py's shape (1,000 series), in process
(benchmarks/decode.py): msgspec's path 0.83 us of CPU a point (most of it making and freeing
the structs and their strings), `_columns` 0.14; at 5,000 series 2.38 and 0.44 (msgspec's path
then also makes a SeriesKey by its dataclass __init__ per series)."""

from __future__ import annotations

import operator
import struct
from collections.abc import Callable, Sequence
from typing import Any, cast

import msgspec
import numpy as np
import numpy.typing as npt

from sensorbase.dialects.body import check_names
from sensorbase.model import OnePoint, PointBatch, SeriesKey
from sensorbase.times import PRECISION_US

INT64_LIMIT_US = 2**63 - 1


class _LeanPoint(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    """The common point (one field, a number, an integer epoch time): the fast path's shape.
    Untracked by the cyclic collector (it holds only strings and numbers, so no cycle): a
    5,000-point body otherwise sets off collections that walk every point decoded."""

    field: str
    value: float
    time: int
    bucket: str | None = None
    source: str | None = None


class _LeanBody(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    points: list[_LeanPoint]
    bucket: str | None = None
    source: str | None = None


_lean = msgspec.json.Decoder(_LeanBody | list[_LeanPoint])
_TIME = operator.attrgetter("time")
_VALUE = operator.attrgetter("value")

# _columns.decode's answer: the series' keys (a list, or for a body of many series a sequence
# that makes each when first asked for: `_columns.Keys`), and int32 series_index, int64 times
# in microseconds and float64 values (native-endian bytes)
Columns = tuple[Sequence[SeriesKey], bytearray, bytearray, bytearray]


def _compiled() -> Callable[[bytes, int, str | None, str | None, type, int], Columns | None] | None:
    try:
        from sensorbase.dialects.native import _columns
    except ImportError:  # installed without a C compiler: msgspec's path alone
        return None
    return _columns.decode


decode_columns = _compiled()


def decode_fast(
    body: bytes,
    bucket: str | None,
    source: str | None,
    precision: str | None,
    max_points: int,
) -> PointBatch | None:
    """The columns of the common body (one `field` and `value` per point, integer epoch times,
    no extras), built with C-level list and numpy passes. None for anything else: the full
    decoder then walks the body point by point and names every problem."""
    if precision is None:
        return None
    if decode_columns is not None:
        columns = decode_columns(
            body, max_points, bucket, source, SeriesKey, PRECISION_US[precision]
        )
        if columns is not None:  # the common shape: msgspec's path would find the same
            return _from_columns(columns)
    try:
        decoded = _lean.decode(body)
    except msgspec.DecodeError:  # ValidationError included: not the common shape
        return None
    top: list[str | None] = []  # the body object's own bucket and source
    if isinstance(decoded, _LeanBody):
        top = [decoded.bucket, decoded.source]
        bucket = decoded.bucket or bucket
        source = decoded.source or source
        points = decoded.points
    else:
        points = decoded
    n = len(points)
    if not n or n > max_points:
        return None  # (the general path checks the body as I-JSON itself)
    names = [p.field for p in points]
    # A body without the name "bucket" (or any escape that could spell it) gives no point one:
    # the usual batch names its bucket in the query string, and skips a pass over its points.
    plain = b"\\" not in body
    own_buckets: list[str | None] = (
        [None] * n if plain and b'"bucket"' not in body else [p.bucket for p in points]
    )
    own_sources = [p.source for p in points]
    # I-JSON: no name repeated in an object (dialects/body.py). The decoded value's JSON would
    # hold a colon per member (a point's field, value and time, its bucket and source where not
    # None; the body object's points, bucket and source likewise) and those inside its strings.
    no_bucket, no_source = own_buckets.count(None), own_sources.count(None)
    members = 5 * n - no_bucket - no_source + (3 - top.count(None) if top else 0)
    check_names(body, members, (names, own_buckets, own_sources, top))
    if n == 1:  # single-point writes are the most frequent request of all
        return _one_point(points[0], bucket, source, precision)
    if (no_bucket and not bucket) or (no_source and not source):
        return None
    buckets = _defaulted(own_buckets, no_bucket, bucket)
    sources = _defaulted(own_sources, no_source, source)
    # No empty name: a body holding no empty string (nor an escape) has none to look for.
    if not (plain and b'""' not in body) and (
        "" in names or "" in buckets or "" in sources or None in buckets or None in sources
    ):
        return None
    try:  # (an integer past int64 is the general path's to name)
        times = np.fromiter(map(_TIME, points), np.int64, n)
    except OverflowError:
        return None
    time_us = _scaled(times, precision)
    if time_us is None:
        return None
    keys, series_index = _series(buckets, sources, names, no_bucket == n)
    return PointBatch(
        keys=keys,
        series_index=series_index,
        time_us=time_us,
        value=np.fromiter(map(_VALUE, points), np.float64, n),
        extra=None,
    )


# A one-point body's time (int64 microseconds) and value (float64), as `_columns.decode`
# gives them: native-endian bytes, one of each.
_TIME_VALUE = struct.Struct("=qd")


def decode_one(
    body: bytes, bucket: str | None, source: str | None, precision: str | None, max_points: int
) -> OnePoint | None:
    """The body's point, when it holds exactly one that `decode_fast` takes from the compiled
    decoder: the same key, time and value as its one-point batch, without the batch's three
    numpy arrays (a one-point write's most frequent body, and numpy's per-call cost was most
    of its decode). None for anything else (`decode_fast` then decides)."""
    scale = PRECISION_US.get(precision) if precision is not None else None
    if decode_columns is None or scale is None:
        return None
    # (at most one point: the decoder stops at a second)
    columns = decode_columns(body, min(max_points, 1), bucket, source, SeriesKey, scale)
    if columns is None:
        return None
    keys, _, times, values = columns
    time_us, value = _TIME_VALUE.unpack(times + values)
    return keys, time_us, value


_ONE_ROW = np.zeros(1, np.int32)  # a one-point batch's series index, shared: read-only
_ONE_ROW.flags.writeable = False


def _from_columns(columns: Columns) -> PointBatch:
    """The batch of `_columns.decode`'s columns (its times already in microseconds)."""
    keys, index, times, values = columns
    return PointBatch(
        keys,
        _ONE_ROW if len(index) == 4 else np.frombuffer(index, np.int32),
        np.frombuffer(times, np.int64),
        np.frombuffer(values, np.float64),
        None,
    )


def _scaled(times: npt.NDArray[np.int64], precision: str) -> npt.NDArray[np.int64] | None:
    """Epoch times in `precision` as microseconds; None past what int64 microseconds hold."""
    if precision == "ns":
        return times // 1_000
    scale = PRECISION_US[precision]
    limit = INT64_LIMIT_US // scale
    # (min and max, not abs: the abs of int64's least value is itself, negative)
    if int(times.max()) > limit or int(times.min()) < -limit:
        return None
    return times * scale


def _series(
    buckets: list[str | None], sources: list[str | None], names: list[str], one_bucket: bool
) -> tuple[list[SeriesKey], npt.NDArray[np.int32]]:
    """The distinct series keys of the rows, in order of first sight, and each row's index
    into them. The usual body names one bucket and one field (a fleet's sources reporting the
    same measurement): its rows are keyed by their source string alone, which hashes once and
    compares in C; any other by plain (bucket, source, field) tuples. SeriesKey objects are
    made once per distinct series either way."""
    n = len(names)
    field = names[0]
    keyed: list[Any]
    position: dict[Any, int]
    if one_bucket and names.count(field) == n:
        keyed = sources
        position = {s: i for i, s in enumerate(dict.fromkeys(sources))}
        keys = [SeriesKey(cast(str, buckets[0]), cast(str, s), field) for s in position]
    else:
        keyed = list(zip(buckets, sources, names, strict=True))
        position = {k: i for i, k in enumerate(dict.fromkeys(keyed))}
        keys = [SeriesKey(b, s, f) for b, s, f in position]
    return keys, np.fromiter(map(position.__getitem__, keyed), np.int32, n)


def _defaulted(names: list[str | None], nones: int, default: str | None) -> list[str | None]:
    """Each point's own bucket or source (`nones` of them None), or the default where it has
    none or an empty one."""
    if nones == len(names):
        return [default] * nones
    if nones or "" in names:
        return [name or default for name in names]
    return names


def _one_point(
    point: _LeanPoint, bucket: str | None, source: str | None, precision: str
) -> PointBatch | None:
    """`decode_fast` for one point, in plain Python: numpy's per-call cost would be most of it."""
    b, s = point.bucket or bucket, point.source or source
    if not (point.field and b and s):
        return None
    scale = PRECISION_US[precision]
    time_us = point.time // 1_000 if scale == 0 else point.time * scale
    if not -INT64_LIMIT_US <= time_us <= INT64_LIMIT_US:
        return None
    return PointBatch.one(SeriesKey(b, s, point.field), time_us, point.value)
