"""The ingest pipeline: every dialect's writes come through `Ingest.write`.

It checks a canonical batch (finite values, timestamps inside the accepted window), resolves
each series key to a storage id (creating sources and series on first sight where allowed,
honouring a source's declared schema), and appends the points inside the next group commit.
"""

from __future__ import annotations

import math
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import msgspec
import numpy as np
import numpy.typing as npt

from sensorbase.errors import Forbidden, NotFound, Problem, invalid
from sensorbase.limits import MAX_CATALOG_META_BYTES, MAX_POINT_META_BYTES, name_problem
from sensorbase.model import PointBatch, ResolvedBatch, SeriesKey, WriteReceipt
from sensorbase.settings import Settings
from sensorbase.storage.base import WriteTx
from sensorbase.storage.write_queue import Committer
from sensorbase.times import now_us, parse_iso_us

_CacheKey = tuple[int, str, str, str]
_SMALL = 8  # rows up to which a batch is checked in plain Python, without numpy
CATALOG_VERSION = "catalog_version"
_encoder = msgspec.json.Encoder()


@dataclass(slots=True)
class WriteOptions:
    """How a dialect wants its batch treated."""

    partial: bool = False  # store the good points and report the bad ones
    create_sources: bool = True  # an unknown source is created (else: NotFound)
    allowed_bucket_id: int | None = None  # a key limited to one bucket
    series_meta: dict[SeriesKey, dict[str, Any]] = field(default_factory=dict)  # on creation
    # (a string 'unit' in a series' meta also becomes the series' unit)
    source_field: str = "source"  # how problems name the source (a dialect's own word)
    # How problems name the other parts of a point, in the dialect's words: "bucket", "field",
    # "meta" (e.g. dakkio: {"field": "values", "meta": "metadata"}).
    words: dict[str, str] = field(default_factory=dict)
    # Runs first inside the write's own transaction (e.g. a dialect's schema check and update);
    # raising refuses the write and undoes what it did.
    in_tx: Callable[[WriteTx], None] | None = None
    # The request item each row came from, when one item makes several rows: problems then
    # name the item, once.
    origin: npt.NDArray[np.int32] | None = None
    # Items the dialect already refused (and left out of the batch): an atomic write then
    # fails with these and the pipeline's own, all listed together.
    known_problems: list[Problem] = field(default_factory=list)


@dataclass(slots=True)
class WriteOutcome:
    receipt: WriteReceipt
    rejected: list[Problem]


class Ingest:
    def __init__(self, committer: Committer, settings: Settings) -> None:
        self.committer = committer
        self.settings = settings
        self.min_time_us = parse_iso_us(settings.min_time)
        self._series: dict[_CacheKey, tuple[int, int]] = {}  # → (series id, bucket id)
        self._catalog: str | None = None  # the catalog version the cache was filled under
        self._catalog_checked = 0.0
        self._lock = threading.Lock()
        self.points_written = 0

    def forget(self) -> None:
        """Drop cached series ids."""
        with self._lock:
            self._series.clear()

    async def delete(self, fn: Callable[[WriteTx], None]) -> None:
        """Run a delete of organisations, buckets or sources, and make every node sharing the
        store drop its cached series ids (checked every `key_cache_s`), so that no node
        acknowledges a write to a series that no longer exists."""
        version = secrets.token_hex(8)

        def job(tx: WriteTx) -> None:
            fn(tx)
            tx.set_setting(CATALOG_VERSION, version)

        await self.committer.run(job)
        with self._lock:
            self._series.clear()
            self._catalog = version

    def check(self, batch: PointBatch, now: int | None = None) -> list[Problem]:
        """Problems of the canonical batch itself: one per bad point."""
        problems = _meta_problems(batch.extra) if batch.extra is not None else []
        if problems:
            return sorted(problems + self._value_problems(batch, now), key=lambda p: p.index or 0)
        return self._value_problems(batch, now)

    def _value_problems(self, batch: PointBatch, now: int | None) -> list[Problem]:
        problems: list[Problem] = []
        max_time = (now or now_us()) + self.settings.max_future_s * 1_000_000
        if batch.time_us.shape[0] <= _SMALL:  # plain Python: numpy's per-call cost would dominate
            times = batch.time_us.tolist()
            if not times or (
                all(map(math.isfinite, batch.value.tolist()))
                and min(times) >= self.min_time_us
                and max(times) <= max_time
            ):
                return problems
        elif (
            np.isfinite(batch.value).all()
            and batch.time_us.min() >= self.min_time_us
            and batch.time_us.max() <= max_time
        ):
            return problems  # the usual case, in three vectorised passes
        bad_value = ~np.isfinite(batch.value)
        for i in np.flatnonzero(bad_value).tolist():
            problems.append(Problem("must be a finite number", "value", i))
        too_old = batch.time_us < self.min_time_us
        too_new = batch.time_us > max_time
        for i in np.flatnonzero(too_old).tolist():
            problems.append(Problem(f"is before {self.settings.min_time}", "time", i))
        for i in np.flatnonzero(too_new).tolist():
            problems.append(
                Problem(f"is more than {self.settings.max_future_s} s in the future", "time", i)
            )
        problems.sort(key=lambda p: p.index or 0)
        return problems

    async def write(
        self, org_id: int, batch: PointBatch, options: WriteOptions | None = None
    ) -> WriteOutcome:
        options = options or WriteOptions()
        with self._lock:
            cached = [self._series.get((org_id, k.bucket, k.source, k.field)) for k in batch.keys]
            now = time.monotonic()
            # One write per period looks the catalog version up, not every write in flight.
            check_catalog = now - self._catalog_checked >= self.settings.key_cache_s
            if check_catalog:
                self._catalog_checked = now
        row_problems = self.check(batch)
        if row_problems and options.words:
            row_problems = [
                Problem(p.reason, options.words.get(p.field or "", p.field), p.index)
                for p in row_problems
            ]
        uncached = [k for k, hit in enumerate(cached) if hit is None]
        if uncached:  # names are checked once, on their first write (as they may be created)
            named = _key_problems(batch, uncached, options)
            if named:
                row_problems = sorted(row_problems + named, key=lambda p: p.index or 0)
        bad: npt.NDArray[np.bool_] | None = None  # rows not to store; None: every row is good
        problems: list[Problem] = []
        if row_problems:
            bad = np.zeros(len(batch), bool)
            for p in row_problems:
                if p.index is not None:
                    bad[p.index] = True
            problems = _by_item(row_problems, options.origin)
            if not options.partial:
                raise invalid(_merge(options.known_problems, problems))

        def job(tx: WriteTx) -> tuple[WriteOutcome, dict[_CacheKey, tuple[int, int]], str | None]:
            catalog = tx.get_setting(CATALOG_VERSION) if check_catalog else self._catalog
            resolve: list[tuple[int, int] | None] = (
                cached if catalog == self._catalog else [None] * len(cached)
            )
            if options.in_tx is not None:
                options.in_tx(tx)
            outcome, learned = self._resolve_and_append(
                tx, org_id, batch, resolve, bad, problems, options
            )
            return outcome, learned, catalog

        outcome, learned, catalog = await self.committer.run(job, points=len(batch))
        with self._lock:
            if catalog != self._catalog:  # a node deleted something: forget what it knew
                self._series.clear()
                self._catalog = catalog
            self._series.update(learned)
        self.points_written += outcome.receipt.points
        return outcome

    def _resolve_and_append(
        self,
        tx: WriteTx,
        org_id: int,
        batch: PointBatch,
        cached: list[tuple[int, int] | None],
        bad: npt.NDArray[np.bool_] | None,
        problems: list[Problem],
        options: WriteOptions,
    ) -> tuple[WriteOutcome, dict[_CacheKey, tuple[int, int]]]:
        ids = np.empty(len(batch.keys), np.int64)
        key_problem: dict[int, Problem] = {}
        learned: dict[_CacheKey, tuple[int, int]] = {}
        missing = [k for k, hit in enumerate(cached) if hit is None]
        for k, hit in enumerate(cached):
            if hit is not None:
                ids[k] = hit[0]
                if options.allowed_bucket_id not in (None, hit[1]):
                    raise Forbidden(f"this key may not write to bucket '{batch.keys[k].bucket}'")
        # Resolve what the cache lacks, source by source.
        by_source: dict[tuple[str, str], list[int]] = {}
        for k in missing:
            key = batch.keys[k]
            by_source.setdefault((key.bucket, key.source), []).append(k)
        for (bucket_key, source_key), ks in by_source.items():
            bucket = tx.get_bucket(org_id, bucket_key)
            if bucket is None:
                raise NotFound(f"bucket '{bucket_key}' not found")
            if options.allowed_bucket_id not in (None, bucket.id):
                raise Forbidden(f"this key may not write to bucket '{bucket_key}'")
            source = tx.get_source(bucket.id, source_key)
            if source is None:
                if not options.create_sources:
                    raise NotFound(f"{options.source_field} '{source_key}' not found")
                # get_or_create: another node may be creating the same source right now.
                source = tx.get_or_create_source(org_id, bucket.id, source_key)
            fields = [batch.keys[k].field for k in ks]
            allowed = fields
            if source.schema is not None:
                allowed = []
                for k in ks:
                    name = batch.keys[k].field
                    spec = source.schema.get(name)
                    if spec is None:
                        key_problem[k] = Problem(
                            f"is not declared by the schema of {options.source_field} "
                            f"'{source_key}' (declared: {', '.join(sorted(source.schema))})",
                            name,
                        )
                    elif spec.type != "number":
                        key_problem[k] = Problem(f"is declared as {spec.type}, got a number", name)
                    else:
                        allowed.append(name)
            if not allowed:
                continue
            units = {
                f: (
                    source.schema[f].unit
                    if source.schema and f in source.schema
                    else _meta_unit(options.series_meta.get(SeriesKey(bucket_key, source_key, f)))
                )
                for f in allowed
            }
            metas = {
                f: options.series_meta[SeriesKey(bucket_key, source_key, f)]
                for f in allowed
                if SeriesKey(bucket_key, source_key, f) in options.series_meta
            }
            resolved = tx.get_or_create_series(source.id, allowed, units, metas)
            for k in ks:
                key = batch.keys[k]
                if key.field in resolved:
                    ids[k] = resolved[key.field]
                    learned[(org_id, key.bucket, key.source, key.field)] = (
                        resolved[key.field],
                        bucket.id,
                    )
        if key_problem:
            point_keys = batch.series_index
            named = set()
            # A copy: the job may run twice (see Committer._commit).
            bad = np.zeros(len(batch), bool) if bad is None else bad.copy()
            for k, problem in key_problem.items():
                for i in np.flatnonzero(point_keys == k).tolist():
                    bad[i] = True
                    item = i if options.origin is None else int(options.origin[i])
                    named.add(Problem(problem.reason, problem.field, item))
            problems = _merge(problems, list(named))
        if options.known_problems:
            problems = _merge(options.known_problems, problems)
        if problems and not options.partial:
            raise invalid(problems)  # the job's rollback undoes sources or series it created
        series_id = ids.take(batch.series_index)
        extra = batch.extra
        if bad is not None and bad.any():
            keep = ~bad
            series_id = series_id[keep]
            extra = [e for e, k in zip(extra, keep.tolist(), strict=True) if k] if extra else None
            resolved_batch = ResolvedBatch(series_id, batch.time_us[keep], batch.value[keep], extra)
        else:
            resolved_batch = ResolvedBatch(series_id, batch.time_us, batch.value, extra)
        points = len(resolved_batch.time_us)
        if points:
            tx.append(resolved_batch)
        series = len(np.unique(series_id)) if len(batch.keys) > 1 else min(points, 1)
        return WriteOutcome(WriteReceipt(points=points, series=series), problems), learned


def _meta_problems(extra: list[str | None]) -> list[Problem]:
    """Rows whose extras (meta, labels, position) pass MAX_POINT_META_BYTES of JSON."""
    longest = max(map(len, filter(None, extra)), default=0)
    if longest * 4 <= MAX_POINT_META_BYTES:  # a character is at most 4 bytes of UTF-8
        return []
    problems = []
    for i, text in enumerate(extra):
        if text and len(text) * 4 > MAX_POINT_META_BYTES:
            size = len(text.encode())
            if size > MAX_POINT_META_BYTES:
                reason = f"must be at most {MAX_POINT_META_BYTES} bytes as JSON (got {size})"
                problems.append(Problem(reason, "meta", i))
    return problems


def _key_problems(batch: PointBatch, ks: list[int], options: WriteOptions) -> list[Problem]:
    """Rows of the series keys `ks` whose bucket, source or field is no valid name, or whose
    meta (given for a new series) is too large."""
    problems: list[Problem] = []
    for k in ks:
        key = batch.keys[k]
        found = []
        for part, name in (("bucket", key.bucket), ("source", key.source), ("field", key.field)):
            reason = name_problem(name)
            if reason is not None:
                word = options.source_field if part == "source" else options.words.get(part, part)
                found.append(Problem(f"{_shown(name)} {reason}", word))
        meta = options.series_meta.get(key)
        if meta:
            size = len(_encoder.encode(meta))
            if size > MAX_CATALOG_META_BYTES:
                reason = f"must be at most {MAX_CATALOG_META_BYTES} bytes as JSON (got {size})"
                found.append(Problem(reason, options.words.get("meta", "meta")))
        if found:
            for i in np.flatnonzero(batch.series_index == k).tolist():
                problems.extend(Problem(p.reason, p.field, i) for p in found)
    return problems


def _shown(name: str) -> str:
    """A name as a message quotes it: short, and without what a terminal would act on."""
    text = name if len(name) <= 40 else name[:37] + "..."
    return repr(text)


def _meta_unit(meta: dict[str, Any] | None) -> str | None:
    """The unit a dialect gave in a new series' meta, if it is a string."""
    unit = (meta or {}).get("unit")
    return unit if isinstance(unit, str) else None


def _merge(first: list[Problem], second: list[Problem]) -> list[Problem]:
    """Both lists as one, by item, each problem once. (A dialect's known problems alone come
    in item order already: they are not sorted again, which for 100,000 of them costs more
    than reading the body.)"""
    if not second:
        return first
    return sorted({*first, *second}, key=lambda p: (p.index or 0, p.field or ""))


def _by_item(problems: list[Problem], origin: npt.NDArray[np.int32] | None) -> list[Problem]:
    """Row problems named by request item (rows of one item are reported once)."""
    if origin is None or not problems:
        return problems
    return _merge(
        [],
        [
            Problem(p.reason, p.field, None if p.index is None else int(origin[p.index]))
            for p in problems
        ],
    )
