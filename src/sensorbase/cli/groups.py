"""`sensorbase groups`: sources gathered across buckets under an integer id (`/v1/groups`),
which the Datacooee dialect serves as assets.

A member is named `KEY` (a source key found anywhere in the organisation; the oldest if two
buckets share it) or `BUCKET/KEY`. Keys hold no slash, so the first `/` always splits.
"""

from __future__ import annotations

from typing import Any

import typer

from sensorbase.cli.client import api
from sensorbase.cli.options import YesOption, json_object
from sensorbase.cli.output import done, record, show, table

commands = typer.Typer(
    name="groups",
    help="Groups of sources (Datacooee assets): list, create, show, set-sources, delete.",
    rich_help_panel="Administration",
    no_args_is_help=True,
)

COLUMNS = ["id", "name", "sources", "meta", "created"]
SOURCE_HELP = "A member source: KEY (found in any bucket) or BUCKET/KEY; repeat for several."
GroupId = typer.Argument(..., min=1, metavar="ID", help="The group's id (see groups list).")


def member(spec: str) -> str | dict[str, str]:
    """`senA` → "senA"; `farm/senB` → {"bucket": "farm", "source": "senB"}."""
    bucket, slash, key = spec.partition("/")
    if not slash:
        if not spec.strip():
            raise typer.BadParameter("a source key is empty", param_hint="--source")
        return spec
    if not bucket or not key:
        raise typer.BadParameter(f"'{spec}' is not KEY or BUCKET/KEY", param_hint="--source")
    return {"bucket": bucket, "source": key}


def readable(group: dict[str, Any]) -> dict[str, Any]:
    """A group for a table: its sources as BUCKET/KEY."""
    return {**group, "sources": [f"{s['bucket']}/{s['source']}" for s in group["sources"]]}


def _show_group(ctx: typer.Context, reply: dict[str, Any], title: str | None = None) -> None:
    summary = {k: v for k, v in reply.items() if k != "sources"}
    show(
        ctx, reply, record(summary, title), table(reply["sources"], ["bucket", "source"], "Sources")
    )


@commands.command("list")
def list_groups(ctx: typer.Context) -> None:
    """List the groups of the organisation, with their sources."""
    reply = api(ctx).get("/v1/groups")
    show(ctx, reply, table([readable(g) for g in reply["groups"]], COLUMNS))


@commands.command("create")
def create_group(
    ctx: typer.Context,
    name: str = typer.Option(..., help="Its name (an asset's name)."),
    source: list[str] = typer.Option([], "--source", "-s", help=SOURCE_HELP),
    meta: str | None = typer.Option(None, help='Metadata, a JSON object: \'{"site": "north"}\''),
) -> None:
    """Create a group of sources; the server gives it its id."""
    body = {
        "name": name,
        "meta": json_object(meta, "--meta"),
        "sources": [member(s) for s in source],
    }
    reply = api(ctx).post("/v1/groups", body)
    _show_group(ctx, reply, "Created group")


@commands.command("show")
def show_group(ctx: typer.Context, group_id: int = GroupId) -> None:
    """A group and its sources."""
    _show_group(ctx, api(ctx).get(f"/v1/groups/{group_id}"))


@commands.command("set-sources")
def set_group_sources(
    ctx: typer.Context,
    group_id: int = GroupId,
    source: list[str] = typer.Option([], "--source", "-s", help=SOURCE_HELP),
    clear: bool = typer.Option(False, "--clear", help="Remove every source (give no --source)."),
) -> None:
    """Replace the sources of a group with those given."""
    if bool(source) == clear:
        raise typer.BadParameter(
            "give the new sources with --source, or --clear to remove them all",
            param_hint="--source",
        )
    reply = api(ctx).put(f"/v1/groups/{group_id}/sources", {"sources": [member(s) for s in source]})
    _show_group(ctx, reply, "Updated group")


@commands.command("delete")
def delete_group(ctx: typer.Context, group_id: int = GroupId, yes: YesOption = False) -> None:
    """Delete a group (its sources and their data stay)."""
    if not yes:
        typer.confirm(f"Delete group {group_id}?", abort=True)
    api(ctx).delete(f"/v1/groups/{group_id}")
    done(ctx, {"deleted": "group", "id": group_id}, f"Deleted group {group_id}.")
