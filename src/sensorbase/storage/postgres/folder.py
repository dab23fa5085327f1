"""When and where a node folds the write log (postgres/fold.py): in a helper process of each
server process, as on SQLite (sqlite/folder.py says why: a fold is numpy and pcodec work in
long stretches that, on a thread, would hold the GIL and starve the event loop; measured here
with a thread: batch ingest's p99 latency went from ~1 s to 4-9 s). The helper starts once its
server process's commits have logged a sixteenth of what makes a fold due, as on SQLite: a
process that has taken only a few writes keeps them in the log, where reads find them as well,
and folds them when it stops (`fold_at_close`), with no helper process started for them. The
helper looks at the log every `EVERY_S` (or sooner, at each further sixteenth) and folds it
when due (with many series, once it holds `fold.due_points`: storage/log_view.py), or when
the log has gone quiet (no node has logged a row for `QUIET_S`, or longer while rows come
slowly: storage/log_quiet.py). Of several helpers (nodes, workers) one folds at a
time: the fold lock, tried, not waited for. A helper ends when its server
process does (the end of its input). After folding, and once writes pause, a helper merges
small chunks (merges.py), a few bounded steps a turn, and at a stop too."""

from __future__ import annotations

import logging
import os
import select
import time

import psycopg
import psycopg.sql

from sensorbase.storage.helper_process import HelperProcess
from sensorbase.storage.log_quiet import QuietLog
from sensorbase.storage.postgres import fold, merges
from sensorbase.storage.postgres.pool import CONNECT_OPTIONS

EVERY_S = 0.5
QUIET_S = 1.0  # a log without new rows this long (at least: log_quiet.py) is folded, due or not
MERGE_STEPS = 4  # steps of merging small chunks a turn (each up to chunk_merges.MERGE_POINTS)
CLOSE_MERGE_STEPS = 64  # ...and at a stop
# Chunks and day rows are vacuumed at most this often while writes go on (and once they
# pause): a VACUUM that finds dead rows reads each index whole, ~1M entries at a million
# series. After every fold the benchmark's database took 2.82 bytes/point, every 10 s 3.03,
# every 2 s 3.00-3.17 (single runs; benchmarks/README.md).
VACUUM_CHUNKS_S = 2.0
_URL_VARIABLE = "SENSORBASE_FOLDER_DATABASE_URL"  # (not argv: `ps` would show its password)
log = logging.getLogger(__name__)


def vacuum_log(conn: psycopg.Connection) -> None:
    """Make the folded log rows' space reusable now (and give it back, where it ends the
    table): every point passes through the log, ~24 bytes each, and autovacuum would leave
    it for a minute or more. The log is small once folded, so this is quick. Its indexes are
    always cleaned: PostgreSQL skips that when few pages hold dead rows, and the dead line
    pointers it leaves keep those pages, so that the emptied log's TOAST table was not cut
    back (a benchmark's empty log kept 101 MB of it, 14 bytes a stored point)."""
    conn.execute("VACUUM (INDEX_CLEANUP ON) point_log")


def vacuum_chunks(conn: psycopg.Connection) -> None:
    """Likewise the chunks and day summaries that folds and merges replaced (at most every
    VACUUM_CHUNKS_S): a fleet's tail chunk is written again by every fold, and each new chunk
    updates its day's row, so that before autovacuum came by, the benchmark's day rows of 21M
    points took 10.0 MB for ~2,000 rows (1.1 MB vacuumed; benchmarks/README.md, issue 28).
    VACUUM reads only the heap pages changed since it last ran (the visibility map)."""
    conn.execute("VACUUM point_chunks, point_rollups")


# A table is analysed again once it holds this many rows more than its statistics say, and
# this share more: the size is what turns a plan (PostgreSQL's autovacuum counts changed rows
# instead, so a fold's rewrites of 100,000 tail chunks would have it analyse at every fold).
ANALYZE_ROWS = 1000
ANALYZE_SHARE = 0.1
ANALYZE_EVERY_S = 2.0  # how often the helper looks


def analyze_grown(conn: psycopg.Connection) -> list[str]:
    """ANALYZE the tables that have grown by more than `ANALYZE_SHARE` since their statistics
    were taken; the tables analysed. Without statistics a fleet's first burst of new devices
    is planned as a table of a few rows: the lookup of 500 sources by key then scanned every
    source of the bucket and filtered (0.75 s a lookup at 75,000 sources, 250 devices created
    a second) instead of probing the (bucket, key) index 500 times. Autovacuum does this when
    it is on and has come round (a minute by default); this does not wait for it. The write
    log is left out: it is emptied by every fold, and read by its primary key alone."""
    grown = [
        str(name)
        for (name,) in conn.execute(
            "SELECT c.relname FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid "
            "WHERE s.schemaname = current_schema() AND c.relname NOT LIKE 'point_log%%' "
            "AND s.n_live_tup > %s + (1 + %s) * greatest(c.reltuples, 0)",
            (ANALYZE_ROWS, ANALYZE_SHARE),
        )
    ]
    for name in grown:
        conn.execute(psycopg.sql.SQL("ANALYZE {}").format(psycopg.sql.Identifier(name)))
    return grown


class PgFolder:
    """A server process's side: told what its commits log (`logged`), it pokes the helper
    (starting it the first time); so do its commits once they have created `ANALYZE_ROWS`
    sources and series (`created`), so that a fleet created through the catalog alone is
    analysed (`analyze_grown`). Fewer cannot have grown a table past that threshold: a
    process that made a few sources starts no helper for them (each test's store did, ~0.25 s
    of CPU, and its close waited for the helper's start-up)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._helper = HelperProcess(__name__, env={_URL_VARIABLE: url})
        self._rows = self._points = 0  # logged since the last poke
        self._created = 0  # sources and series created since the last poke

    def logged(self, points: int) -> None:
        self._rows += 1
        self._points += points
        if self._rows * 16 >= fold.FOLD_ROWS or self._points * 16 >= fold.FOLD_POINTS:
            self._rows = self._points = 0
            self.poke()

    def created(self, rows: int) -> None:
        self._created += rows
        if self._created >= ANALYZE_ROWS:
            self.poke()

    def poke(self) -> None:
        self._created = 0
        self._helper.poke()

    def close(self) -> None:
        self._helper.close()


def fold_at_close(conn: psycopg.Connection) -> None:
    """A stopping server process folds what the log holds, unless another node is folding (it
    will fold it), and merges small chunks, waiting for the fold lock at each step: the
    server processes of a node stop together, and each trying the lock found another's step
    holding it (a benchmark's store of 21M points was left with 6.9M points unmerged). A
    clean stop leaves the points folded and merged, as on SQLite."""
    with conn.transaction():
        folded = fold.try_lock(conn) and fold.fold_all(conn)
    merged = merges.merge(conn, settled=True, most_steps=CLOSE_MERGE_STEPS, wait=True)
    # The log's space, whether or not this fold emptied it: a VACUUM while writers insert
    # cannot give back the pages it frees, and a run's last one can come mid-burst (a
    # benchmark's empty log was left with 282 MB of TOAST pages).
    vacuum_log(conn)
    if folded or merged:
        vacuum_chunks(conn)


class _Due:
    """Whether a fold is due: the log's size, and how long since its newest row changed."""

    def __init__(self) -> None:
        self.log = QuietLog(QUIET_S)
        self.quiet = False  # at the last look

    def fold_if_due(self, conn: psycopg.Connection) -> bool:
        """Fold once if due and no other node is folding; whether it folded."""
        row = conn.execute(
            "SELECT count(*), coalesce(sum(points), 0), coalesce(max(id), 0) FROM point_log"
        ).fetchone()
        rows, points, newest = row if row else (0, 0, 0)
        quiet = self.quiet = self.log.quiet(newest)
        if not rows or not (rows >= fold.FOLD_ROWS or quiet or points >= fold.FOLD_POINTS):
            return False
        due = rows >= fold.FOLD_ROWS or quiet or points >= fold.due_points(conn, fold.FOLD_POINTS)
        if not due:  # (a large fleet's log waits for more points a series)
            return False
        with conn.transaction():
            if not fold.try_lock(conn):
                return False
            return fold.fold(conn) > 0


def main() -> None:
    """The helper: fold the log of the database named by the environment when due."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s:     %(message)s")
    url = os.environ[_URL_VARIABLE]
    due = _Due()
    analyze_at = 0.0
    unsettled = True  # folded since the last merge of a settled store (or just started)
    vacuumed_at, changed = time.monotonic(), False  # (chunks changed since that vacuum)
    conn: psycopg.Connection | None = None
    while True:
        ready, _, _ = select.select([0], [], [], EVERY_S)
        if ready and not os.read(0, 4096):
            return  # the server process is gone
        try:
            if conn is None or conn.broken or conn.closed:
                conn = psycopg.connect(
                    url, autocommit=True, application_name="sensorbase-folder", **CONNECT_OPTIONS
                )
            folded = False
            while due.fold_if_due(conn):
                folded = True
            merged = 0
            if folded:
                vacuum_log(conn)
                unsettled = True
                merged = merges.merge(conn, settled=False, most_steps=MERGE_STEPS)
            elif due.quiet and unsettled:
                merged = merges.merge(conn, settled=True, most_steps=MERGE_STEPS)
                unsettled = merged > 0  # (then there may be more: looked at again)
            changed = changed or folded or merged > 0
            if changed and (due.quiet or time.monotonic() - vacuumed_at >= VACUUM_CHUNKS_S):
                if due.quiet:  # (the log's pages are given back only once writers pause)
                    vacuum_log(conn)
                vacuum_chunks(conn)
                vacuumed_at, changed = time.monotonic(), False
            if time.monotonic() >= analyze_at:  # (creating a fleet may log too few to fold)
                analyze_grown(conn)
                analyze_at = time.monotonic() + ANALYZE_EVERY_S
        except psycopg.Error as exc:  # looked at again at the next turn
            log.warning("folding the write log failed: %s", exc)


if __name__ == "__main__":
    main()
