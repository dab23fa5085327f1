"""The day summaries (storage/rollups.py) on SQLite: triggers on `point_chunks` keep
`point_rollups`. A chunk added is added to its day's row; a chunk removed makes its day's row
again from the day's chunks left (a min or max cannot be taken back). Deleting a whole series
removes its rows first (`forget`), so that its chunks go without a row being made again for
each.

A day's row costs the insert and the delete of a chunk one more B-tree write, and the delete
a scan of the day's other chunks (at 1 Hz, ~10 chunks of 8,192 points; the denser a series,
the more chunks a day holds)."""

from __future__ import annotations

import sqlite3

from sensorbase.storage.rollups import DAY_US, day_of


def _remade(series: str, day: str) -> str:
    """SQL: the row of the series and day made from its chunks (no row when none is left)."""
    where = f"series_id = {series} AND start_us >= {day} AND start_us < {day} + {DAY_US}"
    return (
        "INSERT INTO point_rollups (series_id, day_us, start_us, end_us, count, min, max, sum, "
        f"first, last) SELECT {series}, {day}, min(start_us), max(end_us), sum(count), min(min), "
        f"max(max), sum(sum), (SELECT first FROM point_chunks WHERE {where} ORDER BY start_us "
        f"LIMIT 1), (SELECT last FROM point_chunks WHERE {where} ORDER BY start_us DESC LIMIT 1) "
        f"FROM point_chunks WHERE {where} HAVING count(*) > 0"
    )


SCHEMA = f"""
CREATE TABLE IF NOT EXISTS point_rollups (
  series_id INTEGER NOT NULL,
  day_us INTEGER NOT NULL,
  start_us INTEGER NOT NULL,
  end_us INTEGER NOT NULL,
  count INTEGER NOT NULL,
  min REAL NOT NULL, max REAL NOT NULL, sum REAL NOT NULL,
  first REAL NOT NULL, last REAL NOT NULL,
  PRIMARY KEY (series_id, day_us)
) WITHOUT ROWID;
CREATE TRIGGER IF NOT EXISTS point_rollups_add AFTER INSERT ON point_chunks BEGIN
  INSERT INTO point_rollups (series_id, day_us, start_us, end_us, count, min, max, sum, first,
    last)
  VALUES (new.series_id, {day_of("new.start_us")}, new.start_us, new.end_us, new.count,
    new.min, new.max, new.sum, new.first, new.last)
  ON CONFLICT (series_id, day_us) DO UPDATE SET
    count = count + excluded.count, sum = sum + excluded.sum,
    min = min(min, excluded.min), max = max(max, excluded.max),
    first = CASE WHEN excluded.start_us < start_us THEN excluded.first ELSE first END,
    start_us = min(start_us, excluded.start_us),
    last = CASE WHEN excluded.end_us > end_us THEN excluded.last ELSE last END,
    end_us = max(end_us, excluded.end_us);
END;
CREATE TRIGGER IF NOT EXISTS point_rollups_remove AFTER DELETE ON point_chunks
WHEN EXISTS (SELECT 1 FROM point_rollups WHERE series_id = old.series_id
  AND day_us = {day_of("old.start_us")})
BEGIN
  DELETE FROM point_rollups
  WHERE series_id = old.series_id AND day_us = {day_of("old.start_us")};
  {_remade("old.series_id", day_of("old.start_us"))};
END;
"""


def backfill(conn: sqlite3.Connection) -> None:
    """Make every row from the chunks (a migrated file, whose chunks came before the table)."""
    conn.execute("DELETE FROM point_rollups")
    conn.execute(
        "INSERT INTO point_rollups (series_id, day_us, start_us, end_us, count, min, max, sum, "
        f"first, last) SELECT series_id, {day_of('start_us')} AS day, min(start_us), "
        "max(end_us), sum(count), min(min), max(max), sum(sum), 0, 0 FROM point_chunks "
        "GROUP BY series_id, day"
    )
    day = "point_rollups.day_us"
    where = (
        f"c.series_id = point_rollups.series_id AND c.start_us >= {day} "
        f"AND c.start_us < {day} + {DAY_US}"
    )
    conn.execute(
        f"UPDATE point_rollups SET "
        f"first = (SELECT first FROM point_chunks c WHERE {where} ORDER BY c.start_us LIMIT 1), "
        f"last = (SELECT last FROM point_chunks c WHERE {where} ORDER BY c.start_us DESC LIMIT 1)"
    )


def forget(conn: sqlite3.Connection, series_sql: str, param: int) -> None:
    """Remove the rows of the series `series_sql` selects, whose chunks are all being deleted."""
    conn.execute(f"DELETE FROM point_rollups WHERE series_id IN ({series_sql})", (param,))
