"""Storage: the narrow interfaces (base.py), the write queue that owns the write connection
(write_queue.py), the catalog's SQL written once (catalog_sql.py, catalog_queries.py) and one
package per backend (sqlite/, postgres/). A driver's exceptions never leave its backend
package: they become `errors.Unavailable` (transient: retry), `errors.Conflict`,
`errors.UnprocessableInput` (never storable) or a plain `errors.SensorbaseError`."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # not at run time: the storage's helper processes (sqlite/folder.py,
    # postgres/folder.py) import this package, and pydantic and the interfaces took the
    # SQLite fold helper's start from 0.15 to 0.27 s of CPU, at every server process's start
    from sensorbase.settings import Settings
    from sensorbase.storage.base import Store


def open_store(settings: Settings) -> Store:
    """The backend the settings name: PostgreSQL for a postgresql:// URL, else embedded SQLite."""
    url = settings.database_url
    if url and url.startswith(("postgresql://", "postgres://")):
        from sensorbase.storage.postgres.store import PostgresStore

        return PostgresStore(url, settings)
    from sensorbase.storage.sqlite.store import SQLiteStore

    return SQLiteStore(settings.data_dir / "sensorbase.db", settings)
