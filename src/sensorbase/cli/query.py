"""`sensorbase query` (GET /v1/query with its parameters) and `sensorbase export` (a query's
raw points to CSV or NDJSON, following next_cursor from page to page)."""

from __future__ import annotations

import csv
import sys
from contextlib import ExitStack
from pathlib import Path
from typing import IO, Annotated, Any

import msgspec
import typer
from rich.progress import Progress, SpinnerColumn, TextColumn

from sensorbase.cli.client import api, session
from sensorbase.cli.options import MaybeBucketOption
from sensorbase.cli.output import emit_json, stderr, stdout, table

commands = typer.Typer()

SourcesOption = Annotated[
    list[str] | None, typer.Option("--source", help="Source key; repeat for several.")
]
FieldsOption = Annotated[
    list[str] | None, typer.Option("--field", "-f", help="Field name; repeat for several.")
]
StartOption = Annotated[
    str | None, typer.Option(help="Start (inclusive): ISO 8601 with a zone, or epoch.")
]
EndOption = Annotated[str | None, typer.Option(help="End (exclusive): ISO 8601 or epoch.")]
LastOption = Annotated[
    str | None, typer.Option(help="A period ending now instead of --start: 15m, 6h, 7d.")
]
OrderOption = Annotated[str | None, typer.Option(help="asc or desc.", show_default=False)]

CSV_COLUMNS = ["bucket", "source", "field", "time", "value"]


def parameters(**given: Any) -> list[tuple[str, str]]:
    """Query parameters from options: lists repeated, unset ones left out."""
    out: list[tuple[str, str]] = []
    for name, value in given.items():
        if value is None:
            continue
        for item in value if isinstance(value, list) else [value]:
            out.append((name, str(item)))
    return out


def rows_of(reply: dict[str, Any]) -> list[dict[str, Any]]:
    """A query reply flattened: one row per point, or per aggregate (bucket)."""
    rows: list[dict[str, Any]] = []
    for series in reply.get("series", []):
        where = {"bucket": series["bucket"], "source": series["source"], "field": series["field"]}
        if series.get("unit"):
            where["unit"] = series["unit"]
        if "aggregates" in series:
            rows.append({**where, **series["aggregates"]})
        for item in series.get("buckets", []) + series.get("points", []):
            rows.append({**where, **item})
    return rows


@commands.command(rich_help_panel="Data")
def query(
    ctx: typer.Context,
    bucket: MaybeBucketOption = None,
    source: SourcesOption = None,
    field: FieldsOption = None,
    start: StartOption = None,
    end: EndOption = None,
    last: LastOption = None,
    mode: str | None = typer.Option(
        None, help="raw (default), latest or aggregate.", show_default=False
    ),
    aggregate: list[str] | None = typer.Option(
        None, "--aggregate", "-a", help="min, max, avg, sum, count, first or last; repeat."
    ),
    every: str | None = typer.Option(
        None, help="Aggregate per bucket of time: 30s, 15m, 1h, 1d, 1w, 1mo, 1y."
    ),
    tz: str | None = typer.Option(None, help="IANA time zone of day, week and month buckets."),
    limit: int | None = typer.Option(
        None, help="Most points (raw), or points per series (latest).", show_default=False
    ),
    order: OrderOption = None,
    cursor: str | None = typer.Option(
        None, help="Resume after the previous page (its next_cursor).", show_default=False
    ),
    output: str | None = typer.Option(
        None,
        "--format",
        help="json or csv: print the server's reply as it is (default: a table).",
        show_default=False,
    ),
) -> None:
    """Query points: raw ranges, latest values, aggregates (GET /v1/query)."""
    params = parameters(
        bucket=bucket, source=source, field=field, start=start, end=end, last=last, mode=mode,
        aggregate=aggregate, every=every, tz=tz, limit=limit, order=order, cursor=cursor,
        format=output,
    )  # fmt: skip
    reply = api(ctx).request("GET", "/v1/query", params=params)
    if output == "csv":
        typer.echo(reply.text, nl=False)
        return
    body = reply.json()
    if output == "json" or session(ctx).as_json:
        emit_json(body)
        return
    rows = rows_of(body)
    columns = list(dict.fromkeys(name for row in rows for name in row))
    if rows:
        stdout().print(table(rows, columns))
    else:
        stderr.print("No points match.")
    if body.get("next_cursor"):
        stderr.print(f"More points follow: add --cursor {body['next_cursor']}", soft_wrap=True)


def _point_line(series: dict[str, Any], point: dict[str, Any]) -> dict[str, Any]:
    return {
        "bucket": series["bucket"],
        "source": series["source"],
        "field": series["field"],
        **point,
    }


@commands.command(rich_help_panel="Data")
def export(
    ctx: typer.Context,
    bucket: MaybeBucketOption = None,
    source: SourcesOption = None,
    field: FieldsOption = None,
    start: StartOption = None,
    end: EndOption = None,
    last: LastOption = None,
    order: OrderOption = None,
    output: Path | None = typer.Option(
        None, "--output", "-o", help="The file to write (default: stdout).", show_default=False
    ),
    file_format: str | None = typer.Option(
        None,
        "--format",
        help="csv (bucket,source,field,time,value) or ndjson (one point per line, as "
        "`sensorbase write` takes it, with position and metadata). Default: from the "
        "--output name, else csv.",
        show_default=False,
    ),
    page_size: int = typer.Option(10_000, min=1, help="Points per request."),
) -> None:
    """Export a query's raw points, every page of them, to CSV or NDJSON."""
    if file_format is None:
        named = str(output or "")
        file_format = "ndjson" if named.endswith((".ndjson", ".jsonl")) else "csv"
    if file_format not in ("csv", "ndjson"):
        raise typer.BadParameter("must be csv or ndjson", param_hint="--format")
    client = api(ctx)
    params = parameters(
        bucket=bucket, source=source, field=field, start=start, end=end, last=last, order=order,
        limit=page_size, mode="raw",
    )  # fmt: skip
    points = pages = 0
    with ExitStack() as stack:
        sink: IO[str] = (
            stack.enter_context(output.open("w", encoding="utf-8", newline=""))
            if output is not None
            else sys.stdout
        )
        writer = csv.writer(sink, lineterminator="\n")
        encode = msgspec.json.Encoder().encode
        if file_format == "csv":
            writer.writerow(CSV_COLUMNS)
        progress = stack.enter_context(
            Progress(SpinnerColumn(), TextColumn("{task.description}"), console=stderr)
        )
        task = progress.add_task("0 points")
        cursor = None
        while True:
            page = params + ([("cursor", cursor)] if cursor else [])
            reply = client.get("/v1/query", page)
            pages += 1
            for series in reply["series"]:
                found = series.get("points", [])
                points += len(found)
                if file_format == "csv":
                    b, s, f = series["bucket"], series["source"], series["field"]
                    writer.writerows([b, s, f, p["time"], p["value"]] for p in found)
                else:
                    sink.writelines(encode(_point_line(series, p)).decode() + "\n" for p in found)
            progress.update(task, description=f"{points:,} points, {pages} page(s)")
            cursor = reply.get("next_cursor")
            if not cursor:
                break
    where = str(output) if output is not None else "stdout"
    if session(ctx).as_json and output is not None:
        emit_json({"points": points, "pages": pages, "format": file_format, "output": where})
    else:
        stderr.print(f"Exported {points:,} point(s) in {pages} page(s) to {where}.")
