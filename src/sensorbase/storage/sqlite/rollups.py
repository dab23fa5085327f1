"""The day summaries (storage/rollups.py) on SQLite: triggers on `point_chunks` keep
`point_rollups`, a row for each day of more than one chunk. A chunk added to a day that has a
row is added to it; to a day of one chunk, the day's row is made from its chunks. A chunk
removed from a day that has a row makes the row again from the day's chunks left, when more
than one is left (a min or max cannot be taken back). Deleting a whole series removes its rows
first (`forget`), so that its chunks go without a row being made again for each.

A chunk's insert costs a look-up in the index of the chunks (is it alone in its day?), and in
a day of several chunks one more B-tree write; the delete of a chunk of such a day a scan of
the day's other chunks (at 1 Hz, ~10 chunks of 8,192 points; the denser a series, the more
chunks a day holds)."""

from __future__ import annotations

import sqlite3

from sensorbase.storage.rollups import DAY_US, day_of

_NEW_DAY = day_of("new.start_us")
_OLD_DAY = day_of("old.start_us")
# (a condition on no row of the loop: SQLite tests it once, before reading the day's chunks)
_HAS_ROW = (
    f"EXISTS (SELECT 1 FROM point_rollups WHERE series_id = new.series_id AND day_us = {_NEW_DAY})"
)


def _in_day(series: str, day: str) -> str:
    return f"series_id = {series} AND start_us >= {day} AND start_us < {day} + {DAY_US}"


def _remade(series: str, day: str, unless: str = "") -> str:
    """SQL: the row of the series and day made from its chunks (no row unless more than one
    is left), unless the SQL condition `unless` holds."""
    where = _in_day(series, day)
    return (
        "INSERT INTO point_rollups (series_id, day_us, start_us, end_us, count, min, max, sum, "
        f"first, last) SELECT {series}, {day}, min(start_us), max(end_us), sum(count), min(min), "
        f"max(max), sum(sum), (SELECT first FROM point_chunks WHERE {where} ORDER BY start_us "
        f"LIMIT 1), (SELECT last FROM point_chunks WHERE {where} ORDER BY start_us DESC LIMIT 1) "
        f"FROM point_chunks WHERE {where}{unless and f' AND NOT {unless}'} HAVING count(*) > 1"
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
CREATE TRIGGER IF NOT EXISTS point_rollups_add AFTER INSERT ON point_chunks
WHEN EXISTS (SELECT 1 FROM point_chunks WHERE {_in_day("new.series_id", _NEW_DAY)}
  AND start_us <> new.start_us)
BEGIN
  UPDATE point_rollups SET
    count = count + new.count, sum = sum + new.sum,
    min = min(min, new.min), max = max(max, new.max),
    first = CASE WHEN new.start_us < start_us THEN new.first ELSE first END,
    start_us = min(start_us, new.start_us),
    last = CASE WHEN new.end_us > end_us THEN new.last ELSE last END,
    end_us = max(end_us, new.end_us)
  WHERE series_id = new.series_id AND day_us = {_NEW_DAY};
  {_remade("new.series_id", _NEW_DAY, _HAS_ROW)};
END;
CREATE TRIGGER IF NOT EXISTS point_rollups_remove AFTER DELETE ON point_chunks
WHEN EXISTS (SELECT 1 FROM point_rollups WHERE series_id = old.series_id
  AND day_us = {_OLD_DAY})
BEGIN
  DELETE FROM point_rollups WHERE series_id = old.series_id AND day_us = {_OLD_DAY};
  {_remade("old.series_id", _OLD_DAY)};
END;
"""


def backfill(conn: sqlite3.Connection) -> None:
    """Make every row from the chunks (a migrated file, whose chunks came before the table)."""
    conn.execute("DELETE FROM point_rollups")
    conn.execute(
        "INSERT INTO point_rollups (series_id, day_us, start_us, end_us, count, min, max, sum, "
        f"first, last) SELECT series_id, {day_of('start_us')} AS day, min(start_us), "
        "max(end_us), sum(count), min(min), max(max), sum(sum), 0, 0 FROM point_chunks "
        "GROUP BY series_id, day HAVING count(*) > 1"
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
