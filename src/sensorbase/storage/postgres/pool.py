"""The reading connections of one node (psycopg_pool), and how every connection is opened."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout

from sensorbase.errors import Unavailable
from sensorbase.storage.postgres.errors import RETRY_AFTER_S, translate

log = logging.getLogger(__name__)
T = TypeVar("T")

POOL_TIMEOUT_S = 3.0
CONNECT_OPTIONS: dict[str, Any] = {
    "connect_timeout": 5,
    # A dead server or a cut network is noticed within ~20 s even on an idle connection.
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 5,
    "keepalives_count": 2,
}


class Pool:
    """The reading connections of one node, with two habits:

    - a connection the server dropped (restart, terminated backend) is discarded, the other
      idle ones are checked (they likely died together), and the work is tried once more
      (callers pass only work that is safe to repeat);
    - when the database cannot be reached, calls fail fast with `Unavailable` for
      `DOWN_FOR_S` rather than each waiting out the pool's timeout (key lookups run on the
      event loop's thread)."""

    DOWN_FOR_S = 2.0

    def __init__(self, url: str, max_size: int) -> None:
        self.pool = ConnectionPool(
            url,
            min_size=1,
            max_size=max_size,
            kwargs={"autocommit": True, "application_name": "sensorbase", **CONNECT_OPTIONS},
            timeout=POOL_TIMEOUT_S,
            open=False,
            name="sensorbase",
        )
        self._down_until = 0.0

    def open(self) -> None:
        self.pool.open(wait=False)

    def close(self) -> None:
        self.pool.close()

    def run(self, fn: Callable[[psycopg.Connection], T]) -> T:
        if time.monotonic() < self._down_until:
            raise Unavailable(
                "the database is unavailable; retry shortly", retry_after_s=RETRY_AFTER_S
            )
        for attempt in (1, 2):
            lost = False
            try:
                with self.pool.connection() as conn:
                    try:
                        return fn(conn)
                    except psycopg.OperationalError as exc:
                        if not (conn.broken and attempt == 1):
                            raise translate(exc) from None
                        lost = True
                if lost:
                    log.info("a pooled database connection was lost; checking the others")
                    self.pool.check()
            except PoolTimeout as exc:  # no live connection in time: the database is down
                log.warning("the database is unreachable: %s", exc)
                self._down_until = time.monotonic() + self.DOWN_FOR_S
                raise translate(exc) from None
            except psycopg.Error as exc:
                raise translate(exc) from None
        raise AssertionError("unreachable")
