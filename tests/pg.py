"""Throw-away PostgreSQL databases for tests.

The server is SENSORBASE_TEST_POSTGRES_URL (default: postgres on 127.0.0.1:5432, trust auth).
When it cannot be reached the test is skipped, saying so; under SENSORBASE_REQUIRE_POSTGRES=1
(CI) that is a failure instead.

For speed, test databases are cloned from a template this process migrated once (the schema
code of this checkout, so never stale), a few at a time ahead of need, and dropped in the
background: CREATE DATABASE is the slow part and runs well in parallel.
"""

from __future__ import annotations

import atexit
import os
import queue
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import pytest

SERVER_URL = os.environ.get(
    "SENSORBASE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
_template: str | None = None
_template_lock = threading.Lock()
_drops: list[threading.Thread] = []
_AHEAD = 4  # databases being made or waiting, beyond the one in use
_ready: queue.Queue[str | BaseException] = queue.Queue()


def _admin() -> psycopg.Connection:
    try:
        return psycopg.connect(SERVER_URL, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        reason = f"PostgreSQL is unreachable at {SERVER_URL}: {str(exc).strip()}"
        if os.environ.get("SENSORBASE_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"{reason} (SENSORBASE_REQUIRE_POSTGRES=1)")
        pytest.skip(reason)


def database_url(name: str) -> str:
    """SERVER_URL with its database replaced by `name`."""
    info = psycopg.conninfo.conninfo_to_dict(SERVER_URL)
    user = info.get("user", "postgres")
    host = info.get("host", "127.0.0.1")
    port = info.get("port", 5432)
    password = f":{info['password']}" if info.get("password") else ""
    return f"postgresql://{user}{password}@{host}:{port}/{name}"


def _drop(name: str) -> None:
    with psycopg.connect(SERVER_URL, autocommit=True, connect_timeout=3) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _drop_later(name: str) -> None:
    thread = threading.Thread(target=_drop, args=(name,), daemon=True)
    thread.start()
    _drops.append(thread)


def _make(template: str) -> None:
    name = f"sensorbase_test_{uuid.uuid4().hex[:12]}"
    try:
        with psycopg.connect(SERVER_URL, autocommit=True, connect_timeout=3) as admin:
            admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
        _ready.put(name)
    except BaseException as exc:
        _ready.put(exc)


def _make_later(template: str) -> None:
    threading.Thread(target=_make, args=(template,), daemon=True).start()


@atexit.register
def _cleanup() -> None:
    while not _ready.empty():
        left = _ready.get()
        if isinstance(left, str):
            _drop_later(left)
    for thread in _drops:
        thread.join(timeout=30)
    if _template is not None:
        _drop(_template)


def _migrated_template(admin: psycopg.Connection) -> str:
    """A database holding the current schema, made once per process."""
    global _template
    with _template_lock:
        if _template is None:
            from sensorbase.storage.postgres import schema as pg_schema

            name = f"sensorbase_tmpl_{uuid.uuid4().hex[:12]}"
            admin.execute(f'CREATE DATABASE "{name}"')
            with psycopg.connect(database_url(name), autocommit=True) as conn:
                pg_schema.migrate(conn)
            _template = name
        return _template


@contextmanager
def temporary_database(migrated: bool = True) -> Iterator[str]:
    """Create a uniquely named database, yield its URL, drop it (with any connections left).

    `migrated`: start from the current schema (else from an empty database)."""
    with _admin() as admin:
        if migrated:
            first = _template is None
            template = _migrated_template(admin)
            for _ in range(_AHEAD + 1 if first else 1):
                _make_later(template)
            made = _ready.get(timeout=120)
            if isinstance(made, BaseException):
                raise made
            name = made
        else:
            name = f"sensorbase_test_{uuid.uuid4().hex[:12]}"
            admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield database_url(name)
    finally:
        _drop_later(name)
