"""`sensorbase orgs`: organisations (a server administrator's key)."""

from __future__ import annotations

from urllib.parse import quote

import typer

from sensorbase.cli.client import api
from sensorbase.cli.options import SCOPE_HELP, YesOption
from sensorbase.cli.output import done, secret, show, table

commands = typer.Typer(
    name="orgs",
    help="Organisations (tenants): list, create, delete, and give one a key. Server admin.",
    rich_help_panel="Administration",
    no_args_is_help=True,
)


@commands.command("list")
def list_orgs(ctx: typer.Context) -> None:
    """List organisations."""
    reply = api(ctx).get("/v1/orgs")
    show(ctx, reply, table(reply["orgs"], ["key", "name", "created"]))


@commands.command("create")
def create_org(
    ctx: typer.Context,
    key: str = typer.Argument(..., help="Its key (the name used in URLs and commands)."),
    name: str | None = typer.Option(None, help="Display name (default: the key)."),
) -> None:
    """Create an organisation."""
    reply = api(ctx).post("/v1/orgs", {"key": key, "name": name})
    show(ctx, reply, table([reply], ["key", "name", "created"], "Created organisation"))


@commands.command("delete")
def delete_org(
    ctx: typer.Context,
    key: str = typer.Argument(..., help="The organisation to delete."),
    yes: YesOption = False,
) -> None:
    """Delete an organisation with all its buckets, sources, keys and data."""
    if not yes:
        typer.confirm(f"Delete organisation '{key}' and ALL its data?", abort=True)
    api(ctx).delete(f"/v1/orgs/{quote(key, safe='')}")
    done(ctx, {"deleted": "organisation", "key": key}, f"Deleted organisation '{key}'.")


@commands.command("key")
def org_key(
    ctx: typer.Context,
    org: str = typer.Argument(..., help="The organisation."),
    name: str = typer.Option("admin", help="A name to recognise the key by."),
    scope: list[str] = typer.Option(["admin"], "--scope", "-s", help=SCOPE_HELP),
    bucket: str | None = typer.Option(None, "--bucket", "-b", help="Limit the key to a bucket."),
) -> None:
    """Create a key in an organisation (by default its admin key). Shown once."""
    body = {"name": name, "scopes": scope, "bucket": bucket}
    reply = api(ctx).post(f"/v1/orgs/{quote(org, safe='')}/keys", body)
    secret(ctx, reply, f" in organisation '{org}'")
