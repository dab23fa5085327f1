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
`days_query` reads a series' days as one: its rows, and the chunks outside every row's span.

Each backend keeps the rows by triggers on `point_chunks`, in the transaction that changes the
chunks, so that every path that writes chunks (fold, deletes, expiry, migrations, loads) keeps
them without knowing of them: sqlite/rollups.py, postgres/rollups.py."""

from __future__ import annotations

from typing import Any

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


def days_query(series_id: int, time_range: TimeRange) -> tuple[str, list[Any]]:
    """SQL (`?` marks) and its parameters: the series' days that reach into the range, as
    ROLLUP_COLUMNS in day order: the day's row where the day has one, else its one chunk's
    stats. A day's chunks lie within its row's span (start_us to end_us; the chunks of a
    series are disjoint), so the chunks of days without a row are those that start between
    the rows' spans: an index range each (`gaps`), none read where every day has a row.

    A range's start bounds the chunks read from below by the last chunk that starts at or
    before it (those before it end before it starts)."""
    lo, hi = time_range.start_us, time_range.end_us
    day_range, chunk_range, after = "", "", "g.after_us"
    day_params: list[Any] = []
    chunk_params: list[Any] = []
    if lo is not None:  # (one bound of the index range: the greater of the two)
        last = (
            f"(SELECT coalesce(max(start_us), {_BEFORE}) - 1 FROM point_chunks "
            "WHERE series_id = ? AND start_us <= ?)"
        )
        after = f"CASE WHEN g.after_us < {last} THEN {last} ELSE g.after_us END"
        day_range += " AND end_us >= ?"
        chunk_range += " AND c.end_us >= ?"
        day_params.append(lo)
        chunk_params += [series_id, lo, series_id, lo, lo]
    if hi is not None:
        day_range += " AND day_us < ?"
        chunk_range += " AND c.start_us < ?"
        day_params.append(hi)
        chunk_params.append(hi)
    sql = (
        f"WITH r AS (SELECT {ROLLUP_COLUMNS} FROM point_rollups WHERE series_id = ?{day_range}), "
        f"gaps AS (SELECT lag(end_us, 1, {_BEFORE}) OVER (ORDER BY day_us) AS after_us, "
        f"start_us AS before_us FROM r UNION ALL SELECT coalesce(max(end_us), {_BEFORE}), "
        f"{_AFTER} FROM r) "
        f"SELECT {ROLLUP_COLUMNS} FROM r UNION ALL "
        f"SELECT {day_of('c.start_us')}, c.start_us, c.end_us, c.count, c.min, c.max, c.sum, "
        "c.first, c.last FROM gaps g JOIN point_chunks c ON c.series_id = ? "
        f"AND c.start_us > {after} AND c.start_us < g.before_us{chunk_range} ORDER BY 1"
    )
    return sql, [series_id, *day_params, series_id, *chunk_params]
