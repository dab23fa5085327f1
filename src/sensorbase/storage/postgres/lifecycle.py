"""Deleting a range of points and expiring old ones on PostgreSQL (docs/lifecycle.md), in the
caller's write transaction, and the lease that lets one node of a cluster run retention.

Points are a row each here, so a delete is one DELETE; expiry takes a bounded number of
`SUMMARY_PERIOD_US` periods of one series at a time, and where the bucket keeps summaries
turns them into one summary row per (series, period) in the same statement that deletes
them. The space of deleted rows is PostgreSQL's to reuse (autovacuum), as for any delete."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg

from sensorbase.model import TimeRange
from sensorbase.storage.postgres.pool import CONNECT_OPTIONS
from sensorbase.storage.postgres.schema import RETENTION_LOCK

SUMMARY_PERIOD_US = 3_600_000_000  # one summary row per series and hour of expired points

_EXPIRE_SUMMARISED = """
WITH gone AS (
  DELETE FROM points WHERE series_id = %(series)s AND time_us < %(end)s
  RETURNING time_us, value
), kept AS (
INSERT INTO point_summaries AS s
  (series_id, start_us, end_us, count, min, max, sum, first, last)
SELECT %(series)s, min(time_us), max(time_us), count(*), min(value), max(value), sum(value),
  (array_agg(value ORDER BY time_us))[1], (array_agg(value ORDER BY time_us DESC))[1]
FROM gone GROUP BY div(time_us, %(period)s)
ON CONFLICT (series_id, start_us) DO UPDATE SET
  count = s.count + excluded.count, sum = s.sum + excluded.sum,
  min = least(s.min, excluded.min), max = greatest(s.max, excluded.max),
  last = CASE WHEN excluded.end_us >= s.end_us THEN excluded.last ELSE s.last END,
  end_us = greatest(s.end_us, excluded.end_us)
RETURNING 1
)
SELECT count(*), count(DISTINCT div(time_us, %(period)s)) FROM gone
"""
_EXPIRE = """
WITH gone AS (
  DELETE FROM points WHERE series_id = %(series)s AND time_us < %(end)s RETURNING time_us
)
SELECT count(*), count(DISTINCT div(time_us, %(period)s)) FROM gone
"""


def delete_range(conn: psycopg.Connection, series_ids: list[int], time_range: TimeRange) -> None:
    sql = "DELETE FROM points WHERE series_id = ANY(%s)"
    params: list[object] = [series_ids]
    if time_range.start_us is not None:
        sql += " AND time_us >= %s"
        params.append(time_range.start_us)
    if time_range.end_us is not None:
        sql += " AND time_us < %s"
        params.append(time_range.end_us)
    conn.execute(sql, params)


def expire(
    conn: psycopg.Connection,
    series_ids: list[int],
    cutoff_us: int,
    keep_summaries: bool,
    max_periods: int,
) -> tuple[int, int]:
    """Expire the points before `cutoff_us` of up to `max_periods` periods of the series: the
    periods and points expired (fewer periods than `max_periods`: the series are done)."""
    periods = points = 0
    cut_short = False  # a series' window ended before the cutoff: it may hold more
    for series_id in series_ids:
        left = max_periods - periods
        if left <= 0:
            break
        row = conn.execute(
            "SELECT min(time_us) FROM points WHERE series_id = %s AND time_us < %s",
            (series_id, cutoff_us),
        ).fetchone()
        if row is None or row[0] is None:
            continue
        first_period = row[0] // SUMMARY_PERIOD_US
        end = min(cutoff_us, (first_period + left) * SUMMARY_PERIOD_US)
        cut_short |= end < cutoff_us
        found = conn.execute(
            _EXPIRE_SUMMARISED if keep_summaries else _EXPIRE,
            {"series": series_id, "end": end, "period": SUMMARY_PERIOD_US},
        ).fetchone()
        if found:
            points += int(found[0])
            periods += int(found[1])
    return (max(periods, max_periods) if cut_short else periods), points


@contextmanager
def lease(url: str) -> Iterator[bool]:
    """True when this node may run a retention pass now: it holds the cluster's retention
    lock (on a connection of its own, for the pass) and no other node does."""
    with psycopg.connect(url, autocommit=True, **CONNECT_OPTIONS) as conn:
        row = conn.execute("SELECT pg_try_advisory_lock(%s)", (RETENTION_LOCK,)).fetchone()
        held = bool(row and row[0])
        try:
            yield held
        finally:
            if held:
                conn.execute("SELECT pg_advisory_unlock(%s)", (RETENTION_LOCK,))
