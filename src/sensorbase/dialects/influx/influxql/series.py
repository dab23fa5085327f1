"""A bucket's sources seen as InfluxDB series: measurement, tags and fields.

A source written as line protocol holds `{"influx": {"measurement": m, "tags": {...}}}` in its
meta (its key is the canonical series key, `cpu,host=a`); any other source is a measurement named
by its key, without tags. The fields are the source's series (QueryService.select), so only
fields holding points appear, as InfluxDB shows them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sensorbase.auth.keys import Principal
from sensorbase.catalog import Catalog
from sensorbase.catalog.buckets import EVERY
from sensorbase.dialects.influx.influxql import ast
from sensorbase.model import SeriesRef, Source
from sensorbase.query.service import QueryService

MAX_REGEX_CHARS = 1_000  # a pattern longer than this is refused (Python's re backtracks)


class StatementError(Exception):
    """A statement InfluxDB would answer with an error inside its result (not a parse error)."""


@dataclass(slots=True)
class InfluxSeries:
    key: str  # the source key
    measurement: str
    tags: dict[str, str]
    fields: dict[str, SeriesRef] = field(default_factory=dict)

    @property
    def series_key(self) -> str:
        """The series key SHOW SERIES shows: the source key, which the write path builds as
        the canonical series key (measurement, then tags sorted by key, escaped)."""
        return self.key


def identity(source: Source) -> tuple[str, dict[str, str]]:
    """A source's measurement and tags (from its `influx` meta, else its key and no tags)."""
    meta: Any = (source.meta or {}).get("influx")
    if isinstance(meta, dict) and isinstance(meta.get("measurement"), str):
        tags = meta.get("tags")
        if isinstance(tags, dict):
            return meta["measurement"], {str(k): str(v) for k, v in tags.items()}
        return meta["measurement"], {}
    return source.key, {}


async def load(
    who: Principal, bucket: str, catalog: Catalog, query: QueryService
) -> list[InfluxSeries]:
    """The bucket's series with their fields, in series-key order (tenancy: the catalog's and
    the read path's own checks; another organisation's bucket is not found)."""
    sources, _ = await catalog.sources.page(who, bucket, EVERY, 0)
    refs = await query.select(who, bucket)
    found: dict[str, InfluxSeries] = {}
    for source in sources:
        measurement, tags = identity(source)
        found[source.key] = InfluxSeries(source.key, measurement, tags)
    for ref in refs:
        series = found.get(ref.source)
        if series is not None:
            series.fields[ref.field] = ref
    return sorted(found.values(), key=lambda s: (s.measurement, sorted(s.tags.items())))


def compile_regex(pattern: str) -> re.Pattern[str]:
    if len(pattern) > MAX_REGEX_CHARS:
        raise StatementError(f"regex longer than {MAX_REGEX_CHARS} characters")
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise StatementError(f"invalid regex /{pattern}/: {exc}") from None


def measurement_matcher(sources: Iterable[ast.Measurement]) -> Any:
    """A predicate on measurement names for a FROM list (empty: every measurement)."""
    names: set[str] = set()
    patterns: list[re.Pattern[str]] = []
    for source in sources:
        if source.regex is not None:
            patterns.append(compile_regex(source.regex))
        elif source.name is not None:
            names.add(source.name)
    if not names and not patterns:
        return lambda _name: True
    return lambda name: name in names or any(p.search(name) for p in patterns)


def databases_named(sources: Iterable[ast.Measurement]) -> set[str]:
    """The databases a FROM list names (`"db"."rp"."m"`): each must be the query's bucket."""
    return {s.database for s in sources if s.database}
