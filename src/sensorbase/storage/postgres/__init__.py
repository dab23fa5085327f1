"""The shared backend: PostgreSQL (store.py), for several Sensorbase nodes on one database.

Points are stored as the embedded store stores them (sqlite/__init__.py has the design and
its reasons): each group commit appends one row of raw columns to `point_log` (log.py), and
the log is folded into `point_chunks` (chunks.py; the encoding is storage/chunks.py's, the
same blocks as SQLite's), per series chunks of pcodec-compressed points with their
count/min/max/sum/first/last and the same per block, and triggers keep the same per series
and day of more than one chunk (rollups.py; storage/rollups.py), as on SQLite.
Any node folds (fold.py, in a helper process: folder.py); whatever changes the chunks (a fold, a
delete, expiry) holds the cluster's fold lock for its transaction, and a log row's insert
holds the log lock to its commit, so that log order is commit order. A fold is due as on
SQLite (with a large fleet, more points a series: storage/log_view.py `due_points`). Reads
(reader.py) merge chunks and log in one repeatable-read snapshot through
storage/chunk_reads.py, as SQLite's do, and find a series' log points in the same columnar
log cache (storage/log_view.py).

Modules: store (opening, the fold helper), writer (the write connection, commits), tx (the
write transaction), log, chunks, rollups, fold, merges (small chunks into larger ones),
folder, lifecycle (deletes, expiry, the
retention lease), reader (catalog lookups and point reads), pool (the reading connections),
transfer (dump and load), schema (tables and migrations), errors (where `psycopg` exceptions
stop).
"""
