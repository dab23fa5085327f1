"""Storage: the Store protocol (base.py) and its backends. Driver exceptions never leave a
backend module: they become `errors.Unavailable` (transient) or `StorageError` (permanent)."""

from __future__ import annotations

from sensorbase.settings import Settings
from sensorbase.storage.base import Store


def open_store(settings: Settings) -> Store:
    """The backend the settings name: PostgreSQL for a postgresql:// URL, else embedded SQLite."""
    url = settings.database_url
    if url and url.startswith(("postgresql://", "postgres://")):
        from sensorbase.storage.postgres import PostgresStore

        return PostgresStore(url, settings)
    from sensorbase.storage.sqlite import SQLiteStore

    return SQLiteStore(settings.data_dir / "sensorbase.db", settings)
