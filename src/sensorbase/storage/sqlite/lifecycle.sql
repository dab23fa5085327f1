-- Retention and summaries (docs/lifecycle.md): applied after schema.sql on a new file, and by
-- schema.py's `_lifecycle` step on an older one.
ALTER TABLE buckets ADD COLUMN retention_us INTEGER;
ALTER TABLE buckets ADD COLUMN keep_summaries INTEGER NOT NULL DEFAULT 0;
-- What expired chunks leave when their bucket keeps summaries: one row per expired chunk (or
-- the expired part of one), its points' count, min, max, sum, first and last.
CREATE TABLE point_summaries (
  series_id INTEGER NOT NULL,
  start_us INTEGER NOT NULL,
  end_us INTEGER NOT NULL,
  count INTEGER NOT NULL,
  min REAL NOT NULL, max REAL NOT NULL, sum REAL NOT NULL,
  first REAL NOT NULL, last REAL NOT NULL,
  PRIMARY KEY (series_id, start_us)
) WITHOUT ROWID;
