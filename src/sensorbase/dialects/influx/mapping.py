"""InfluxDB's data model on Sensorbase's: what a line becomes, and what the InfluxQL reads
(dialects/influx/read.py) rely on to find it again.

    weather,station=KX1,location=us-midwest temperature=82,humidity=71i 1465839830100400200

- `db` (1.x) or `bucket` (2.x) names a Sensorbase bucket, which must exist.
- The source key is the InfluxDB series key in canonical form: the measurement, then
  `,key=value` for each tag sorted by tag key, escaped as line protocol escapes them
  (`weather,location=us-midwest,station=KX1`); a point without tags: the measurement alone.
  Keys longer than the name limit (limits.MAX_NAME_CHARS) refuse their line.
- A source created by a write gets the meta `{"influx": {"measurement": "weather", "tags":
  {"location": "us-midwest", "station": "KX1"}}}` (tags sorted by key).
- Each field key is a Sensorbase field of that source: one series per (series key, field key).
- Values: floats as they are; integers and unsigned integers as float64 (exact up to 2**53);
  booleans 1.0 and 0.0. String fields are refused (lineproto.STRING_FIELD).
- Time: the line's timestamp in the request's precision, truncated to microseconds; a line
  without one: the server's time when the request arrived, the same for every line of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from sensorbase.dialects.influx.lineproto import Lines, SeriesPart
from sensorbase.errors import Problem
from sensorbase.model import PointBatch, SeriesKey

META_KEY = "influx"


def meta_of(part: SeriesPart) -> dict[str, Any]:
    """The meta of a source a line creates: its measurement and tags."""
    return {META_KEY: {"measurement": part.measurement, "tags": dict(part.tags)}}


@dataclass(slots=True)
class Mapped:
    """A parsed body as the write path takes it."""

    batch: PointBatch
    origin: np.ndarray[Any, np.dtype[np.int32]]  # the line number of each row
    sources: dict[str, SeriesPart]  # by source key: the meta of one this write creates
    problems: list[Problem]  # the lines the parser refused, by line number

    def source_meta(self, bucket: str, source: str) -> dict[str, Any] | None:
        """WriteOptions.source_meta: the meta of a source this write creates."""
        part = self.sources.get(source)
        return None if part is None else meta_of(part)


def to_batch(lines: Lines, bucket: str) -> Mapped:
    keys = [SeriesKey(bucket, source, field) for source, field in lines.series]
    batch = PointBatch(keys, lines.series_index, lines.time_us, lines.value)
    problems = [Problem(reason, None, number) for number, reason in lines.bad]
    if problems and len(batch):  # series only bad lines named are left out
        batch = batch.take(np.ones(len(batch), bool))
    elif not len(batch):
        batch = PointBatch.empty()
    return Mapped(batch, lines.line, lines.sources, problems)
