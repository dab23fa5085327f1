"""What the CLI prints: with --json the server's reply as JSON on stdout (for scripts),
otherwise rich tables. Messages meant for a person go to stderr, so stdout stays pipeable."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Sequence
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from sensorbase.cli.client import session

stderr = Console(stderr=True, highlight=False)


def stdout() -> Console:
    """A console on the current stdout: the terminal's width, or unbounded when piped or
    redirected, so that no table cell is folded in a file."""
    return Console(highlight=False, width=None if sys.stdout.isatty() else 1_000_000)


def cell(value: Any) -> str:
    """A value as a table cell: lists comma-joined, mappings as compact JSON, None empty."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple):
        return ", ".join(cell(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":")) if value else ""
    if isinstance(value, float):
        return number(value)
    return str(value)


def number(value: float) -> str:
    """A float as a person reads it: to 15 significant digits, where the exact value needs 16
    or 17 (1.1 * 3 is 3.3000000000000003 in binary: shown 3.3; --json keeps it exact)."""
    short = format(value, ".15g")
    return str(value) if float(short) == value else short


def table(
    rows: Iterable[dict[str, Any]], columns: Sequence[str], title: str | None = None
) -> Table:
    out = Table(title=title, title_justify="left", header_style="bold")
    for name in columns:
        out.add_column(name, overflow="fold")  # a long id or time wraps; it is never cut
    for row in rows:
        out.add_row(*(escape(cell(row.get(c))) for c in columns))
    return out


def record(item: dict[str, Any], title: str | None = None) -> Table:
    """One object as a two-column table; nested mappings flattened as `stats.points`."""
    out = Table(title=title, title_justify="left", show_header=False, box=None)
    out.add_column(overflow="fold")
    out.add_column(overflow="fold")
    for name, value in item.items():
        if isinstance(value, dict) and value and name != "meta":
            for inner, v in value.items():
                out.add_row(f"[bold]{escape(name)}.{escape(str(inner))}[/]", escape(cell(v)))
        else:
            out.add_row(f"[bold]{escape(name)}[/]", escape(cell(value)))
    return out


def emit_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, ensure_ascii=False))


def show(ctx: typer.Context, data: Any, *renderables: Any) -> None:
    """`data` as JSON under --json, else the renderables (tables, text) on stdout."""
    if session(ctx).as_json:
        emit_json(data)
        return
    for item in renderables:
        stdout().print(item)


def paged(ctx: typer.Context, reply: dict[str, Any], noun: str) -> None:
    """Tell a person (not a script) that a list goes on past this page."""
    shown, total = len(reply[noun]), int(reply.get("total", 0))
    if not session(ctx).as_json and shown < total:
        start = int(reply.get("offset", 0))
        stderr.print(f"{noun} {start + 1}-{start + shown} of {total}; see --offset and --limit")


def done(ctx: typer.Context, data: dict[str, Any], message: str) -> None:
    """The outcome of a command the server answers with no body (delete, revoke)."""
    if session(ctx).as_json:
        emit_json(data)
    else:
        stderr.print(message)


def secret(ctx: typer.Context, reply: dict[str, Any], where: str = "") -> None:
    """A newly created key: its token alone on stdout (`KEY=$(sensorbase keys create ...)`),
    and on stderr the reminder that it is shown once."""
    if session(ctx).as_json:
        emit_json(reply)
        return
    scopes = ", ".join(reply.get("scopes", []))
    limit = f" in bucket '{reply['bucket']}'" if reply.get("bucket") else ""
    stderr.print(
        f"Created key '{escape(str(reply.get('name')))}'{escape(where)} (id {reply.get('id')}, "
        f"scopes {scopes}{limit}). [bold yellow]It is shown once; store it now:[/]"
    )
    typer.echo(reply["key"])
