"""The embedded store: one SQLite file in WAL mode.

One write connection, written by whichever of the event loop's group commits holds the writer
lock (writer.py, storage/write_queue.py); each reading thread opens its own connection
(reader.py). `sqlite3` exceptions stop in this package (errors.py).
"""

from __future__ import annotations

import fcntl
import logging
import os
import sqlite3
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sensorbase.settings import Settings
from sensorbase.storage.sqlite import folder, merges, schema
from sensorbase.storage.sqlite.checkpointer import Checkpointer
from sensorbase.storage.sqlite.errors import retry_locked
from sensorbase.storage.sqlite.folder import Folder
from sensorbase.storage.sqlite.log import SQLiteLogCache
from sensorbase.storage.sqlite.reader import SQLiteReader
from sensorbase.storage.sqlite.transfer import SQLiteLoader, SQLiteSnapshot
from sensorbase.storage.sqlite.wal_sync import WalSyncer
from sensorbase.storage.sqlite.writer import SQLiteWriter, WalSync

WAL_SIZE_LIMIT = 64 * 1024 * 1024  # bytes
CLOSE_MERGE_STEPS = 64  # steps of merging small chunks at a clean stop (merges.py)
JOURNAL_MODE_WAIT_S = 10.0
# Pages of a new file (an existing file keeps its own). A chunk's row (~1 KiB for a fleet's
# device, ~2.6 KiB for a dense series' 8,192 points) stays whole on a page it fits, so 4 KiB
# pages held three fleet rows or one dense row and left the rest unused: 0.07 byte a point
# of benchmarks/disk.py's store, a third of a dense series' file. A row larger than a page
# spills onto overflow pages that SQLite fills to the last byte, so with 1 KiB pages nearly
# every chunk's bytes lie end to end: the store 0.635 -> 0.541 bytes a point, a dense series
# of 10M points 0.530 -> 0.426 (benchmarks/README.md). What it costs: a log row of a group
# commit spans 4x the pages (in process, appending ~0.07 -> ~0.10 us a point); benchmarks/
# ab.py's batch ingest, server and helpers' CPU, and stats and latest moved within noise.
PAGE_SIZE = 1024
WAL_RESTART_BYTES = 16 * 1024 * 1024  # WAL grown to this, the writer restarts it (Checkpointer)
log = logging.getLogger(__name__)


class SQLiteStore:
    reads_on_loop = True  # (a connection per thread, a local file)

    def __init__(self, path: Path, settings: Settings) -> None:
        self.path = path
        self.synchronous = "FULL" if settings.durability == "full" else "NORMAL"
        self.mmap_bytes = settings.sqlite_mmap_bytes
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._reading: dict[sqlite3.Connection, int] = {}  # readers alive on each connection
        self._close_when_done: set[sqlite3.Connection] = set()  # (closed while read on)
        self._lock = threading.Lock()
        self._writer: sqlite3.Connection | None = None
        self._checkpointer: Checkpointer | None = None
        self._folder: Folder | None = None
        self._log = SQLiteLogCache()
        self._lock_fd: int | None = None  # see SQLiteWriter
        self._wal: WalSync | None = None
        self._syncer: WalSyncer | None = None

    def _connect(self, new_file: bool = False) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA busy_timeout = 5000")
        if new_file:
            # Incremental auto-vacuum, so that a clean close can give back the pages the
            # folded write log left free (see close()). It can be chosen only before the file
            # turns to WAL (and on an existing file the pragma would wait for its writer).
            conn.execute(f"PRAGMA page_size = {PAGE_SIZE}")
            conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
        # Two processes turning a new database to WAL at once (the workers' first start): the
        # one already holding a shared lock is refused at once, without the busy handler
        # (SQLite's deadlock rule), and must try again (a benchmark start failed so; four
        # connections racing on a new file: 27 of 300 rounds).
        retry_locked(lambda: conn.execute("PRAGMA journal_mode = WAL"), JOURNAL_MODE_WAIT_S)
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute(f"PRAGMA synchronous = {self.synchronous}")
        conn.execute("PRAGMA cache_size = -65536")
        # A WAL that grew during a burst is cut back to this when it starts over.
        conn.execute(f"PRAGMA journal_size_limit = {WAL_SIZE_LIMIT}")
        return conn

    def open(self) -> None:
        os.makedirs(self.path.parent, exist_ok=True)
        self._lock_fd = os.open(f"{self.path}-writer", os.O_RDWR | os.O_CREAT, 0o600)
        conn = self._connect(new_file=not self.path.exists())
        schema.prepare(conn, self.path)
        # Checkpoints run on their own thread (Checkpointer), never inside a commit.
        conn.execute("PRAGMA wal_autocheckpoint = 0")
        if self.synchronous == "FULL":  # the writer syncs the WAL itself (see WalSync)
            conn.execute("PRAGMA synchronous = NORMAL")
            self._wal = WalSync(f"{self.path}-wal")
            self._syncer = WalSyncer(f"{self.path}-wal")
        # The writer reads the database through a memory map. Whenever another worker commits,
        # SQLite empties this connection's page cache, and each insert then read its B-tree
        # path again with pread and a copy; through the map it is a memory access. Measured
        # with one-point writes into a store of 4M points, 2 workers, 4 alternating runs a
        # side: server CPU 180/167/168/171 -> 144/134/156/143 us per request, 6.5-8.2k ->
        # 7.9-9.7k requests/s; batch ingest unchanged.
        conn.execute(f"PRAGMA mmap_size = {self.mmap_bytes}")
        self._writer = conn
        page_bytes = conn.execute("PRAGMA page_size").fetchone()[0]
        self._checkpointer = Checkpointer(
            self._connect, every_s=0.2, restart_frames=WAL_RESTART_BYTES // page_bytes
        )
        self._folder = Folder(self.path)

    def fold_points(self) -> int:
        """Fold the log of recent writes into chunks now (tools, tests); the points folded."""
        conn = self._connect()
        try:
            return folder.fold_once(conn, folder.writer_locked(self.path))
        finally:
            conn.close()

    def merge_chunks(self, settled: bool = True, most_steps: int = CLOSE_MERGE_STEPS) -> int:
        """Merge small chunks now (merges.py; tools, tests); the points merged."""
        conn = self._connect()
        try:
            return merges.merge(conn, folder.writer_locked(self.path), settled, most_steps)
        finally:
            conn.close()

    def close(self) -> None:
        with self._lock:
            # A reader's connection another thread is reading on is closed when that read
            # lets go of its reader (`_reader_done`), not under it: that crashed the process
            # (sqlite3 freed the statement the other thread was stepping; a test's alert timer
            # reading while its store closed, in CI).
            for conn in self._readers:
                if self._reading.get(conn):
                    self._close_when_done.add(conn)
                else:
                    conn.close()
            self._readers.clear()
            self._local = threading.local()  # a store opened again connects its readers anew
        if self._syncer is not None:
            self._syncer.close()
            self._syncer = None
        if self._folder is not None:
            self._folder.close()
            self._folder = None
        if self._checkpointer is not None:
            self._checkpointer.stop()
            self._checkpointer = None
        if self._writer is not None:
            writer, locked = self._writer, folder.writer_locked(self.path)
            if writer.in_transaction:  # closed amid a write: abandon it, and its writer lock
                writer.execute("ROLLBACK")
                if self._lock_fd is not None:
                    fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            try:  # a clean stop leaves the points folded, as compact as they get
                folder.fold_once(writer, locked, (1, 1), settled=True)
                merges.merge(writer, locked, settled=True, most_steps=CLOSE_MERGE_STEPS)
                # The folded log's pages are free now: give them back to the file system
                # (the log of a busy server is up to ~10 MB; kept while running, for reuse).
                # (executescript steps it to the end; execute() frees one page a step.)
                # Then the WAL is copied into the file and cut to nothing, whether or not this
                # is the last connection (SQLite does that only on the last one's close).
                free = writer.execute("PRAGMA freelist_count").fetchone()[0]
                vacuum = "PRAGMA incremental_vacuum;" if free else ""
                locked(lambda: writer.executescript(f"{vacuum}PRAGMA wal_checkpoint(TRUNCATE);"))
            except sqlite3.Error as exc:
                log.warning("folding the write log at close failed: %s", exc)
            # The last connection to close checkpoints what is left and removes the WAL and
            # its index: closed under the writer lock, so that two workers stopping together
            # do not each close while the other is still open (then neither is the last, and
            # the empty WAL and its 96 KB index stayed beside the file: in 4 of 5 bench.py
            # runs, both writers closed within 0.2 ms of each other).
            locked(self._writer.close)
            self._writer = None
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None
        if self._wal is not None:
            self._wal.close()
            self._wal = None

    @contextmanager
    def retention_lease(self) -> Iterator[bool]:
        """True when this process may run a retention pass now: of the processes sharing the
        file (`serve --workers N`), only the one holding the lock beside it."""
        fd = os.open(f"{self.path}-retention", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            yield True
        finally:
            os.close(fd)  # (which lets the lock go)

    def expire_apart(
        self, series_ids: list[int], cutoff_us: int, keep_summaries: bool, max_chunks: int
    ) -> tuple[int, int] | None:
        """None: expiry writes through the one writer, in the write queue (WriteTx)."""
        return None

    def writer(self) -> SQLiteWriter:
        assert self._writer is not None, "open() the store first"
        checkpointer = self._checkpointer
        assert checkpointer is not None
        writer = self._writer
        assert self._lock_fd is not None
        return SQLiteWriter(
            writer,
            lambda: checkpointer.after_commit(writer),
            self._lock_fd,
            self._wal,
            self._syncer,
            self._folder,
            self._log,
        )

    @contextmanager
    def snapshot(self) -> Iterator[SQLiteSnapshot]:
        """The store at one moment, on a connection of its own (storage/transfer.py)."""
        found = SQLiteSnapshot(self.path)
        try:
            yield found
        finally:
            found.close()

    @contextmanager
    def loader(self) -> Iterator[SQLiteLoader]:
        """Catalog rows into the store in one write transaction (storage/transfer.py)."""
        writer = self.writer()
        tx = writer.begin()
        try:
            yield SQLiteLoader(tx.conn)
        except BaseException:
            writer.rollback()
            raise
        writer.commit()

    def reader(self) -> SQLiteReader:
        with self._lock:  # (with close(): a connection is never closed as a read takes it)
            local = self._local
            conn = getattr(local, "conn", None)
            if conn is not None:
                self._reading[conn] = self._reading.get(conn, 0) + 1
        if conn is None:
            conn = self._connect()
            conn.execute("PRAGMA query_only = ON")
            with self._lock:
                local.conn = conn
                self._readers.append(conn)
                self._reading[conn] = self._reading.get(conn, 0) + 1
        reader = SQLiteReader(conn, self.path, self._log)
        weakref.finalize(reader, self._reader_done, conn)
        return reader

    def _reader_done(self, conn: sqlite3.Connection) -> None:
        """A reader on `conn` is gone; the last one closes it if the store closed meanwhile."""
        with self._lock:
            left = self._reading[conn] = self._reading[conn] - 1
            if left:
                return
            del self._reading[conn]
            if conn not in self._close_when_done:
                return
            self._close_when_done.discard(conn)
        conn.close()
