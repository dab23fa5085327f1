"""`sensorbase query` (GET /v1/query with its parameters) and `sensorbase export` (a query's
raw points to CSV, NDJSON or Parquet, following next_cursor from page to page)."""

from __future__ import annotations

import csv
import sys
from contextlib import ExitStack
from pathlib import Path
from typing import IO, Annotated, Any

import msgspec
import typer
from rich.progress import Progress, SpinnerColumn, TextColumn

from sensorbase.cli.client import CliError, api, session
from sensorbase.cli.names import check_fields, suggest_source
from sensorbase.cli.options import MaybeBucketOption
from sensorbase.cli.output import emit_json, stderr, stdout, table
from sensorbase.cli.zones import AssumeTzOption, hint_assume_tz, shown_in, with_zone, zone

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
        None,
        "--aggregate",
        "-a",
        help="min, max, avg, sum, count, first, last (from chunk summaries); stddev, spread, "
        "median, p0-p100 (p90, p99.9), delta, increase, rate (per second), integral (exact, "
        "from every point); repeat or a,b.",
    ),
    every: str | None = typer.Option(
        None, help="Aggregate per bucket of time: 30s, 15m, 1h, 1d, 1w, 1mo, 1y."
    ),
    fill: str | None = typer.Option(
        None,
        help="Empty buckets (with --every): none (default: left out), null, previous, linear, "
        "or a number.",
        show_default=False,
    ),
    integral_unit: str | None = typer.Option(
        None,
        "--integral-unit",
        help="Time unit of --aggregate integral: 1s (default), 1h (kWh from kW).",
        show_default=False,
    ),
    tz: str | None = typer.Option(
        None, help="IANA time zone of day, week and month buckets, and of the table's times."
    ),
    assume_tz: AssumeTzOption = None,
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
    assumed = zone(assume_tz, "--assume-tz")
    shown = zone(tz, "--tz")
    start, end = with_zone(start, assumed), with_zone(end, assumed)
    client = api(ctx)
    params = parameters(
        bucket=bucket, source=source, field=field, start=start, end=end, last=last, mode=mode,
        aggregate=aggregate, every=every, fill=fill, integral_unit=integral_unit, tz=tz,
        limit=limit, order=order, cursor=cursor, format=output,
    )  # fmt: skip
    try:
        reply = client.request("GET", "/v1/query", params=params)
    except CliError as exc:
        suggest_source(exc, client, bucket, source or [])
        exc.hint = exc.hint or hint_assume_tz(exc.problem)
        raise
    body = reply.json() if output != "csv" else {}
    if field and output != "csv" and mode != "latest":
        check_fields(client, bucket, source or [], field, body)
    if output == "csv":
        typer.echo(reply.text, nl=False)
        return
    if output == "json" or session(ctx).as_json:
        emit_json(body)
        return
    rows = rows_of(body)
    for row in rows:
        if "time" in row:
            row["time"] = shown_in(row["time"], shown)
    columns = list(dict.fromkeys(name for row in rows for name in row))
    if rows:
        stdout().print(table(rows, columns))
    else:
        stderr.print("No points match.")
    if body.get("next_cursor"):
        stderr.print(f"More points follow: add --cursor {body['next_cursor']}", soft_wrap=True)


def _format_of(output: Path | None) -> str:
    """The format an --output name asks for: .csv (or no suffix, or stdout) CSV, .ndjson and
    .jsonl NDJSON, .parquet Parquet; any other suffix (.xlsx) is refused, not written as CSV."""
    suffix = output.suffix.lower() if output is not None else ""
    if suffix in ("", ".csv"):
        return "csv"
    if suffix in (".ndjson", ".jsonl"):
        return "ndjson"
    if suffix == ".parquet":
        return "parquet"
    raise typer.BadParameter(
        f"cannot write {suffix} files: export writes csv, ndjson or parquet (name the file "
        ".csv, .ndjson or .parquet, or give --format)",
        param_hint="--output",
    )


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
        help="csv (bucket,source,field,time,value), ndjson (one point per line, as "
        "`sensorbase write` takes it, with position and metadata) or parquet (the same "
        "columns, typed, with latitude, longitude and meta). Default: from the --output "
        "name, else csv.",
        show_default=False,
    ),
    page_size: int = typer.Option(10_000, min=1, help="Points per request."),
    assume_tz: AssumeTzOption = None,
) -> None:
    """Export a query's raw points, every page of them, to CSV, NDJSON or Parquet (what
    `sensorbase import` reads back)."""
    if file_format is None:
        file_format = _format_of(output)
    if file_format not in ("csv", "ndjson", "parquet"):
        raise typer.BadParameter("must be csv, ndjson or parquet", param_hint="--format")
    if file_format == "parquet" and output is None:
        raise typer.BadParameter(
            "Parquet is written to a file: give --output", param_hint="--format"
        )
    assumed = zone(assume_tz, "--assume-tz")
    start, end = with_zone(start, assumed), with_zone(end, assumed)
    client = api(ctx)
    params = parameters(
        bucket=bucket, source=source, field=field, start=start, end=end, last=last, order=order,
        limit=page_size, mode="raw",
    )  # fmt: skip
    points = pages = 0
    # Written beside the output and renamed over it once the last page is in: a failed export
    # leaves no file (and no header-only one), and never a half of the one it would replace.
    partial_file = output.with_name(f".{output.name}.part") if output is not None else None
    with ExitStack() as stack:
        if partial_file is not None:
            stack.callback(partial_file.unlink, missing_ok=True)
        parquet = None
        if file_format == "parquet" and partial_file is not None:
            from sensorbase.cli.parquet_files import PointsWriter

            parquet = PointsWriter(partial_file)
        sink: IO[str] = (
            stack.enter_context(partial_file.open("w", encoding="utf-8", newline=""))
            if partial_file is not None and parquet is None
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
            try:
                reply = client.get("/v1/query", page)
            except CliError as exc:
                suggest_source(exc, client, bucket, source or [])
                exc.hint = exc.hint or hint_assume_tz(exc.problem)
                raise
            pages += 1
            if parquet is not None:
                parquet.write(reply["series"])
            for series in reply["series"]:
                found = series.get("points", [])
                points += len(found)
                if file_format == "csv":
                    b, s, f = series["bucket"], series["source"], series["field"]
                    writer.writerows([b, s, f, p["time"], p["value"]] for p in found)
                elif file_format == "ndjson":
                    sink.writelines(encode(_point_line(series, p)).decode() + "\n" for p in found)
            progress.update(task, description=f"{points:,} points, {pages} page(s)")
            cursor = reply.get("next_cursor")
            if not cursor:
                break
        if partial_file is not None and output is not None:
            if parquet is not None:
                parquet.close()
            else:
                sink.close()
            partial_file.replace(output)
    where = str(output) if output is not None else "stdout"
    if session(ctx).as_json and output is not None:
        emit_json({"points": points, "pages": pages, "format": file_format, "output": where})
    else:
        stderr.print(f"Exported {points:,} point(s) in {pages} page(s) to {where}.")
