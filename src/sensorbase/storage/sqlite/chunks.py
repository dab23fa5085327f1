"""Chunks (the layout: sqlite/__init__.py): a series' points, at most `CHUNK_POINTS` of them,
compressed with pcodec, stored beside their count, min, max, sum, first and last."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from pcodec import ChunkConfig, standalone

from sensorbase.model import PointColumns, TimeRange
from sensorbase.storage.sqlite.log import EXTRAS_DECODER, EXTRAS_ENCODER

CHUNK_POINTS = 2048  # most points in one chunk
_PCODEC = ChunkConfig(compression_level=4)  # ~2x faster than the default 8, ~as small here


@dataclass(slots=True)
class Chunk:
    start_us: int
    end_us: int
    count: int
    stats: tuple[float, float, float, float, float]  # min, max, sum, first, last
    blobs: tuple[bytes, bytes, bytes | None]

    def points(self) -> PointColumns:
        time_blob, value_blob, extra_blob = self.blobs
        return PointColumns(
            standalone.simple_decompress(time_blob),
            standalone.simple_decompress(value_blob),
            None if extra_blob is None else EXTRAS_DECODER.decode(extra_blob),
        )


CHUNK_COLUMNS = "start_us, end_us, count, min, max, sum, first, last, time_us, value, extra"


def chunk_of_row(row: tuple[Any, ...]) -> Chunk:
    return Chunk(row[0], row[1], row[2], tuple(row[3:8]), (row[8], row[9], row[10]))


def chunks(
    conn: sqlite3.Connection, series_id: int, time_range: TimeRange, order: str = "asc"
) -> Iterator[Chunk]:
    """The series' chunks holding points of the range, in time order (or reversed)."""
    sql = f"SELECT {CHUNK_COLUMNS} FROM point_chunks WHERE series_id = ?"
    params: list[Any] = [series_id]
    if time_range.start_us is not None:
        sql += " AND end_us >= ?"
        params.append(time_range.start_us)
    if time_range.end_us is not None:
        sql += " AND start_us < ?"
        params.append(time_range.end_us)
    sql += " ORDER BY start_us DESC" if order == "desc" else " ORDER BY start_us"
    for row in conn.execute(sql, params):
        yield chunk_of_row(row)


def encode(series_id: int, points: PointColumns) -> tuple[Any, ...]:
    t, v = points.time_us, points.value
    extra = points.extra
    blob = None
    if extra is not None and any(e is not None for e in extra):
        blob = EXTRAS_ENCODER.encode(extra)
    return (
        series_id,
        int(t[0]),
        int(t[-1]),
        len(t),
        float(v.min()),
        float(v.max()),
        float(v.sum()),
        float(v[0]),
        float(v[-1]),
        standalone.simple_compress(np.ascontiguousarray(t, np.int64), _PCODEC),
        standalone.simple_compress(np.ascontiguousarray(v, np.float64), _PCODEC),
        blob,
    )


INSERT_CHUNK = (
    "INSERT INTO point_chunks (series_id, start_us, end_us, count, min, max, sum, first, "
    "last, time_us, value, extra) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


def store_series(conn: sqlite3.Connection, series_id: int, points: PointColumns) -> None:
    """Store time-ordered points of one series, where it has no chunk yet, as chunks."""
    conn.executemany(
        INSERT_CHUNK,
        [
            encode(series_id, points.take(slice(at, at + CHUNK_POINTS)))
            for at in range(0, len(points), CHUNK_POINTS)
        ],
    )
