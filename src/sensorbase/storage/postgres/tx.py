"""PostgreSQL's write transaction: the catalog's changes (storage/catalog_queries.py) and the
points appended, held until the commit and then logged at once (log.py)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from sensorbase.model import ResolvedBatch, ResolvedPoint, TimeRange
from sensorbase.storage.alerts_queries import AlertWrites
from sensorbase.storage.catalog_queries import CatalogWrites, Params, Row
from sensorbase.storage.log_view import LoggedRow
from sensorbase.storage.postgres import fold, lifecycle
from sensorbase.storage.postgres.errors import driver_errors, holds_nul
from sensorbase.storage.postgres.log import append_log
from sensorbase.storage.postgres.reader import PgCatalog, pg_sql
from sensorbase.storage.postgres.schema import CREATE_LOCK

if TYPE_CHECKING:
    import psycopg

    from sensorbase.storage.postgres.store import PostgresStore


class PgWriteTx(CatalogWrites, PgCatalog, AlertWrites):
    """One write transaction. Appended points are held and logged once, at commit, for the
    whole group: one row of the write log (a group commit of 32 one-point writes took ~100 ms
    at ~8 round trips per job). Deletes log the held points first, so that they delete them
    too."""

    # Nodes share the alert tables: see storage/alerts_queries.py.
    lock_row = " FOR UPDATE"
    skip_locked = " FOR UPDATE SKIP LOCKED"

    def __init__(self, conn: psycopg.Connection, store: PostgresStore) -> None:
        self.conn = conn
        self.store = store
        self._savepoints = 0
        self._pending: list[ResolvedBatch | ResolvedPoint] = []
        self.logged = 0  # points this transaction logged (the folder hears of them)
        self.logged_rows: list[LoggedRow] = []  # (the log cache takes them once committed)
        self.created = 0  # sources and series made (the folder analyses grown tables)

    def _rows(self, statement: str, params: Params) -> list[Row]:
        if holds_nul(params) and statement.lstrip()[:6].upper() == "SELECT":
            return []  # no row holds it (a write of it is refused: 422)
        with driver_errors():
            cur = self.conn.execute(statement, params)
            return cur.fetchall() if cur.description is not None else []

    def _run(self, statement: str, params: Params = ()) -> None:
        with driver_errors():
            self.conn.execute(pg_sql(statement), params)

    def _run_many(self, statement: str, params: Iterable[Params]) -> None:
        with driver_errors():
            self.conn.cursor().executemany(pg_sql(statement), params)

    def _creating(self, rows: int) -> None:
        """Two nodes' group commits, each creating several new sources or series for the
        writes it holds, would lock those rows in different orders and deadlock (PostgreSQL
        breaks it after its deadlock_timeout by aborting one: a second of every write stalled
        on both nodes). Creation therefore takes one lock, held to the commit: nodes create in
        turn, and a write whose sources exist takes nothing. Re-taking it is a no-op."""
        self._run("SELECT pg_advisory_xact_lock(?)", (CREATE_LOCK,))
        self.created += rows

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        self._savepoints += 1
        name = f"sp{self._savepoints}"
        held = list(self._pending)
        self._run(f"SAVEPOINT {name}")
        try:
            with driver_errors():
                yield
        except BaseException:
            self._pending = held
            self._run(f"ROLLBACK TO SAVEPOINT {name}")
            self._run(f"RELEASE SAVEPOINT {name}")
            raise
        self._run(f"RELEASE SAVEPOINT {name}")

    def _delete_points(self, series_sql: str, param: int) -> None:
        """The log is folded first (under the fold lock, held to the commit), so that no log
        row keeps points of a deleted series for a later fold to bring back."""
        with driver_errors():
            fold.lock(self.conn)  # before the log lock (flush), as every holder of both
        self.flush()
        with driver_errors():
            fold.fold_all(self.conn)
        self._run(f"DELETE FROM point_chunks WHERE series_id IN ({series_sql})", (param,))
        self._run(f"DELETE FROM point_summaries WHERE series_id IN ({series_sql})", (param,))

    def delete_points(self, series_ids: list[int], time_range: TimeRange) -> None:
        with driver_errors():
            fold.lock(self.conn)  # before the log lock (flush), as every holder of both
        self.flush()
        with driver_errors():
            lifecycle.delete_range(self.conn, series_ids, time_range)

    def expire_points(
        self, series_ids: list[int], cutoff_us: int, keep_summaries: bool, max_chunks: int
    ) -> tuple[int, int]:
        self.flush()
        with driver_errors():
            return lifecycle.expire(self.conn, series_ids, cutoff_us, keep_summaries, max_chunks)

    def reclaim_space(self) -> int:
        """Nothing to do: PostgreSQL's autovacuum reuses the deleted rows' space."""
        return 0

    def append(self, batch: ResolvedBatch | ResolvedPoint) -> None:
        if not isinstance(batch, ResolvedBatch) or len(batch.time_us):
            self._pending.append(batch)

    def flush(self) -> None:
        """Log the held points (the writer calls this just before COMMIT): one row for the
        whole group (log.py)."""
        if not self._pending:
            return
        batches, self._pending = self._pending, []
        with driver_errors():
            logged = append_log(self.conn, batches)
        if logged is not None:
            self.logged += logged[1][0]
            self.logged_rows.append(logged)
