"""`sensorbase config show`: every setting the server would run with here, and where each
comes from (an environment variable or the default), read as `sensorbase serve` reads them
(docs/configuration.md). Offline: it asks no server."""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import typer

from sensorbase.cli.client import session
from sensorbase.cli.output import emit_json, stdout, table

commands = typer.Typer(
    name="config", help="The server's settings, as `serve` would read them.", no_args_is_help=True
)


def _shown(name: str, value: Any) -> Any:
    """A value fit to print: a database URL's password masked."""
    if name.endswith("url") and isinstance(value, str) and "@" in value:
        parts = urlsplit(value)
        if parts.password:
            netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
            return urlunsplit(parts._replace(netloc=netloc))
    return str(value) if value is not None and not isinstance(value, int | float | bool) else value


@commands.command("show", rich_help_panel="Server")
def show(ctx: typer.Context) -> None:
    """Each effective setting, its value and where it came from."""
    from sensorbase.cli.serve import settings_from
    from sensorbase.dialects.madevo.settings import MadevoSettings

    environment = {name.upper(): value for name, value in os.environ.items()}
    rows = []
    for settings in (settings_from({}), MadevoSettings()):
        prefix = str(type(settings).model_config.get("env_prefix", ""))
        for name in type(settings).model_fields:
            variable = f"{prefix}{name}".upper()
            rows.append(
                {
                    "setting": variable,
                    "value": _shown(name, getattr(settings, name)),
                    "from": "environment" if variable in environment else "default",
                }
            )
    if session(ctx).as_json:
        emit_json(rows)
        return
    stdout().print(table(rows, ["setting", "value", "from"]))
