"""`sensorbase dump` and `sensorbase load`: a whole installation written to one file and put
into another store, SQLite or PostgreSQL either way (storage/dumpfile.py). Offline commands:
they take the store as `serve` does (--data-dir, --database-url), and no key."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.progress import Progress, SpinnerColumn, TextColumn

from sensorbase.cli.client import CliError, session
from sensorbase.cli.output import emit_json, stderr
from sensorbase.cli.serve import settings_from

if TYPE_CHECKING:
    from sensorbase.storage.base import Store

commands = typer.Typer()

DataDirOption = typer.Option(
    None,
    help="Directory of the embedded SQLite store.  [default: SENSORBASE_DATA_DIR or ./data]",
    show_default=False,
)
DatabaseUrlOption = typer.Option(
    None,
    help="postgresql://... of a PostgreSQL store.  [default: SENSORBASE_DATABASE_URL]",
    show_default=False,
)


@contextmanager
def _opened(data_dir: Path | None, database_url: str | None) -> Iterator[tuple[Store, str]]:
    from sensorbase.errors import SensorbaseError
    from sensorbase.storage import open_store

    flags = {"data_dir": data_dir, "database_url": database_url}
    settings = settings_from({k: v for k, v in flags.items() if v is not None})
    where = "PostgreSQL" if settings.database_url else f"SQLite in {settings.data_dir.resolve()}"
    store = open_store(settings)
    try:
        store.open()
    except SensorbaseError as exc:
        raise CliError(f"cannot open the store ({where}): {exc.detail}") from None
    try:
        yield store, where
    except SensorbaseError as exc:
        raise CliError(exc.detail) from None
    finally:
        store.close()


@contextmanager
def _counter(what: str) -> Iterator[Any]:
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), console=stderr) as bar:
        task = bar.add_task(f"0 points {what}")
        yield lambda n: bar.update(task, description=f"{n:,} points {what}")


def _report(ctx: typer.Context, verb: str, done: Any, file: Path, where: str) -> None:
    if session(ctx).as_json:
        emit_json(
            {
                "file": str(file),
                "store": where,
                "tables": done.tables,
                "points": done.points,
                "sum": done.value_sum,
                "seconds": round(done.seconds, 3),
                "bytes": done.size_bytes,
            }
        )
        return
    rows = sum(done.tables.values())
    rate = done.points / done.seconds if done.seconds else 0.0
    stderr.print(
        f"{verb} {done.points:,} point(s) and {rows:,} catalog row(s) "
        f"({len(done.tables)} tables) in {done.seconds:.1f} s ({rate:,.0f} points/s); "
        f"{file}: {done.size_bytes / 1e6:,.1f} MB; store: {where}.",
        soft_wrap=True,
    )


@commands.command(rich_help_panel="Server")
def dump(
    ctx: typer.Context,
    file: Path = typer.Argument(..., help="The dump file to write (must not exist)."),
    data_dir: Path | None = DataDirOption,
    database_url: str | None = DatabaseUrlOption,
) -> None:
    """Write a whole installation to one file: organisations, buckets, sources, series,
    points, users, groups and keys (with their hashes). Taken at one moment while servers
    go on writing; `sensorbase load` puts it into another store (docs/lifecycle.md)."""
    from sensorbase.storage.dumpfile import dump as write

    with _opened(data_dir, database_url) as (store, where), _counter("dumped") as counted:
        source = "postgresql" if where == "PostgreSQL" else "sqlite"
        done = write(store, file, source, counted)
    _report(ctx, "Dumped", done, file, where)


@commands.command(rich_help_panel="Server")
def load(
    ctx: typer.Context,
    file: Path = typer.Argument(..., help="A file `sensorbase dump` wrote."),
    data_dir: Path | None = DataDirOption,
    database_url: str | None = DatabaseUrlOption,
) -> None:
    """Put a `sensorbase dump` file into an empty store (a new data directory or database,
    one no server was started on): SQLite to PostgreSQL, or back. Every key and password
    works as before."""
    from sensorbase.storage.dumpfile import load as put

    if not file.is_file():
        raise CliError(f"no dump file at {file}")
    with _opened(data_dir, database_url) as (store, where), _counter("loaded") as counted:
        done = put(store, file, counted)
    _report(ctx, "Loaded", done, file, where)
