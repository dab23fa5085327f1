"""`sensorbase config show`: every setting the server would run with here, and where each
comes from (an environment variable, the TOML configuration file, or the default), read as
`sensorbase serve` reads them (docs/configuration.md). Offline: it asks no server."""

from __future__ import annotations

import os
import tomllib
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
    from sensorbase.settings import config_file

    environment = {name.upper(): value for name, value in os.environ.items()}
    server = settings_from({})  # (refuses a bad file or value as `serve` would)
    found = config_file()
    in_file = set(tomllib.loads(found.read_text()) if found else {})
    rows = []
    for settings in (server, MadevoSettings()):
        prefix = str(type(settings).model_config.get("env_prefix", ""))
        for name in type(settings).model_fields:
            variable = f"{prefix}{name}".upper()
            origin = "default"
            if variable in environment:
                origin = "environment"
            elif settings is server and name in in_file:
                origin = f"file {found}"
            value = _shown(name, getattr(settings, name))
            rows.append({"setting": variable, "value": value, "from": origin})
    if session(ctx).as_json:
        emit_json(rows)
        return
    stdout().print(table(rows, ["setting", "value", "from"]))
