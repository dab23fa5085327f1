"""`sensorbase delete`: the points of a time range of a bucket's series (DELETE /v1/points;
docs/lifecycle.md)."""

from __future__ import annotations

import typer

from sensorbase.cli.client import api
from sensorbase.cli.options import YesOption
from sensorbase.cli.output import done

commands = typer.Typer()


@commands.command("delete", rich_help_panel="Data")
def delete_points(
    ctx: typer.Context,
    bucket: str = typer.Option(..., help="The bucket whose points to delete."),
    start: str = typer.Option(..., help="Inclusive start: ISO 8601 or epoch."),
    end: str = typer.Option(..., help="Exclusive end: ISO 8601 or epoch."),
    source: list[str] | None = typer.Option(None, help="Only this source (repeatable)."),
    field: list[str] | None = typer.Option(None, help="Only this field (repeatable)."),
    yes: YesOption = False,
) -> None:
    """Delete the points of [start, end) of a bucket, or of some of its sources and fields.
    All or nothing: a bad parameter or an unknown source deletes nothing."""
    what = f"bucket '{bucket}'"
    if source:
        what += f", source {', '.join(source)}"
    if field:
        what += f", field {', '.join(field)}"
    if not yes:
        typer.confirm(f"Delete the points of {what} from {start} to {end}?", abort=True)
    params: dict[str, object] = {"bucket": bucket, "start": start, "end": end}
    if source:
        params["source"] = source
    if field:
        params["field"] = field
    reply = api(ctx).request("DELETE", "/v1/points", params=params).json()
    series = len(reply["series"])
    done(
        ctx,
        reply,
        f"Deleted the points of {what} in [{reply['start']}, {reply['end']}) ({series} series).",
    )
