"""A summary of each series' chunks per day (`point_rollups`), on both backends: count, min,
max, sum, first and last of the chunks that start in that UTC day, with the first chunk's
start and the last one's end. Aggregates over a range read a day's row instead of its chunks
when the day lies wholly inside the range and the write log does not touch it
(chunk_reads.py), so that stats over a whole series read a row per day, not per chunk: 100M
points of a 1 Hz series are 1,158 rows against 12,208 chunks.

Each backend keeps the rows by triggers on `point_chunks`, in the transaction that changes the
chunks, so that every path that writes chunks (fold, deletes, expiry, migrations, loads) keeps
them without knowing of them: sqlite/rollups.py, postgres/rollups.py."""

from __future__ import annotations

DAY_US = 86_400_000_000

ROLLUP_COLUMNS = "day_us, start_us, end_us, count, min, max, sum, first, last"


def day_of(column: str) -> str:
    """SQL: the start of the UTC day of `column` (floored for times before 1970 too; `%`
    truncates towards zero on both backends)."""
    return f"({column} - ((({column} % {DAY_US}) + {DAY_US}) % {DAY_US}))"
