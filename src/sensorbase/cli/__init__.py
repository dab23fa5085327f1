"""The `sensorbase` command: `serve` runs the server; `recover-key` mints a lost administrator
key offline, in the store itself, and `backup`, `restore`, `dump` and `load` copy and move the
store itself (docs/lifecycle.md); every other command is a client of a running server's native
API (`--url`, `--key`, `--json`), holding no logic the API lacks.

Commands are found, not listed: every module of this package that defines `commands`
(a `typer.Typer`) is added to the root, so a new noun is one new module, e.g. `users.py`:

    commands = typer.Typer(name="users", help="Users of an organisation.", no_args_is_help=True)

    @commands.command("list")
    def list_users(ctx: typer.Context) -> None:
        reply = api(ctx).get("/v1/users")
        show(ctx, reply, table(reply["users"], ["email", "role", "created"]))

A `Typer` with a `name` becomes a group (`sensorbase users list`); one without a name adds its
commands at the top level (`sensorbase write`).
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any

import typer
from typer.core import TyperGroup, TyperOption

from sensorbase import __version__
from sensorbase.cli.client import CliError, Session

_display_type = TyperOption.display_type_rich


def _flag_without_type(self: TyperOption, ctx: Any) -> str | None:
    """typer's rich help prints `<bool>` beside a flag, as if it took a value: a flag shows
    no type (`--json`, not `--json <bool>`)."""
    return None if self.is_flag else _display_type(self, ctx)


TyperOption.display_type_rich = _flag_without_type  # type: ignore[method-assign]

PANELS = ("Server", "Administration", "Data", "Alerts")  # the order of `sensorbase --help`
GLOBAL_FLAGS = ("--json",)
GLOBAL_OPTIONS = ("--url", "--key")


def hoist_global_options(args: list[str]) -> list[str]:
    """Move --url/--key/--json given after a command to the front, so that
    `sensorbase buckets list --json` means `sensorbase --json buckets list`."""
    front: list[str] = []
    rest: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            rest.extend(args[i:])
            break
        if arg in GLOBAL_FLAGS or ("=" in arg and arg.split("=", 1)[0] in GLOBAL_OPTIONS):
            front.append(arg)
        elif arg in GLOBAL_OPTIONS and i + 1 < len(args):
            front.extend(args[i : i + 2])
            i += 1
        else:
            rest.append(arg)
        i += 1
    return front + rest


class RootGroup(TyperGroup):
    """Global options anywhere on the line; a CliError printed readably, exit status 1."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        return super().parse_args(ctx, hoist_global_options(args))

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except CliError as exc:
            exc.show(as_json=isinstance(ctx.obj, Session) and ctx.obj.as_json)
            raise typer.Exit(1) from None


app = typer.Typer(
    cls=RootGroup,
    name="sensorbase",
    help="Sensorbase: self-hosted sensor time series. `sensorbase serve` runs the server; "
    "`sensorbase recover-key` mints a lost administrator key in its store; "
    "`backup`, `restore`, `dump` and `load` copy and move the store itself; "
    "the other commands talk to a running server.",
    no_args_is_help=True,
    rich_markup_mode="markdown",
    pretty_exceptions_show_locals=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"sensorbase {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    url: str = typer.Option(
        "http://127.0.0.1:8000", envvar="SENSORBASE_URL", help="The server to talk to."
    ),
    key: str | None = typer.Option(
        None,
        envvar="SENSORBASE_KEY",
        help="API key (sb_...) or access token.",
        show_default=False,
    ),
    as_json: bool = typer.Option(
        False, "--json", help="Print the server's replies as JSON (for scripts)."
    ),
    version: bool = typer.Option(
        False, "--version", is_eager=True, callback=_version, help="Print the version and exit."
    ),
) -> None:
    current = Session(url, key or None, as_json)
    ctx.obj = current
    ctx.call_on_close(current.close)


def _panel(commands: typer.Typer) -> str | None:
    """The help panel of a command module: its Typer's, else its first command's."""
    for panel in (
        commands.rich_help_panel,
        *(c.rich_help_panel for c in commands.registered_commands),
    ):
        if isinstance(panel, str):
            return panel
    return None


def _add_command_modules() -> None:
    found = []
    for info in pkgutil.iter_modules(__path__):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        commands = getattr(module, "commands", None)
        if isinstance(commands, typer.Typer):
            found.append((_panel(commands), info.name, commands))
    rank = {panel: i for i, panel in enumerate(PANELS)}
    for panel, _, commands in sorted(
        found, key=lambda f: (rank.get(f[0] or "", len(PANELS)), f[1])
    ):
        app.add_typer(commands, rich_help_panel=panel)


_add_command_modules()


def main() -> None:
    app()
