"""`sensorbase import`: a CSV, NDJSON or Parquet file sent to /v1/write in batches (each batch
all or nothing unless --partial), with a progress bar; what `sensorbase export` wrote comes
back in. The format is the file's extension (or --format); any other extension is refused
rather than read as CSV. Files are read a batch at a time, never whole."""

from __future__ import annotations

import csv
import io
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import IO, Annotated, Any

import msgspec
import typer
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

from sensorbase.cli.client import CliError, session
from sensorbase.cli.output import emit_json, stderr
from sensorbase.cli.write import (
    Importer,
    Layout,
    PartialOption,
    PrecisionOption,
    SourceOption,
    _from_command_line,
    _open,
    _query,
    _rejected,
)
from sensorbase.cli.zones import AssumeTzOption, with_zone, zone

commands = typer.Typer()

FORMATS = {".csv": "csv", ".ndjson": "ndjson", ".jsonl": "ndjson", ".parquet": "parquet"}
IntoOption = Annotated[
    str | None,
    typer.Option(
        "--into",
        "--bucket",
        "-b",
        envvar="SENSORBASE_BUCKET",
        help="The bucket every point goes to: given on the command line, it wins over the "
        "file's bucket column (SENSORBASE_BUCKET only fills in for points naming none).",
        show_default=False,
    ),
]


def format_of(file: str, given: str | None) -> str:
    if given is not None:
        if given not in ("csv", "ndjson", "parquet"):
            raise typer.BadParameter("must be csv, ndjson or parquet", param_hint="--format")
        return given
    if file == "-":
        return "csv"
    suffix = Path(file).suffix.lower()
    if suffix in FORMATS:
        return FORMATS[suffix]
    raise typer.BadParameter(
        f"cannot import {suffix or 'extension-less'} files: import reads .csv, .ndjson (or "
        ".jsonl) and .parquet files (or give --format)",
        param_hint="FILE",
    )


def ndjson_points(
    raw: IO[bytes], into: bool
) -> Iterator[tuple[int, str, dict[str, Any] | str]]:  # fmt: skip
    """(line, "", point or why it is none) per line of an NDJSON file, read line by line."""
    decode = msgspec.json.Decoder().decode
    for number, line in enumerate(raw, start=1):
        if not line.strip():
            continue
        try:
            point = decode(line)
        except msgspec.DecodeError as exc:
            yield number, "", f"not JSON ({exc})"
            continue
        if not isinstance(point, dict):
            yield number, "", "not a JSON object (one point per line)"
            continue
        if into:
            point.pop("bucket", None)
        yield number, "", point


def _progress() -> Progress:
    columns = [
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TimeRemainingColumn(),
    ]
    return Progress(*columns, console=stderr)


@commands.command("import", rich_help_panel="Data")
def import_file(
    ctx: typer.Context,
    file: str = typer.Argument(
        ..., help="A .csv (header row), .ndjson or .parquet file; - reads CSV from stdin."
    ),
    bucket: IntoOption = None,
    source: SourceOption = None,
    field_name: str | None = typer.Option(
        None, "--field", help="The field of a 'value' column.", show_default=False
    ),
    file_format: str | None = typer.Option(
        None,
        "--format",
        help="csv, ndjson or parquet.  [default: from the file's extension]",
        show_default=False,
    ),
    time_column: str = typer.Option("time", help="CSV: the column holding the time."),
    precision: PrecisionOption = None,
    partial: PartialOption = False,
    delimiter: str = typer.Option(",", help="CSV: the delimiter."),
    batch_size: int = typer.Option(5000, min=1, help="Points per write request."),
    assume_tz: AssumeTzOption = None,
) -> None:
    """Import a CSV, NDJSON or Parquet file, in batches, with a progress bar.

    CSV and Parquet columns: `time,value` (name the field with --field) or
    `time,field1,field2,...`, plus optional bucket, source and field columns (Parquet also
    latitude, longitude and meta). NDJSON: one point per line, as `sensorbase write` takes
    it. A point's source wins over --source; --into (-b) given on the command line wins over
    the file's buckets (`sensorbase export`'s file imported into another bucket)."""
    current = session(ctx)
    kind = format_of(file, file_format)
    if kind == "parquet" and file == "-":
        raise typer.BadParameter("Parquet is read from a file, not stdin", param_hint="FILE")
    assumed = zone(assume_tz, "--assume-tz")
    into = bool(bucket) and _from_command_line(ctx, "bucket")
    params = _query(bucket, source, precision, partial)
    importer = Importer(current.api(), params, batch_size, partial, assumed)
    started = time.perf_counter()
    with ExitStack() as stack:
        if file == "-":
            raw, total = sys.stdin.buffer, None
        else:
            raw = stack.enter_context(_open(Path(file)))
            total = Path(file).stat().st_size
        progress = stack.enter_context(_progress())
        task = progress.add_task("0 points", total=total)

        def shown() -> None:
            at = raw.tell() if raw.seekable() else 0
            progress.update(task, completed=at, description=f"{importer.written:,} points")

        if kind == "csv":
            header, rows = _csv_rows(raw, stack, delimiter)
            layout = Layout.of(header, time_column, field_name)
            if layout.bucket is not None and into:
                layout.bucket = None
                stderr.print(
                    f"The file's bucket column is ignored: every point goes to {bucket!r}."
                )
            count = importer.run(rows, layout, progress, task, raw)
        elif kind == "ndjson":
            importer.run_points(ndjson_points(raw, into), "line", shown)
            count = 0
        else:
            from sensorbase.cli.parquet_files import points

            found = points(Path(file), batch_size, field_name)
            rows = _parquet(found, assumed, into)
            importer.run_points(rows, "row", shown)
            count = 0
    elapsed_s = time.perf_counter() - started
    if current.as_json:
        emit_json(
            {
                "written": importer.written,
                "batches": importer.batches,
                "rejected": importer.rejected,
                **({"rows": count} if kind == "csv" else {}),
            }
        )
        return
    rows_said = f" from {count:,} row(s)" if kind == "csv" else ""
    stderr.print(
        f"Imported {importer.written:,} point(s){rows_said} "
        f"in {importer.batches} batch(es), {elapsed_s:.1f} s."
    )
    if importer.rejected:
        _rejected(importer.rejected)


def _parquet(
    found: Iterator[tuple[int, str, dict[str, Any] | str]], assumed: Any, into: bool
) -> Iterator[tuple[int, str, dict[str, Any] | str]]:
    for row, column, point in found:
        if isinstance(point, dict):
            if into:
                point.pop("bucket", None)
            if isinstance(point["time"], str):
                point["time"] = with_zone(point["time"], assumed) or point["time"]
        yield row, column, point


def _csv_rows(raw: IO[bytes], stack: ExitStack, delimiter: str) -> tuple[list[str], Any]:
    """The header row and a CSV reader of the rows after it."""
    text = io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")
    stack.callback(text.detach)  # closing the wrapper must not close stdin
    rows = csv.reader(text, delimiter=delimiter)
    header = next(rows, None)
    if header is None:
        raise CliError("the file is empty: a CSV needs a header row")
    return header, rows
