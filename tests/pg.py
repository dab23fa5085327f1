"""Throw-away PostgreSQL databases for tests.

The server is SENSORBASE_TEST_POSTGRES_URL (default: postgres on 127.0.0.1:5432, trust auth).
When it cannot be reached the test is skipped, saying so; under SENSORBASE_REQUIRE_POSTGRES=1
(CI) that is a failure instead.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import pytest

SERVER_URL = os.environ.get(
    "SENSORBASE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)


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


@contextmanager
def temporary_database() -> Iterator[str]:
    """Create a uniquely named database, yield its URL, drop it (with any connections left)."""
    name = f"sensorbase_test_{uuid.uuid4().hex[:12]}"
    with _admin() as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield database_url(name)
    finally:
        with _admin() as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
