"""Where `psycopg` exceptions stop (`translate`): a lost connection, a restart, a pool timeout
or a lock timeout become `Unavailable` (503 + Retry-After, retry is safe), a deadlock or a
serialization failure `Contended` (the write queue runs its group again); a value
the database can never take (out of range, a NUL byte, an index row too large)
`UnprocessableInput` (422: a retry would only fail again); a constraint `Conflict`; anything
else a plain `SensorbaseError`."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg

from sensorbase.errors import (
    Conflict,
    Contended,
    SensorbaseError,
    Unavailable,
    UnprocessableInput,
)

RETRY_AFTER_S = 1
Params = Sequence[Any]


# SQLSTATE classes whose errors a retry may cure: the connection (08), a rolled-back
# transaction (40: serialization, deadlock), resources (53), an operator (57: shutdown,
# cannot connect now), the system (58: I/O), a lock not granted in time (55P03).
_TRANSIENT = ("08", "40", "53", "57", "58")
# Classes that say the request itself can never be stored: data (22: a value out of range, a
# NUL byte) and program limits (54: an index row too large).
_REFUSED = ("22", "54")
# A deadlock broken by aborting this transaction, a serialization failure: lost to another.
_CONTENDED = ("40P01", "40001")


def translate(exc: psycopg.Error) -> SensorbaseError:
    """The Sensorbase error for a driver error: transient faults are 503 (retry is safe and
    may succeed), a value the database can never take is 422 (retrying would loop forever),
    a constraint is 409, anything else 500."""
    state = exc.sqlstate
    if isinstance(exc, psycopg.IntegrityError):
        return Conflict(f"already exists ({exc.diag.message_primary or exc})")
    if state is not None and (state[:2] in _REFUSED):
        return UnprocessableInput(
            f"the database refused a value of this request: {exc.diag.message_primary or exc}"
        )
    if state is None and isinstance(exc, psycopg.DataError):  # refused before it was sent
        return UnprocessableInput(f"the database cannot take a value of this request: {exc}")
    if state in _CONTENDED:
        return Contended(
            "the write met a concurrent one and was rolled back; retry",
            retry_after_s=RETRY_AFTER_S,
        )
    transient = state[:2] in _TRANSIENT or state == "55P03" if state else True
    if transient and isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError):
        return Unavailable(
            "the database is unavailable; retry shortly", retry_after_s=RETRY_AFTER_S
        )
    return SensorbaseError(f"storage error: {exc}")


def holds_nul(params: Params) -> bool:
    """Whether a text parameter holds U+0000, which PostgreSQL text cannot: no row can match
    such a name, so a read answers nothing (as SQLite does) instead of failing."""
    return any(type(p) is str and "\x00" in p for p in params)


@contextmanager
def driver_errors() -> Iterator[None]:
    try:
        yield
    except psycopg.Error as exc:
        raise translate(exc) from None
