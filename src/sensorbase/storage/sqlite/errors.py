"""Where `sqlite3` exceptions stop: a locked or busy database becomes `Unavailable` (retry), a
constraint `Conflict`, a value SQLite cannot hold `UnprocessableInput`, anything else a plain
`SensorbaseError`."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sensorbase.errors import Conflict, SensorbaseError, Unavailable, UnprocessableInput


@contextmanager
def driver_errors() -> Iterator[None]:
    try:
        yield
    except sqlite3.IntegrityError as exc:
        raise Conflict(f"already exists ({exc})") from None
    except sqlite3.OperationalError as exc:
        if "locked" in str(exc) or "busy" in str(exc):
            raise Unavailable("the database is busy", retry_after_s=1) from None
        raise SensorbaseError(f"storage error: {exc}") from None
    except (sqlite3.DataError, OverflowError) as exc:  # too big for SQLite: never storable
        raise UnprocessableInput(
            f"the database cannot take a value of this request: {exc}"
        ) from None


def retry_locked(statement: Callable[[], Any], within_s: float) -> Any:
    """Run `statement`, again after a short pause while SQLite says the database is locked,
    for at most `within_s` seconds."""
    deadline = time.monotonic() + within_s
    while True:
        try:
            return statement()
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
            time.sleep(0.01)
