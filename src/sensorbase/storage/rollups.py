"""A summary of each series' chunks per day (`point_rollups`), on both backends: count, min,
max, sum, first and last of the chunks that start in that UTC day, with the first chunk's
start and the last one's end. Aggregates over a range read a day's summary instead of its
chunks when the day lies wholly inside the range and the write log does not touch it
(chunk_reads.py), so that stats over a whole series read a summary per day, not per chunk:
100M points of a 1 Hz series are 1,158 days against 12,208 chunks.

A day holds a row only when more than one chunk starts in it: a day of one chunk is
summarised by that chunk's own row (its stats columns), which a day's row would repeat. Most
series of a fleet (a few thousand points a day) have one chunk a day: their rows were ~7% of
a settled store's bytes (benchmarks/README.md, "Day rows only for days of several chunks").
`days` reads a series' days as one: its rows, and the chunks outside every row's span.

Each backend keeps the rows by triggers on `point_chunks`, in the transaction that changes the
chunks, so that every path that writes chunks (fold, deletes, expiry, migrations, loads) keeps
them without knowing of them: sqlite/rollups.py, postgres/rollups.py."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import numpy as np

from sensorbase.model import TimeRange

DAY_US = 86_400_000_000

ROLLUP_COLUMNS = "day_us, start_us, end_us, count, min, max, sum, first, last"

# Beyond every stored time (ingest/checks.py keeps times from `min_time` to `max_future_s`
# ahead): the open ends of the spans between a series' day rows.
_BEFORE, _AFTER = "-9223372036854775807", "9223372036854775807"


def day_of(column: str) -> str:
    """SQL: the start of the UTC day of `column` (floored for times before 1970 too; `%`
    truncates towards zero on both backends)."""
    return f"({column} - ((({column} % {DAY_US}) + {DAY_US}) % {DAY_US}))"


# The rows of days of one chunk (made before schema 10 on either backend, which keeps none):
# no other chunk starts in the row's day after its first.
DELETE_SINGLE_DAYS = (
    "DELETE FROM point_rollups WHERE NOT EXISTS (SELECT 1 FROM point_chunks c WHERE "
    "c.series_id = point_rollups.series_id AND c.start_us > point_rollups.start_us "
    f"AND c.start_us < point_rollups.day_us + {DAY_US})"
)


Fetch = Callable[[str, list[Any]], list[tuple[Any, ...]]]  # a backend's: SQL with `?` marks
MAX_GAPS = 8  # spans between rows read an index range each; more, one range over them all
_LONE = (
    f"SELECT {day_of('start_us')}, start_us, end_us, count, min, max, sum, first, last, 0 "
    "FROM point_chunks WHERE series_id = ?"
)


def days(fetch: Fetch, series_id: int, time_range: TimeRange) -> list[tuple[Any, ...]]:
    """The series' days that reach into the range, as ROLLUP_COLUMNS in no order: the day's
    row where the day has one, else its one chunk's stats.

    A day's chunks lie within its row's span (start_us to end_us; a series' chunks are
    disjoint), so the chunks of days without a row start between the rows' spans: before the
    first, after the last (read in the rows' statement: an index range each), and between two
    rows whose days are not consecutive (a chunk between the rows of days D and D + 1 would
    start in one of them; a second statement). A series with a row every day (a dense one)
    reads two empty index ranges of chunks beside its rows; a series without rows (a fleet's:
    a chunk a day) its chunks' stats. A range's start bounds the chunks read from below by the
    last chunk that starts at or before it (those before it end before it starts)."""
    lo, hi = time_range.start_us, time_range.end_us
    day_range, chunk_range = "", ""
    day_params: list[Any] = []
    chunk_params: list[Any] = []
    if hi is not None:
        day_range += " AND day_us < ?"
        chunk_range += " AND start_us < ?"
        day_params.append(hi)
        chunk_params.append(hi)
    if lo is not None:
        day_range += " AND end_us >= ?"
        chunk_range += " AND end_us >= ?"
        day_params.append(lo)
        chunk_params.append(lo)
    rows_sql = f"FROM point_rollups WHERE series_id = ?{day_range}"
    # The rows' first start and last end: the first and the last row's (a later day's chunks
    # start after an earlier day's end), each a probe of the primary key (with a range's
    # start, among the series' rows before it too, as the rows' own arm reads them).
    first = f"(SELECT start_us {rows_sql} ORDER BY day_us LIMIT 1)"
    last = f"(SELECT end_us {rows_sql} ORDER BY day_us DESC LIMIT 1)"
    before = _BEFORE
    if lo is not None:
        before = (
            f"(SELECT coalesce(max(start_us), {_BEFORE}) - 1 FROM point_chunks "
            "WHERE series_id = ? AND start_us <= ?)"
        )
    found = fetch(
        f"SELECT {ROLLUP_COLUMNS}, 1 {rows_sql} UNION ALL "
        f"{_LONE} AND start_us > {before} AND start_us < coalesce({first}, {_AFTER})"
        f"{chunk_range} UNION ALL {_LONE} AND start_us > {last}{chunk_range}",
        [
            series_id, *day_params,
            series_id, *([series_id, lo] if lo is not None else []), series_id, *day_params,
            *chunk_params,
            series_id, series_id, *day_params, *chunk_params,
        ],
    )  # fmt: skip
    rows = sorted(row for row in found if row[9])  # (the days' rows: 1, chunks 0)
    found = [row[:9] for row in found]
    spans = [  # (between the rows of consecutive days no chunk starts)
        (a[2], b[1]) for a, b in itertools.pairwise(rows) if b[0] - a[0] > DAY_US
    ]
    if not spans:
        return found
    every = len(spans) > MAX_GAPS  # (then the chunks within the rows' spans left out below)
    if every:
        spans = [(spans[0][0], spans[-1][1])]
    lone = fetch(
        " UNION ALL ".join(
            [f"{_LONE} AND start_us > ? AND start_us < ?{chunk_range}"] * len(spans)
        ),
        [x for start, end in spans for x in (series_id, start, end, *chunk_params)],
    )
    if every:
        starts = np.array([row[1] for row in rows], np.int64)
        lone = [row for row in lone if _outside(row[1], rows, starts)]
    return found + [row[:9] for row in lone]


def _outside(start_us: int, rows: list[tuple[Any, ...]], starts: Any) -> bool:
    """Whether a chunk starting at `start_us` lies outside every row's span."""
    at = int(np.searchsorted(starts, start_us, side="right")) - 1
    return at < 0 or start_us > rows[at][2]
