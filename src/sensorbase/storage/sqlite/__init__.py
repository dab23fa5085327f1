"""The embedded backend: one SQLite file in WAL mode (store.py), its points in a log of recent
writes folded into compressed chunks per series.

One row per point in a `(series_id, time_us)` B-tree made every write one B-tree descent per
point into its series' own leaf: a request of the benchmark's fleet (5,000 points over 1,000
series) dirtied ~1,000 leaves, and inserting was most of batch ingest's time, under the
writer lock that every writer takes in turn (benchmarks/README.md). Disk held ~29 bytes a
point. Now:

- A group commit appends one row to `point_log` (log.py): its points as raw columns, sorted
  by (series, time). A later row wins over an earlier one, and within a row a later point
  over an earlier one at the same (series, time): writing a point again replaces it.
- `fold` (fold.py) moves the log into `point_chunks` (storage/chunks.py): per series, chunks
  of at most `CHUNK_POINTS` points, disjoint in time and in order, their times and values
  compressed with pcodec in blocks that decode on their own (a sensor's series takes well
  under half a byte a point), and beside them count, min, max, sum, first and last, of the
  chunk and of each block, so that an aggregate over whole chunks or blocks reads those
  instead of the points. Triggers keep the same per series and day of more than one chunk
  in `point_rollups` (rollups.py; a day of one chunk has its chunk's), so that an aggregate
  over whole days reads a row a day. Folding costs per
  series, not per point: it runs once the log holds `FOLD_POINTS` points (with many series,
  `FOLD_POINTS_PER_SERIES` a series, up to `FOLD_POINTS_MOST`: log_view.py) or `FOLD_ROWS`
  rows, or when writes pause, in a helper process (folder.py; one per database): in parts of
  `FOLD_PART_SERIES` series, each planned from a read snapshot and written under the writer
  lock, the folded log rows deleted with the last. The helper then merges a series' small
  chunks into larger ones (merges.py, storage/chunk_merges.py), as a fold is written.
- Reads (storage/chunk_reads.py) merge a series' chunks in the range with its points in the
  log, the log winning. The log cache (storage/log_view.py, shared with PostgreSQL) decodes
  each log row once per process into columns held end to end, and a read finds its series'
  log points by one vectorised scan of them (and keeps a series' merged log points for the
  next read); a read takes the rows its own read transaction sees (`SQLiteLogCache.view`,
  log.py), so chunks and log are read at one moment. The rows this process commits are put
  in the cache by its writer (`LogCache.committed`), which also lets go of the rows folded
  meanwhile, so a read during heavy ingest, or the first after a pause, does not fetch the
  rows back.

Ids of `point_log` only grow (AUTOINCREMENT) and a fold always takes the oldest rows, so the
rows a transaction sees are exactly the ids between its min(id) and max(id).

Modules: store (opening, connections, closing), writer (the writer lock, commits, durable
syncs), tx (the write transaction), reader, log, chunks, rollups, fold, merges (small chunks
into larger ones), folder (the fold's helper process), checkpointer, wal_sync (the WAL's sync
helper process), schema (+ schema.sql, migrations), errors (where `sqlite3` exceptions stop).
The package imports nothing itself, so that its helper processes start without the rest.
What PostgreSQL shares with it is in storage/: the chunk encoding (chunks.py), which chunks
to merge (chunk_merges.py) and the reads that merge chunks and log (chunk_reads.py,
chunk_m4.py), which take the chunks through `SQLiteChunks` (chunks.py here).
"""
