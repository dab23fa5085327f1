"""`sensorbase keys`: the organisation's API keys (an admin key)."""

from __future__ import annotations

from urllib.parse import quote

import typer

from sensorbase.cli.client import api
from sensorbase.cli.options import SCOPE_HELP
from sensorbase.cli.output import done, secret, show, table

commands = typer.Typer(
    name="keys",
    help="API keys of the organisation: list, create (shown once), revoke.",
    rich_help_panel="Administration",
    no_args_is_help=True,
)


@commands.command("list")
def list_keys(ctx: typer.Context) -> None:
    """List the organisation's keys (never their secrets)."""
    reply = api(ctx).get("/v1/keys")
    columns = ["id", "name", "scopes", "bucket", "server_admin", "created", "revoked"]
    show(ctx, reply, table(reply["keys"], columns))


@commands.command("create")
def create_key(
    ctx: typer.Context,
    name: str = typer.Option(..., help="A name to recognise the key by."),
    scope: list[str] = typer.Option(..., "--scope", "-s", help=SCOPE_HELP),
    bucket: str | None = typer.Option(None, "--bucket", "-b", help="Limit the key to a bucket."),
) -> None:
    """Create a key. The key is printed once, alone on stdout; store it then."""
    reply = api(ctx).post("/v1/keys", {"name": name, "scopes": scope, "bucket": bucket})
    secret(ctx, reply)


@commands.command("revoke")
def revoke_key(
    ctx: typer.Context, key_id: str = typer.Argument(..., help="The key's id (see keys list).")
) -> None:
    """Revoke a key: it is refused from the next request on."""
    api(ctx).delete(f"/v1/keys/{quote(key_id, safe='')}")
    done(ctx, {"revoked": key_id}, f"Revoked key '{key_id}'.")
