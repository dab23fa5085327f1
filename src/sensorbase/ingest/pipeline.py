"""The one write path: every dialect's points come through `Ingest.write`.

A write is checked (ingest/checks.py: finite values, times in the window, names, extras), its
series keys are resolved to storage ids (the bucket checked for the principal by auth/access.py,
sources and series created on first sight where allowed, a source's declared schema honoured),
and its points appended inside the next group commit. Problems are typed (`Problem.kind`) and
name their request item; each dialect words them in its vendor's shape.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from sensorbase.auth import access
from sensorbase.auth.keys import Principal
from sensorbase.errors import Archived, Forbidden, NotFound, Problem, invalid
from sensorbase.ingest import checks, refusals
from sensorbase.ingest.series_cache import FEW_KEYS, CacheKey, Hit, new_series_cache
from sensorbase.model import (
    CATALOG_VERSION,
    Bucket,
    PointBatch,
    ResolvedBatch,
    SeriesKey,
    Source,
    WriteReceipt,
)
from sensorbase.settings import Settings
from sensorbase.storage.base import WriteTx
from sensorbase.storage.write_queue import Committer
from sensorbase.times import now_us, parse_iso_us

_Ids = npt.NDArray[np.int64]


@dataclass(slots=True)
class WriteOptions:
    """How a dialect wants its batch treated."""

    partial: bool = False  # store the good points and report the bad ones
    create_sources: bool = True  # an unknown source is created (else: NotFound)
    series_meta: dict[SeriesKey, dict[str, Any]] = field(default_factory=dict)  # on creation
    # A new source's meta, given (bucket key, source key): asked only when this write creates
    # the source (InfluxDB's measurement and tags, which its series key only spells). A
    # function rather than a mapping: a write names its sources again and again, and creates
    # them once.
    source_meta: Callable[[str, str], dict[str, Any] | None] | None = None
    # (a string 'unit' in a series' meta also becomes the series' unit)
    # Sources this write makes, if missing, as copies of another source of their bucket:
    # (bucket key, new source key) -> the original's key. A copy takes the original's meta
    # (updated with `source_meta`), schema and series (fields, units, series meta), in the
    # write's own transaction: a refused write leaves no copy (Databoom's templates).
    source_copies: dict[tuple[str, str], str] = field(default_factory=dict)
    # A bucket's meta changed in the write's own transaction (Madevo keeps its column schema
    # there): (bucket key, the new meta given the bucket as stored, or None to leave it).
    # Raising refuses the write.
    bucket_meta: tuple[str, Callable[[Bucket], dict[str, Any] | None]] | None = None
    # The request item each row came from, when one item makes several rows: problems then
    # name the item, once.
    origin: npt.NDArray[np.int32] | None = None
    # Items the dialect already refused (and left out of the batch): an atomic write then
    # fails with these and the pipeline's own, all listed together.
    known_problems: list[Problem] = field(default_factory=list)
    # Rows that stand or fall together, by group number (the MQTT consumer folds a burst of
    # messages into one write, each message a group, each all-or-nothing): with `partial`, a
    # problem refuses every row of its group, and a problem naming no item refuses the write.
    groups: npt.NDArray[np.int32] | None = None


class WriteListener(Protocol):
    """Told of every write (alerts/engine.py): `in_commit` inside its transaction (what it
    adds commits with the points or not at all; it may run twice, see Committer._run_group),
    `observe` once the commit is durable, with the rows stored: `used` (each row's series key
    index), times and values, and `ids` (each series key's id, -1 if unresolved)."""

    def in_commit(
        self, tx: WriteTx, who: Principal, keys: Sequence[SeriesKey], points: int
    ) -> None: ...

    def observe(
        self,
        who: Principal,
        keys: Sequence[SeriesKey],
        ids: npt.NDArray[np.int64],
        used: npt.NDArray[np.int32],
        time_us: npt.NDArray[np.int64],
        value: npt.NDArray[np.float64],
    ) -> None: ...

    def observe_one(
        self, who: Principal, keys: Sequence[SeriesKey], series_id: int, time_us: int, value: float
    ) -> None:
        """`observe` of one row (`keys`: its one key)."""


_Stored = tuple[npt.NDArray[np.int64], Any, Any, Any]  # ids, used, time_us, value
_NONE: frozenset[int] = frozenset()


@dataclass(slots=True)
class WriteOutcome:
    receipt: WriteReceipt
    rejected: list[Problem]


_PLAIN = WriteOptions()  # a write's without options (shared: nothing changes a write's options)
# A write with this many series not in the cache resolves them in a group commit run off the
# event loop (`Committer.run`'s `heavy`): creating 5,000 series takes ~140 ms of SQLite, and
# every request of the process, reads too, waited for it.
HEAVY_KEYS = 64


class Ingest:
    def __init__(
        self,
        committer: Committer,
        settings: Settings,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.committer = committer
        self.settings = settings
        self.clock = clock  # when to look the catalog version up again (tests move it)
        self.window = checks.Window(
            parse_iso_us(settings.min_time), settings.min_time, settings.max_future_s
        )
        self._series = new_series_cache()
        self._catalog: str | None = None  # the catalog version the cache was filled under
        self._catalog_checked = -float("inf")
        self._lock = threading.Lock()
        self.points_written = 0
        self.listener: WriteListener | None = None  # set by services.py (alerts)

    def forget(self, version: str | None = None) -> None:
        """Drop cached series ids (after a delete; `version`: the catalog version it made)."""
        with self._lock:
            self._series.clear()
            if version is not None:
                self._catalog = version

    async def write(
        self, who: Principal, batch: PointBatch, options: WriteOptions | None = None
    ) -> WriteOutcome:
        options = options or _PLAIN
        access.require(who, "data:write")
        org_id = who.org_id
        with self._lock:
            cached = self._series.get(org_id, batch.keys)  # (series ids, bucket ids)
            now = self.clock()
            # One write per period looks the catalog version up, not every write in flight.
            check_catalog = now - self._catalog_checked >= self.settings.key_cache_s
            if check_catalog:
                self._catalog_checked = now
        n = batch.time_us.shape[0]
        problems = self.window.rows(batch, now_us())
        uncached = _missing(cached[0])
        if uncached:
            named = checks.keys(batch, uncached, options.series_meta)
            if named:
                problems = sorted(problems + named, key=lambda p: p.index or 0)
        bad: npt.NDArray[np.bool_] | None = None
        dead: set[int] | frozenset[int] = _NONE
        if problems:  # (the usual write has none: four calls less)
            bad = refusals.whole_groups(refusals.rows(problems, n), options.groups)
            problems = refusals.by_item(problems, options.origin)
            # Keys all of whose rows are refused are not resolved (a bad name is not created);
            # the others are, even when the write will be refused: their problems (unknown
            # source, undeclared field) are listed with the rows' own, every problem at once.
            dead = refusals.dead_keys(bad, batch)

        listener = self.listener

        def job(
            tx: WriteTx,
        ) -> tuple[WriteOutcome, dict[CacheKey, Hit], str | None, _Stored | None]:
            catalog = tx.get_setting(CATALOG_VERSION) if check_catalog else self._catalog
            hits = cached if catalog == self._catalog else None
            if options.bucket_meta is not None:
                _change_bucket_meta(tx, who, *options.bucket_meta)
            write = _Resolution(tx, who, batch, options, hits)
            missing = uncached if hits is not None else range(len(batch.keys))
            if missing:  # (the usual write: every key cached)
                write.resolve([k for k in missing if k not in dead])
            outcome = write.append(bad, problems)
            if listener is not None:
                listener.in_commit(tx, who, batch.keys, outcome.receipt.points)
            return outcome, write.learned, catalog, write.stored

        outcome, learned, catalog, stored = await self.committer.run(
            job, n, heavy=len(uncached) >= HEAVY_KEYS
        )
        if learned or catalog != self._catalog:  # (the usual write: nothing new to keep)
            with self._lock:
                if catalog != self._catalog:  # a node deleted something: forget what it knew
                    self._series.clear()
                    self._catalog = catalog
                self._series.update(learned)
        self.points_written += outcome.receipt.points
        if listener is not None and stored is not None:
            listener.observe(who, batch.keys, *stored)
        return outcome

    async def write_one(
        self, who: Principal, keys: Sequence[SeriesKey], time_us: int, value: float
    ) -> None:
        """`write` of one point (`keys`: its one key) as a plain write, without options: its
        series cached, its time and value good, and the catalog version not due for a look:
        appended as a point, not a batch, with nothing to resolve or refuse. Anything else
        is `write`'s (which finds and words its problems)."""
        access.require(who, "data:write")
        with self._lock:
            hit = self._series.get_one(who.org_id, keys)
            due = self.clock() - self._catalog_checked >= self.settings.key_cache_s
        limit = who.bucket_id
        if (
            hit is None
            or due
            or (limit is not None and hit[1] != limit)  # (`write` refuses it: Forbidden)
            or not self.window.holds(time_us, value, now_us())
        ):
            await self.write(who, PointBatch.one(keys[0], time_us, value))
            return
        series_id = hit[0]
        listener = self.listener

        def job(tx: WriteTx) -> None:
            tx.append((series_id, time_us, value))
            if listener is not None:
                listener.in_commit(tx, who, keys, 1)

        await self.committer.run(job, 1)
        self.points_written += 1
        if listener is not None:
            listener.observe_one(who, keys, series_id, time_us, value)


def _check_limit(who: Principal, batch: PointBatch, series_id: _Ids, bucket_id: _Ids) -> None:
    """Forbidden if a cached series lies outside the bucket the key is limited to."""
    limit = who.bucket_id
    if limit is not None:
        elsewhere = np.flatnonzero((series_id >= 0) & (bucket_id != limit))
        if len(elsewhere):
            bucket = batch.keys[int(elsewhere[0])].bucket
            raise Forbidden(f"this key is limited to another bucket than '{bucket}'")


class _Resolution:
    """One write's series keys resolved to ids inside its transaction, step by step: cached
    ids checked against the key's bucket limit, buckets and sources looked up (or created),
    schemas checked, series looked up (or created), then the good rows appended."""

    def __init__(
        self,
        tx: WriteTx,
        who: Principal,
        batch: PointBatch,
        options: WriteOptions,
        cached: tuple[_Ids, _Ids] | None,
    ) -> None:
        self.tx = tx
        self.who = who
        self.batch = batch
        self.options = options
        # The ids the cache had (-1: not cached), checked against the key's bucket limit; or
        # none known. (A copy: the job may run twice.)
        if cached is None:
            self.ids = np.full(len(batch.keys), -1, np.int64)
        else:
            self.ids = cached[0].copy()
            _check_limit(who, batch, *cached)
        self.refused: dict[int, Problem] = {}  # series key index → why its rows are refused
        self.learned: dict[CacheKey, Hit] = {}
        self.stored: _Stored | None = None  # what append() stored, for the WriteListener

    def resolve(self, missing: list[int]) -> None:
        by_source: dict[tuple[str, str], list[int]] = {}
        for k in missing:
            key = self.batch.keys[k]
            by_source.setdefault((key.bucket, key.source), []).append(k)
        if not by_source:
            return
        sources = self._sources(list(by_source))
        self._series(
            [
                (*sources[where], self._allowed(sources[where][1], ks))
                for where, ks in by_source.items()
            ]
        )

    def _sources(
        self, wanted: list[tuple[str, str]]
    ) -> dict[tuple[str, str], tuple[Bucket, Source]]:
        """Each (bucket, source) named; every unknown source named in one NotFound when
        sources may not be created."""
        buckets: dict[str, Bucket] = {}
        by_bucket: dict[str, list[str]] = {}
        for bucket_key, source_key in wanted:
            if bucket_key not in buckets:
                buckets[bucket_key] = writable(
                    access.bucket(self.tx, self.who, bucket_key, "data:write")
                )
            by_bucket.setdefault(bucket_key, []).append(source_key)
        found: dict[tuple[str, str], tuple[Bucket, Source]] = {}
        unknown: list[str] = []
        for bucket_key, source_keys in by_bucket.items():
            bucket = buckets[bucket_key]
            known = self.tx.get_sources(bucket.id, source_keys)  # all at once: see get_sources
            new: list[str] = []
            for source_key in source_keys:
                source = known.get(source_key)
                original = self.options.source_copies.get((bucket_key, source_key))
                if source is None and original is not None:
                    source = self._copy(bucket, source_key, original)
                elif source is None:
                    if self.options.create_sources:
                        new.append(source_key)
                    else:
                        unknown.append(source_key)
                    continue
                found[(bucket_key, source_key)] = (bucket, source)
            # get_or_create: another node may be creating the same sources right now.
            made = self.tx.get_or_create_sources(self.who.org_id, bucket.id, new) if new else {}
            new_meta = self.options.source_meta
            for source_key in new:
                source = made[source_key]
                meta = new_meta(bucket_key, source_key) if new_meta is not None else None
                if meta and not source.meta:  # (not when another node's creation won)
                    self.tx.update_source(source.id, meta=meta)
                    source = replace(source, meta=meta)
                found[(bucket_key, source_key)] = (bucket, source)
        if unknown:
            names = ", ".join(f"'{s}'" for s in unknown)
            plural = "s" if len(unknown) > 1 else ""
            raise NotFound(
                f"source{plural} {names} not found",
                what="source",
                name=unknown[0],
                names=tuple(unknown),
            )
        return found

    def _copy(self, bucket: Bucket, key: str, original_key: str) -> Source:
        original = self.tx.get_source(bucket.id, original_key)
        if original is None:
            raise NotFound(f"source '{original_key}' not found", what="source", name=original_key)
        # get_or_create: another node may be making the same copy right now.
        source = self.tx.get_or_create_source(self.who.org_id, bucket.id, key)
        if source.meta or source.schema is not None:  # (that node's copy won)
            return source
        new_meta = self.options.source_meta
        meta = {**original.meta, **((new_meta and new_meta(bucket.key, key)) or {})}
        self.tx.update_source(source.id, meta=meta, schema=original.schema)
        series = self.tx.list_source_series(original.id)
        self.tx.get_or_create_series(
            source.id,
            [s.field for s in series],
            {s.field: s.unit for s in series},
            {s.field: s.meta for s in series},
        )
        return replace(source, meta=meta, schema=original.schema)

    def _allowed(self, source: Source, ks: list[int]) -> list[int]:
        """The series keys `ks` of `source` that its schema (if declared) allows."""
        if source.schema is None:
            return ks
        allowed = []
        for k in ks:
            name = self.batch.keys[k].field
            spec = source.schema.get(name)
            if spec is None:
                declared = ", ".join(sorted(source.schema))
                reason = f"is not declared by the schema of '{source.key}' (declared: {declared})"
                self.refused[k] = Problem(reason, name, None, "undeclared_field")
            elif spec.type != "number":
                reason = f"is declared as {spec.type}, got a number"
                self.refused[k] = Problem(reason, name, None, "wrong_type")
            else:
                allowed.append(k)
        return allowed

    def _series(self, wanted: list[tuple[Bucket, Source, list[int]]]) -> None:
        """The series of each source's keys, looked up or created all at once."""
        meta = self.options.series_meta
        named: list[tuple[int, str, str | None, dict[str, Any]]] = []
        for _, source, ks in wanted:
            for k in ks:
                key = self.batch.keys[k]
                unit = (
                    source.schema[key.field].unit
                    if source.schema and key.field in source.schema
                    else _meta_unit(meta.get(key))
                )
                named.append((source.id, key.field, unit, meta.get(key, {})))
        resolved = self.tx.get_or_create_series_of(named)
        for bucket, source, ks in wanted:
            for k in ks:
                key = self.batch.keys[k]
                series_id = resolved.get((source.id, key.field))
                if series_id is not None:
                    self.ids[k] = series_id
                    self.learned[(self.who.org_id, key.bucket, key.source, key.field)] = (
                        series_id,
                        bucket.id,
                    )

    def append(self, bad: npt.NDArray[np.bool_] | None, problems: list[Problem]) -> WriteOutcome:
        batch, options = self.batch, self.options
        if self.refused:
            # A copy: the job may run twice (see Committer._commit).
            bad = np.zeros(len(batch), bool) if bad is None else bad.copy()
            named = set()
            for k, problem in self.refused.items():
                for i in np.flatnonzero(batch.series_index == k).tolist():
                    bad[i] = True
                    item = i if options.origin is None else int(options.origin[i])
                    named.add(Problem(problem.reason, problem.field, item, problem.kind))
            problems = refusals.merge(problems, list(named))
            bad = refusals.whole_groups(bad, options.groups)
        if options.known_problems:
            problems = refusals.merge(options.known_problems, problems)
        if problems and (not options.partial or refusals.unplaced(problems, options.groups)):
            raise invalid(problems)  # the job's rollback undoes sources or series it created
        ids = self.ids
        time_us, value, extra = batch.time_us, batch.value, batch.extra
        # (one point of one key: its id, without numpy's take)
        series_id = ids if len(time_us) == 1 == len(ids) else ids.take(batch.series_index)
        used = batch.series_index  # the series keys of the rows stored
        if bad is not None and bad.any():
            keep = ~bad
            series_id, time_us, value = series_id[keep], time_us[keep], value[keep]
            extra = [e for e, k in zip(extra, keep.tolist(), strict=True) if k] if extra else None
            used = used[keep]
        points = len(time_us)
        if points:
            self.tx.append(ResolvedBatch(series_id, time_us, value, extra))
            self.stored = (self.ids, used, time_us, value)
        series = 1 if points else 0
        if len(batch.keys) > 1:  # distinct ids among the keys used, not among all the rows
            stored = np.zeros(len(batch.keys), bool)
            stored[used] = True
            series = _distinct(self.ids[stored])
        return WriteOutcome(WriteReceipt(points, series), problems)


def writable(bucket: Bucket) -> Bucket:
    """The bucket, if it takes writes. The one check of a bucket's status: every write of every
    dialect and of MQTT resolves its buckets here (a cached series id skips it, and archiving
    makes every node forget those: catalog/buckets.py)."""
    if bucket.status == "archived":
        raise Archived(
            f"bucket '{bucket.key}' is archived: it takes no writes (it still answers reads); "
            "set its status to active to write to it again",
            what="bucket",
            name=bucket.key,
        )
    return bucket


def _change_bucket_meta(
    tx: WriteTx,
    who: Principal,
    bucket_key: str,
    change: Callable[[Bucket], dict[str, Any] | None],
) -> None:
    bucket = writable(access.bucket(tx, who, bucket_key, "data:write"))
    meta = change(bucket)
    if meta is not None:
        tx.update_bucket(bucket.id, meta=meta)


def _missing(series_id: _Ids) -> list[int]:
    """Where the cache had no id: in Python for a few keys (numpy's calls cost ~2 us of a
    one-point write), vectorised for a request's thousands."""
    if len(series_id) < FEW_KEYS:
        return [k for k, found in enumerate(series_id.tolist()) if found < 0]
    return np.flatnonzero(series_id < 0).tolist()


def _distinct(ids: _Ids) -> int:
    """How many distinct ids, by a sort: numpy 2's np.unique without return_inverse hashes
    instead, measured at 0.9-1.8 ms for a 5,000-series request's ids against 0.08 ms here."""
    ordered = np.sort(ids)
    return int(np.count_nonzero(ordered[1:] != ordered[:-1])) + min(len(ordered), 1)


def _meta_unit(meta: dict[str, Any] | None) -> str | None:
    """The unit a dialect gave in a new series' meta, if it is a string."""
    unit = (meta or {}).get("unit")
    return unit if isinstance(unit, str) else None
