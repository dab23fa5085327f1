"""`sensorbase buckets`: the named containers of an organisation's sources."""

from __future__ import annotations

from urllib.parse import quote

import typer

from sensorbase.cli.client import api
from sensorbase.cli.options import LimitOption, OffsetOption, YesOption, json_object
from sensorbase.cli.output import done, paged, record, show, table

commands = typer.Typer(
    name="buckets",
    help="Buckets: list, create, show, update (rename, archive, retention), delete.",
    rich_help_panel="Administration",
    no_args_is_help=True,
)

COLUMNS = [
    "key",
    "name",
    "description",
    "status",
    "meta",
    "retention",
    "keep_summaries",
    "created",
]
RETENTION_HELP = (
    "Keep points this long after their time: 90d, 12w, 6h; they then expire (docs/lifecycle.md)."
)
SUMMARIES_HELP = "When points expire, keep each chunk's count/min/max/sum/first/last."


@commands.command("list")
def list_buckets(ctx: typer.Context, limit: LimitOption = 100, offset: OffsetOption = 0) -> None:
    """List the organisation's buckets."""
    reply = api(ctx).get("/v1/buckets", {"limit": limit, "offset": offset})
    show(ctx, reply, table(reply["buckets"], COLUMNS))
    paged(ctx, reply, "buckets")


@commands.command("create")
def create_bucket(
    ctx: typer.Context,
    key: str = typer.Argument(..., help="Its key, as writes and queries name it."),
    name: str | None = typer.Option(None, help="Display name (default: the key)."),
    description: str = typer.Option("", help="Free text."),
    meta: str | None = typer.Option(None, help='Metadata, a JSON object: \'{"site": "north"}\''),
    retention: str | None = typer.Option(None, help=RETENTION_HELP + " Default: forever."),
    keep_summaries: bool = typer.Option(False, "--keep-summaries", help=SUMMARIES_HELP),
) -> None:
    """Create a bucket."""
    body = {
        "key": key,
        "name": name,
        "description": description,
        "meta": json_object(meta, "--meta"),
        "retention": retention,
        "keep_summaries": keep_summaries,
    }
    reply = api(ctx).post("/v1/buckets", body)
    show(ctx, reply, table([reply], COLUMNS, "Created bucket"))


@commands.command("show")
def show_bucket(ctx: typer.Context, key: str = typer.Argument(..., help="The bucket.")) -> None:
    """A bucket with its counts of sources, points and keys."""
    reply = api(ctx).get(f"/v1/buckets/{quote(key, safe='')}")
    show(ctx, reply, record(reply))


@commands.command("update")
def update_bucket(
    ctx: typer.Context,
    key: str = typer.Argument(..., help="The bucket."),
    name: str | None = typer.Option(None, help="A new display name."),
    description: str | None = typer.Option(None, help="A new description."),
    status: str | None = typer.Option(
        None,
        help="active, or archived: an archived bucket refuses every write (any API, MQTT) "
        "and still answers reads.",
    ),
    retention: str | None = typer.Option(None, help=RETENTION_HELP + " 'forever': no retention."),
    keep_summaries: bool | None = typer.Option(
        None, "--keep-summaries/--no-summaries", help=SUMMARIES_HELP, show_default=False
    ),
) -> None:
    """Rename, describe, archive or reactivate a bucket, or change its retention (what is not
    given stays as it is)."""
    if status not in (None, "active", "archived"):
        raise typer.BadParameter("must be active or archived", param_hint="--status")
    body = {
        "name": name,
        "description": description,
        "status": status,
        "keep_summaries": keep_summaries,
    }
    changes: dict[str, object] = {k: v for k, v in body.items() if v is not None}
    if retention is not None:
        changes["retention"] = None if retention == "forever" else retention
    reply = api(ctx).patch(f"/v1/buckets/{quote(key, safe='')}", changes)
    show(ctx, reply, table([reply], COLUMNS, "Updated bucket"))


@commands.command("delete")
def delete_bucket(
    ctx: typer.Context,
    key: str = typer.Argument(..., help="The bucket to delete."),
    yes: YesOption = False,
) -> None:
    """Delete a bucket with its sources and data."""
    if not yes:
        typer.confirm(f"Delete bucket '{key}' and ALL its data?", abort=True)
    api(ctx).delete(f"/v1/buckets/{quote(key, safe='')}")
    done(ctx, {"deleted": "bucket", "key": key}, f"Deleted bucket '{key}'.")
