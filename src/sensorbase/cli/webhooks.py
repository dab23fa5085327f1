"""`sensorbase webhooks`: URLs told of events, signed with their secret (`/v1/webhooks`;
docs/alerts.md shows how a receiver checks the signature)."""

from __future__ import annotations

import typer

from sensorbase.cli.alerts import DELIVERY_COLUMNS, Limit, Status
from sensorbase.cli.client import api
from sensorbase.cli.options import YesOption
from sensorbase.cli.output import done, record, show, table

commands = typer.Typer(
    name="webhooks",
    help="Webhooks: list, create, show, update, deliveries, delete.",
    rich_help_panel="Alerts",
    no_args_is_help=True,
)
COLUMNS = ["key", "url", "events", "bucket", "created"]
EVENTS_HELP = "alert.triggered, alert.resolved, data.received or bucket.updated; repeat."


@commands.command("list")
def list_webhooks(ctx: typer.Context) -> None:
    """List the webhooks."""
    reply = api(ctx).get("/v1/webhooks")
    show(ctx, reply, table(reply["webhooks"], COLUMNS))


@commands.command("create")
def create_webhook(
    ctx: typer.Context,
    url: str = typer.Argument(..., help="The http(s) URL to POST events to."),
    event: list[str] = typer.Option(..., "--event", "-e", help=EVENTS_HELP),
    secret: str | None = typer.Option(None, help="The signing secret (default: one is made)."),
    bucket: str | None = typer.Option(None, help="Only this bucket's events."),
    key: str | None = typer.Option(None, help="Its key (default: one is made)."),
) -> None:
    """Create a webhook; its secret is shown once."""
    body = {"url": url, "events": event, "secret": secret, "bucket": bucket, "key": key}
    reply = api(ctx).post("/v1/webhooks", {k: v for k, v in body.items() if v is not None})
    show(ctx, reply, record(reply, "Created webhook (the secret is shown once)"))


@commands.command("update")
def update_webhook(
    ctx: typer.Context,
    key: str = typer.Argument(..., help="Its key."),
    url: str | None = typer.Option(None, "--to", help="A new http(s) URL to POST events to."),
    event: list[str] | None = typer.Option(None, "--event", "-e", help=EVENTS_HELP),
    secret: str | None = typer.Option(None, help="A new signing secret."),
) -> None:
    """Change a webhook's URL, events or secret: what is not given stays. Deliveries not yet
    made go to the new URL, signed with the new secret."""
    body = {"url": url, "events": event or None, "secret": secret}
    reply = api(ctx).patch(f"/v1/webhooks/{key}", {k: v for k, v in body.items() if v})
    show(ctx, reply, record(reply, "Updated webhook"))


@commands.command("show")
def show_webhook(ctx: typer.Context, key: str = typer.Argument(..., help="Its key.")) -> None:
    """A webhook."""
    reply = api(ctx).get(f"/v1/webhooks/{key}")
    show(ctx, reply, record(reply))


@commands.command("deliveries")
def webhook_deliveries(
    ctx: typer.Context,
    key: str = typer.Argument(..., help="Its key."),
    status: str | None = Status,
    limit: int = Limit,
) -> None:
    """The webhook's delivery log, newest first."""
    params = {"limit": limit, **({"status": status} if status else {})}
    reply = api(ctx).get(f"/v1/webhooks/{key}/deliveries", params=params)
    show(ctx, reply, table(reply["deliveries"], DELIVERY_COLUMNS))


@commands.command("delete")
def delete_webhook(
    ctx: typer.Context, key: str = typer.Argument(..., help="Its key."), yes: YesOption = False
) -> None:
    """Delete a webhook (its delivery log stays)."""
    if not yes:
        typer.confirm(f"Delete webhook {key}?", abort=True)
    api(ctx).delete(f"/v1/webhooks/{key}")
    done(ctx, {"deleted": "webhook", "key": key}, f"Deleted webhook {key}.")
