"""The canonical model: plain data, no I/O.

Organisation ─┬─ ApiKey
              └─ Bucket ─ Source ─ Series = (source, field) ─ points (time_us, value, extra)

Time is an int of UTC microseconds everywhere inside; values are float64.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

# catalog:write creates sources and series explicitly, outside a write (Databoom's Create
# permission); a write creates those it may on first sight with data:write alone.
Scope = Literal["data:write", "data:read", "catalog:write", "admin"]
SCOPES: tuple[Scope, ...] = ("data:write", "data:read", "catalog:write", "admin")
# An archived bucket refuses every write (ingest/pipeline.py) and still answers reads.
BucketStatus = Literal["active", "archived"]
BUCKET_STATUSES: tuple[BucketStatus, ...] = ("active", "archived")
FieldType = Literal["number", "string", "boolean"]

Int64Array = npt.NDArray[np.int64]
Float64Array = npt.NDArray[np.float64]
IndexArray = npt.NDArray[np.int32]


@dataclass(frozen=True, slots=True)
class Organisation:
    id: int
    key: str
    name: str
    created_us: int


@dataclass(frozen=True, slots=True)
class Bucket:
    id: int
    org_id: int
    key: str
    name: str
    description: str
    meta: dict[str, Any]
    created_us: int
    status: BucketStatus = "active"
    retention_us: int | None = None  # points older than now - this expire (None: kept)
    keep_summaries: bool = False  # expired chunks leave their count/min/max/sum/first/last


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """A declared field of a source: the schema a write is checked against."""

    type: FieldType = "number"
    unit: str | None = None
    description: str | None = None


@dataclass(frozen=True, slots=True)
class Source:
    id: int
    org_id: int
    bucket_id: int
    key: str
    name: str
    meta: dict[str, Any]
    schema: dict[str, FieldSpec] | None
    created_us: int


@dataclass(frozen=True, slots=True)
class Series:
    id: int
    source_id: int
    field: str
    unit: str | None
    meta: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A stored key: the secret exists only as a hash."""

    id: int
    key_id: str
    org_id: int
    name: str
    scopes: tuple[Scope, ...]
    bucket_id: int | None
    server_admin: bool
    created_us: int
    revoked_us: int | None
    secret_hash: str = field(repr=False, default="")


Role = Literal["admin", "writer", "reader"]
ROLE_SCOPES: dict[str, tuple[Scope, ...]] = {
    "admin": ("admin",),
    "writer": ("data:write", "data:read"),
    "reader": ("data:read",),
}


@dataclass(frozen=True, slots=True)
class User:
    """A person who signs in with email and password (argon2 hash) and acts with their role."""

    id: int
    org_id: int
    email: str
    role: Role
    created_us: int
    password_hash: str = field(repr=False, default="")
    # Random, new whenever the user changes (role, password): their tokens carry it.
    token_generation: str = field(repr=False, default="")


@dataclass(frozen=True, slots=True)
class Group:
    """Sources gathered across buckets under one integer id (a Datacooee asset)."""

    id: int
    org_id: int
    name: str
    meta: dict[str, Any]
    created_us: int
    source_ids: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class SeriesKey:
    """A series named the way a client names it."""

    bucket: str
    source: str
    field: str


@dataclass(slots=True)
class PointBatch:
    """A canonical batch: parallel columns, one row per point.

    `series_index[i]` points into `keys`; `extra[i]` is a JSON object text holding what a point
    carries beside its value (latitude, longitude, metadata, labels), or None. `keys` is a list,
    or the native decoder's sequence that makes each key when first asked for
    (dialects/native/_columns.c `Keys`: a fleet's request names thousands the series cache
    finds without them).
    """

    keys: Sequence[SeriesKey]
    series_index: IndexArray
    time_us: Int64Array
    value: Float64Array
    extra: list[str | None] | None = None

    def __len__(self) -> int:
        return int(self.time_us.shape[0])

    def take(self, mask: npt.NDArray[np.bool_]) -> PointBatch:
        """The rows where `mask` is true, with only the series they use."""
        used, series_index = np.unique(self.series_index[mask], return_inverse=True)
        extra = None
        if self.extra is not None:
            extra = [e for e, keep in zip(self.extra, mask.tolist(), strict=True) if keep]
        return PointBatch(
            [self.keys[k] for k in used.tolist()],
            series_index.astype(np.int32),
            self.time_us[mask],
            self.value[mask],
            extra,
        )

    @classmethod
    def one(cls, key: SeriesKey, time_us: int, value: float) -> PointBatch:
        return cls(
            [key],
            np.zeros(1, np.int32),
            np.array([time_us], np.int64),
            np.array([value], np.float64),
            None,
        )

    @classmethod
    def empty(cls) -> PointBatch:
        return cls([], np.empty(0, np.int32), np.empty(0, np.int64), np.empty(0, np.float64), None)


# Not frozen, as WriteReceipt below: made at every write, and a frozen dataclass's __init__ sets
# each field through object.__setattr__ (~5x the cost of a plain one's; nothing hashes these).
@dataclass(slots=True)
class ResolvedBatch:
    """A batch whose series are resolved to storage ids: what a Writer appends."""

    series_id: Int64Array
    time_us: Int64Array
    value: Float64Array
    extra: list[str | None] | None


# One point as a one-point write carries it from its decoder to the pipeline, without a batch:
# (its key, a sequence of one SeriesKey, time in us, value).
OnePoint = tuple[Sequence[SeriesKey], int, float]

# One point resolved to its series id, (series id, time in us, value): what a one-point write
# appends, without the three one-element arrays of a ResolvedBatch (numpy's calls were most
# of a one-point write's cost); a store's transaction holds both kinds in append order and
# makes each run of points one batch when it needs columns (`resolved_batches`).
ResolvedPoint = tuple[int, int, float]
_RESOLVED_POINT = np.dtype([("series_id", np.int64), ("time_us", np.int64), ("value", np.float64)])


def resolved_batches(appended: list[ResolvedBatch | ResolvedPoint]) -> list[ResolvedBatch]:
    """What a transaction appended, in order, as batches: each run of points one batch."""
    batches: list[ResolvedBatch] = []
    points: list[ResolvedPoint] = []
    for item in appended:
        if type(item) is tuple:
            points.append(item)
            continue
        if points:
            batches.append(_batch_of(points))
            points = []
        batches.append(item)  # type: ignore[arg-type]
    if points:
        batches.append(_batch_of(points))
    return batches


def _batch_of(points: list[ResolvedPoint]) -> ResolvedBatch:
    rows = np.array(points, _RESOLVED_POINT)  # (one call for the run, not three arrays a point)
    return ResolvedBatch(rows["series_id"], rows["time_us"], rows["value"], None)


@dataclass(slots=True)
class WriteReceipt:
    points: int
    series: int


# --- the query model ---------------------------------------------------------------------

Aggregate = Literal["min", "max", "avg", "sum", "count", "first", "last"]
AGGREGATES: tuple[Aggregate, ...] = ("min", "max", "avg", "sum", "count", "first", "last")
Order = Literal["asc", "desc"]


@dataclass(frozen=True, slots=True)
class SeriesRef:
    """A resolved series with the names a reply shows."""

    id: int
    bucket: str
    source: str
    field: str
    unit: str | None


@dataclass(frozen=True, slots=True)
class TimeRange:
    start_us: int | None  # inclusive
    end_us: int | None  # exclusive

    def contains(self, time_us: int) -> bool:
        return (self.start_us is None or time_us >= self.start_us) and (
            self.end_us is None or time_us < self.end_us
        )

    def mask(self, time_us: Int64Array) -> npt.NDArray[np.bool_]:
        """Which of the times lie in the range."""
        inside = np.ones(len(time_us), bool)
        if self.start_us is not None:
            inside &= time_us >= self.start_us
        if self.end_us is not None:
            inside &= time_us < self.end_us
        return inside


@dataclass(slots=True)
class PointColumns:
    """Points of one series, as columns: in time order as a read returns them (or newest
    first), in write order while a store merges them. `extra` is None when no point has one;
    a store's intermediate columns may hold a list of Nones (`trimmed` drops it)."""

    time_us: Int64Array
    value: Float64Array
    extra: list[str | None] | None = None

    def __len__(self) -> int:
        return int(self.time_us.shape[0])

    @classmethod
    def empty(cls) -> PointColumns:
        return cls(np.empty(0, np.int64), np.empty(0, np.float64), None)

    @classmethod
    def concat(cls, parts: list[PointColumns]) -> PointColumns:
        parts = [p for p in parts if len(p)]
        if not parts:
            return cls.empty()
        if len(parts) == 1:
            return parts[0]
        extra = None
        if any(p.extra is not None for p in parts):
            extra = [e for p in parts for e in (p.extra or [None] * len(p))]
        return cls(
            np.concatenate([p.time_us for p in parts]),
            np.concatenate([p.value for p in parts]),
            extra,
        )

    def take(self, index: npt.NDArray[np.intp] | slice) -> PointColumns:
        extra = None
        if self.extra is not None:
            extra = (
                self.extra[index]
                if isinstance(index, slice)
                else [self.extra[i] for i in index.tolist()]
            )
        return PointColumns(self.time_us[index], self.value[index], extra)

    def latest_wins(self) -> PointColumns:
        """These points in time order, a later one at the same time replacing an earlier."""
        n = len(self)
        if n < 2:
            return self
        order = np.argsort(self.time_us, kind="stable")
        times = self.time_us[order]
        keep = np.ones(n, bool)
        keep[:-1] = times[1:] != times[:-1]  # the last of each run of equal times
        if keep.all():
            return self.take(order)
        return self.take(order[keep])

    def within(self, time_range: TimeRange) -> PointColumns:
        """Time-ordered points cut to the range (by binary search, not by a scan)."""
        t = self.time_us
        lo = 0 if time_range.start_us is None else int(np.searchsorted(t, time_range.start_us))
        hi = len(t) if time_range.end_us is None else int(np.searchsorted(t, time_range.end_us))
        return self if (lo, hi) == (0, len(t)) else self.take(slice(lo, hi))

    def trimmed(self) -> PointColumns:
        """The same points, `extra` None unless some point has one (as readers answer)."""
        if self.extra is None or any(e is not None for e in self.extra):
            return self
        return PointColumns(self.time_us, self.value, None)


@dataclass(slots=True)
class AggregateRow:
    """Aggregates of one series over one interval (`start_us` None means the whole range)."""

    start_us: int | None
    values: dict[str, float | int | None]


@dataclass(slots=True)
class SeriesResult:
    series: SeriesRef
    points: PointColumns | None = None
    aggregates: list[AggregateRow] | None = None
    # Aggregates over time before this were answered from summaries (docs/lifecycle.md)
    summaries_until_us: int | None = None


@dataclass(frozen=True, slots=True)
class Summary:
    """What is left of expired points of one series (a chunk of them, or on PostgreSQL a
    period): their count, min, max, sum, and the first and last with their times."""

    start_us: int  # the first point's time
    end_us: int  # the last point's time
    count: int
    min: float
    max: float
    sum: float
    first: float
    last: float


@dataclass(frozen=True, slots=True)
class Lifecycle:
    """A bucket's retention as the read path and the retention job need it."""

    retention_us: int
    keep_summaries: bool

    def cutoff_us(self, now_us: int) -> int:
        """Points before this have expired."""
        return now_us - self.retention_us


# A setting that changes whenever catalog rows are deleted: nodes caching ids (the ingest
# pipeline's series ids) look it up every `key_cache_s` and forget what they knew.
CATALOG_VERSION = "catalog_version"
