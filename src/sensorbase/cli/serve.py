"""`sensorbase serve`: the command that runs the server (server/).

Settings come from the environment (SENSORBASE_*, see docs/configuration.md) through
`Settings`; the flags override them. The server's failures to start are printed as any other
command's errors.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from sensorbase import __version__
from sensorbase.cli.client import CliError, stderr

if TYPE_CHECKING:  # the server's modules load only when `serve` runs: client commands start fast
    from sensorbase.settings import Settings

commands = typer.Typer()


def settings_from(overrides: dict[str, Any]) -> Settings:
    from pydantic import ValidationError

    from sensorbase.settings import Settings

    try:
        return Settings(**overrides)
    except ValidationError as exc:
        items = [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()]
        raise CliError("invalid settings (flags or SENSORBASE_* variables)", items=items) from None
    except (OSError, ValueError) as exc:  # the configuration file: missing, or not TOML
        raise CliError(f"the configuration file: {exc}") from None


@commands.command(rich_help_panel="Server")
def serve(
    host: str | None = typer.Option(
        None,
        help="Address to listen on.  [default: SENSORBASE_HOST or 127.0.0.1]",
        show_default=False,
    ),
    port: int | None = typer.Option(
        None, help="Port.  [default: SENSORBASE_PORT or 8000]", show_default=False
    ),
    data_dir: Path | None = typer.Option(
        None,
        help="Directory of the embedded SQLite store.  [default: SENSORBASE_DATA_DIR or ./data]",
        show_default=False,
    ),
    database_url: str | None = typer.Option(
        None,
        help="postgresql://... to use PostgreSQL instead of SQLite.  "
        "[default: SENSORBASE_DATABASE_URL]",
        show_default=False,
    ),
    workers: int = typer.Option(1, min=1, help="Server processes."),
    access_log: bool = typer.Option(True, help="Log every request (stdout)."),
    log_format: str = typer.Option(
        "text",
        help="text (lines starting with their UTC time) or json (one object a line).",
    ),
    forwarded_allow_ips: str | None = typer.Option(
        None,
        help="Proxies trusted to name the client in X-Forwarded-For (comma-separated addresses "
        "or networks, * for any): the address failed sign-ins are counted by.  "
        "[default: FORWARDED_ALLOW_IPS or 127.0.0.1,::1]",
        show_default=False,
    ),
) -> None:
    """Run the Sensorbase server.

    Settings come from SENSORBASE_* variables (docs/configuration.md); these flags override
    them."""
    from sensorbase.server import ServerError, run

    if log_format not in ("text", "json"):
        raise typer.BadParameter("must be text or json", param_hint="--log-format")
    flags = {"host": host, "port": port, "data_dir": data_dir, "database_url": database_url}
    settings = settings_from({name: value for name, value in flags.items() if value is not None})
    try:
        options = run.uvicorn_options(
            settings,
            access_log=access_log,
            forwarded_allow_ips=forwarded_allow_ips,
            log_format=log_format,
        )
        store = (
            "PostgreSQL" if settings.database_url else f"SQLite in {settings.data_dir.resolve()}"
        )
        stderr.print(f"Sensorbase {__version__}: {store}", soft_wrap=True)
        started = run.serve(settings, options, workers)
    except ServerError as exc:
        raise CliError(str(exc)) from None
    if not started:
        raise typer.Exit(3)  # (uvicorn's start-up failure status; it said why)
