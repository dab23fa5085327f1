"""`sensorbase backup` and `sensorbase restore`: the embedded store copied at one moment while
servers go on writing, and put back (storage/sqlite/backup.py). Offline commands: they need
the data directory, as `serve` does, and no key. A PostgreSQL store is backed up by
PostgreSQL's own tools (docs/deploy.md); `sensorbase dump` moves any store to any other."""

from __future__ import annotations

from pathlib import Path

import typer

from sensorbase.cli.client import CliError, session
from sensorbase.cli.output import emit_json, stderr
from sensorbase.cli.serve import settings_from

commands = typer.Typer()

DataDirOption = typer.Option(
    None,
    help="Directory of the embedded SQLite store.  [default: SENSORBASE_DATA_DIR or ./data]",
    show_default=False,
)


def _store_path(data_dir: Path | None, what: str) -> Path:
    settings = settings_from({"data_dir": data_dir} if data_dir is not None else {})
    if settings.database_url:
        raise CliError(
            f"{what} copies the embedded SQLite store; this installation uses PostgreSQL "
            "(SENSORBASE_DATABASE_URL)",
            hint="back PostgreSQL up with pg_dump/pg_restore (docs/deploy.md), or move the "
            "whole installation with `sensorbase dump`",
        )
    return settings.data_dir / "sensorbase.db"


@commands.command(rich_help_panel="Server")
def backup(
    ctx: typer.Context,
    dest: Path = typer.Argument(..., help="The backup file to write (must not exist)."),
    data_dir: Path | None = DataDirOption,
    verify: bool = typer.Option(
        False,
        help="Open the copy afterwards: SQLite's integrity check, and every table's rows and "
        "the points counted against the snapshot.",
    ),
) -> None:
    """Copy the embedded store at one moment, while servers go on writing (docs/lifecycle.md).

    The copy is a SQLite file: `sensorbase restore` puts it back."""
    from sensorbase.errors import SensorbaseError
    from sensorbase.storage.sqlite.backup import backup as take

    source = _store_path(data_dir, "backup")
    try:
        report = take(source, dest, verify)
    except SensorbaseError as exc:
        raise CliError(exc.detail) from None
    rows = sum(n for t, n in report.snapshot.tables.items() if not t.startswith("point_"))
    if session(ctx).as_json:
        emit_json(
            {
                "backup": str(dest),
                "bytes": report.size_bytes,
                "seconds": round(report.seconds, 3),
                "tables": report.snapshot.tables,
                "point_entries": report.snapshot.point_entries,
                "verified": report.verified,
            }
        )
        return
    checked = ", verified" if verify else ""
    stderr.print(
        f"Backed up {source} to {dest}: {report.size_bytes / 1e6:,.1f} MB, "
        f"{report.snapshot.point_entries:,} point entries, {rows:,} catalog rows, "
        f"{report.seconds:.1f} s{checked}.",
        soft_wrap=True,
    )


@commands.command(rich_help_panel="Server")
def restore(
    ctx: typer.Context,
    source: Path = typer.Argument(..., help="A file `sensorbase backup` wrote."),
    data_dir: Path | None = DataDirOption,
    force: bool = typer.Option(
        False, help="Replace the store that exists there (never one a server has open)."
    ),
) -> None:
    """Put a backup in place as the embedded store (checked first; refused while the store is
    open, and over an existing store without --force)."""
    from sensorbase.errors import SensorbaseError
    from sensorbase.storage.sqlite.backup import restore as put

    target = _store_path(data_dir, "restore")
    try:
        found = put(source, target, force)
    except SensorbaseError as exc:
        raise CliError(exc.detail) from None
    if session(ctx).as_json:
        emit_json({"restored": str(target), "tables": found.tables})
        return
    stderr.print(
        f"Restored {source} as {target} ({found.point_entries:,} point entries).",
        soft_wrap=True,
    )
