"""The day summaries (storage/rollups.py) on PostgreSQL: PL/pgSQL triggers on `point_chunks`
keep `point_rollups`, a row for each day of more than one chunk, in the transaction that
changes the chunks. A chunk inserted is added to its day's row, or, in a day that held one
chunk, the day's row is made from that chunk and it (a row trigger: the folds insert chunk by
chunk; BEFORE the insert, so that of several chunks one statement inserts each sees those
inserted before it and not those after); a statement that deletes chunks makes the rows of
the days it touched again from the chunks left, once per day, where more than one is left (a
statement trigger, over the deleted rows' transition table: deleting a whole series' chunks
leaves no chunk to make a row from, so its rows go without the SQLite store's `forget`).

Every change to the chunks holds the fold lock (postgres/fold.py) to its commit, so the rows
of a day never change in two transactions at once; reads see chunks and rows in one
repeatable-read snapshot (reader.py).

Measured (benchmarks/README.md): stats over 10M points of a 1 Hz series read 116 rows instead
of 1,221 chunks, 0.8 ms of CPU (client and server) against 6.7; the triggers cost a fold ~20 us
of PostgreSQL's CPU a series (a fleet's tail chunk deleted and inserted again), ~5-7% of a
fleet's fold.
"""

from __future__ import annotations

import psycopg

from sensorbase.storage.rollups import DAY_US, DELETE_SINGLE_DAYS, day_of

TABLE = """
CREATE TABLE point_rollups (
  series_id BIGINT NOT NULL,
  day_us BIGINT NOT NULL,
  start_us BIGINT NOT NULL,
  end_us BIGINT NOT NULL,
  count BIGINT NOT NULL,
  min DOUBLE PRECISION NOT NULL, max DOUBLE PRECISION NOT NULL, sum DOUBLE PRECISION NOT NULL,
  first DOUBLE PRECISION NOT NULL, last DOUBLE PRECISION NOT NULL,
  PRIMARY KEY (series_id, day_us)
)
"""


def _made(chunks: str, day: str) -> str:
    """SQL: the rows of the days of more than one chunk among the chunks `chunks` (a FROM
    clause naming them `c`), each day `day` (an expression of them), made from those chunks."""
    return (
        "INSERT INTO point_rollups (series_id, day_us, start_us, end_us, count, min, max, sum, "
        f"first, last) SELECT c.series_id, {day}, min(c.start_us), max(c.end_us), sum(c.count), "
        "min(c.min), max(c.max), sum(c.sum), (array_agg(c.first ORDER BY c.start_us))[1], "
        f"(array_agg(c.last ORDER BY c.start_us DESC))[1] FROM {chunks} GROUP BY 1, 2 "
        "HAVING count(*) > 1"
    )


# The days of the chunks a statement deleted (its transition table `gone`).
_GONE_DAYS = f"(SELECT DISTINCT series_id, {day_of('start_us')} AS day_us FROM gone) d"
_REMADE = _made(
    f"{_GONE_DAYS} JOIN point_chunks c ON c.series_id = d.series_id "
    f"AND c.start_us >= d.day_us AND c.start_us < d.day_us + {DAY_US}",
    "d.day_us",
)

TRIGGERS = [
    f"""
CREATE FUNCTION point_rollups_add() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  day BIGINT := {day_of("NEW.start_us")};
BEGIN
  UPDATE point_rollups r SET
    count = r.count + NEW.count, sum = r.sum + NEW.sum,
    min = least(r.min, NEW.min), max = greatest(r.max, NEW.max),
    first = CASE WHEN NEW.start_us < r.start_us THEN NEW.first ELSE r.first END,
    start_us = least(r.start_us, NEW.start_us),
    last = CASE WHEN NEW.end_us > r.end_us THEN NEW.last ELSE r.last END,
    end_us = greatest(r.end_us, NEW.end_us)
  WHERE r.series_id = NEW.series_id AND r.day_us = day;
  IF NOT FOUND THEN  -- the day's other chunk (if it has one) and this one
    INSERT INTO point_rollups (series_id, day_us, start_us, end_us, count, min, max, sum,
      first, last)
    SELECT NEW.series_id, day, least(c.start_us, NEW.start_us),
      greatest(c.end_us, NEW.end_us), c.count + NEW.count, least(c.min, NEW.min),
      greatest(c.max, NEW.max), c.sum + NEW.sum,
      CASE WHEN NEW.start_us < c.start_us THEN NEW.first ELSE c.first END,
      CASE WHEN NEW.end_us > c.end_us THEN NEW.last ELSE c.last END
    FROM point_chunks c
    WHERE c.series_id = NEW.series_id AND c.start_us >= day AND c.start_us < day + {DAY_US};
  END IF;
  RETURN NEW;
END $$""",
    f"""
CREATE FUNCTION point_rollups_remake() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM point_rollups r USING {_GONE_DAYS}
  WHERE r.series_id = d.series_id AND r.day_us = d.day_us;
  {_REMADE};
  RETURN NULL;
END $$""",
    "CREATE TRIGGER point_rollups_add BEFORE INSERT ON point_chunks "
    "FOR EACH ROW EXECUTE FUNCTION point_rollups_add()",
    "CREATE TRIGGER point_rollups_remake AFTER DELETE ON point_chunks "
    "REFERENCING OLD TABLE AS gone FOR EACH STATEMENT EXECUTE FUNCTION point_rollups_remake()",
]


def create(conn: psycopg.Connection) -> None:
    """The table and its triggers, its rows made from the chunks there are (in the caller's
    transaction, which holds the fold lock: no chunk changes between)."""
    conn.execute(TABLE)
    for statement in TRIGGERS:
        conn.execute(statement)
    conn.execute(_made("point_chunks c", day_of("c.start_us")))


def single_days_dropped(conn: psycopg.Connection) -> None:
    """Schema 10: the triggers of a row only for days of more than one chunk in place of those
    of a row for every day, and the rows of days of one chunk deleted (no other chunk starts
    in the row's day after its first), in the caller's transaction, which holds the fold
    lock."""
    conn.execute("DROP TRIGGER point_rollups_add ON point_chunks")
    conn.execute("DROP TRIGGER point_rollups_remake ON point_chunks")
    conn.execute("DROP FUNCTION point_rollups_add(), point_rollups_remake()")
    for statement in TRIGGERS:
        conn.execute(statement)
    conn.execute(DELETE_SINGLE_DAYS)
