"""`sensorbase token` (OAuth2 client_credentials) and `sensorbase whoami`."""

from __future__ import annotations

import typer

from sensorbase.cli.client import CliError, api, session
from sensorbase.cli.output import record, show, stderr

commands = typer.Typer()


@commands.command(rich_help_panel="Administration")
def token(
    ctx: typer.Context,
    client_id: str | None = typer.Option(
        None, help="Key id (default: the id inside --key).", show_default=False
    ),
    client_secret: str | None = typer.Option(
        None, help="Key secret (default: the secret inside --key).", show_default=False
    ),
    refresh: str | None = typer.Option(
        None, help="Use this refresh token instead (refresh_token grant).", show_default=False
    ),
) -> None:
    """Exchange a key for a short-lived access token (OAuth2 client_credentials).

    Prints the access token alone on stdout; under --json the whole reply, with the refresh
    token."""
    from sensorbase.auth.keys import split_token  # here: importing auth costs 0.3 s

    current = session(ctx)
    if refresh is not None:
        form = {"grant_type": "refresh_token", "refresh_token": refresh}
        auth = None
    else:
        parts = split_token(current.key or "")
        client_id = client_id or (parts[0] if parts else None)
        client_secret = client_secret or (parts[1] if parts else None)
        if not client_id or not client_secret:
            raise CliError(
                "no client credentials: pass --key sb_... (or set SENSORBASE_KEY), "
                "or --client-id and --client-secret"
            )
        form = {"grant_type": "client_credentials"}
        auth = (client_id, client_secret)
    # The exchange authenticates with the credentials in the form, not the bearer key.
    reply = api(ctx).request("POST", "/v1/auth/token", bearer=False, data=form, auth=auth).json()
    if current.as_json:
        show(ctx, reply)
        return
    stderr.print(
        f"Access token valid for {reply['expires_in']} s (until {reply['expiration_date']}):"
    )
    typer.echo(reply["access_token"])


@commands.command(rich_help_panel="Administration")
def whoami(ctx: typer.Context) -> None:
    """The organisation, scopes and bucket of the key in use."""
    reply = api(ctx).get("/v1/whoami")
    show(ctx, reply, record(reply))
