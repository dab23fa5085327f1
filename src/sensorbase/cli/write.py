"""`sensorbase write` (a JSON or NDJSON body to /v1/write, as is), and what `sensorbase import`
(importing.py) sends files with: the CSV layout and the batches of points sent to /v1/write."""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Annotated, Any
from zoneinfo import ZoneInfo

import msgspec
import typer

from sensorbase.cli.client import Api, CliError, api, describe, session
from sensorbase.cli.ndjson_batches import numbered_lines, send_batches
from sensorbase.cli.output import emit_json, stderr
from sensorbase.cli.zones import hint_assume_tz, with_zone

commands = typer.Typer()

SourceOption = Annotated[
    str | None,
    typer.Option(help="Default source of points that name none.", show_default=False),
]
PrecisionOption = Annotated[
    str | None,
    typer.Option(help="Unit of numeric (epoch) times: s, ms, us or ns.", show_default=False),
]
PartialOption = Annotated[
    bool,
    typer.Option(help="Store the good points and list the bad ones (default: all or nothing)."),
]
MaybeBucket = Annotated[
    str | None,
    typer.Option(
        "--bucket",
        "-b",
        envvar="SENSORBASE_BUCKET",
        help="Default bucket of points that name none.",
        show_default=False,
    ),
]
SHOWN_REJECTS = 20


def _query(
    bucket: str | None, source: str | None, precision: str | None, partial: bool
) -> dict[str, str]:
    params = {"bucket": bucket, "source": source, "precision": precision}
    found = {name: value for name, value in params.items() if value}
    if partial:
        found["partial"] = "true"
    return found


def is_ndjson(body: bytes, name: str) -> bool:
    """NDJSON by extension (.ndjson, .jsonl), else when the body is not one JSON document."""
    if name.endswith((".ndjson", ".jsonl")):
        return True
    if name.endswith(".json") or body.lstrip()[:1] != b"{":
        return False
    try:
        msgspec.json.decode(body)
    except msgspec.DecodeError:
        return True
    return False


def _rejected(items: list[str]) -> None:
    stderr.print(f"[yellow]{len(items)} point(s) refused:[/]")
    for item in items[:SHOWN_REJECTS]:
        stderr.print(f"  • {item}", soft_wrap=True, markup=False)
    if len(items) > SHOWN_REJECTS:
        stderr.print(f"  … and {len(items) - SHOWN_REJECTS} more (all of them under --json)")


@commands.command(rich_help_panel="Data")
def write(
    ctx: typer.Context,
    file: str = typer.Argument(
        "-", help="A JSON or NDJSON file of points (docs/native-api.md); - reads stdin."
    ),
    bucket: MaybeBucket = None,
    source: SourceOption = None,
    precision: PrecisionOption = None,
    partial: PartialOption = False,
    ndjson: bool | None = typer.Option(
        None, help="The body is NDJSON (default: guessed from the name, then the content)."
    ),
    batch_size: int = typer.Option(
        5000, min=1, help="NDJSON: lines per write request, each batch atomic."
    ),
) -> None:
    """Write points, exactly as POST /v1/write takes them (NDJSON in batches)."""
    body = sys.stdin.buffer.read() if file == "-" else _read(Path(file))
    if ndjson is None:
        ndjson = is_ndjson(body, file)
    content_type = "application/x-ndjson" if ndjson else "application/json"
    params = _query(bucket, source, precision, partial)
    lines = numbered_lines(body) if ndjson else []
    if len(lines) > batch_size:
        done = send_batches(api(ctx), lines, params, batch_size)
        if session(ctx).as_json:
            emit_json({"written": done.written, "batches": done.batches, "rejected": done.rejected})
            return
        stderr.print(f"Wrote {done.written} point(s) in {done.batches} batch(es).")
        if done.rejected:
            _rejected(done.rejected)
        return
    reply = api(ctx).send("/v1/write", body, content_type, params)
    if session(ctx).as_json:
        emit_json(reply)
        return
    stderr.print(f"Wrote {reply['written']} point(s) in {reply['series']} series.")
    if reply.get("rejected"):
        _rejected([describe(item) for item in reply["rejected"]])


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise typer.BadParameter(str(exc), param_hint="FILE") from None


# --- import ------------------------------------------------------------------------------


@dataclass
class Layout:
    """Which CSV column holds what. Columns other than time, bucket, source, field and value
    are fields of their own name (`time,temperature,humidity`); a `value` column's field is
    named by a `field` column or --field (`time,value`)."""

    header: list[str]
    time: int
    bucket: int | None = None
    source: int | None = None
    field_name: int | None = None
    value_field: str | None = None
    values: list[tuple[int, str | None]] = field(default_factory=list)

    @classmethod
    def of(cls, header: list[str], time_column: str, field_option: str | None) -> Layout:
        names = [name.strip() for name in header]
        if time_column not in names:
            raise CliError(
                f"the CSV has no '{time_column}' column (its columns: {', '.join(names)}); "
                "see --time-column"
            )
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise CliError(f"the CSV repeats the column(s) {', '.join(duplicates)}")
        found = cls(names, names.index(time_column))
        for i, name in enumerate(names):
            if i == found.time:
                continue
            if name in ("bucket", "source"):
                setattr(found, name, i)
            elif name == "field":
                found.field_name = i
            elif name == "value":
                found.values.append((i, None))  # the field comes from the row or --field
            elif name:
                found.values.append((i, name))
        has_value = any(n is None for _, n in found.values)
        if has_value and found.field_name is None and field_option is None:
            raise CliError(
                "the CSV has a 'value' column: name its field with --field (or a 'field' column)"
            )
        if field_option is not None and not has_value:
            raise CliError("--field names the 'value' column, but the CSV has none")
        if not found.values:
            raise CliError("the CSV has no value columns besides the time")
        found.value_field = field_option
        return found


def _time(text: str) -> str | int | float:
    """An epoch number stays a number (with --precision); anything else goes as text."""
    try:
        return int(text)
    except ValueError:
        pass
    try:
        number = float(text)
    except ValueError:
        return text
    return number if math.isfinite(number) else text


def _value(text: str) -> float | None:
    """A cell as a finite number, or None."""
    try:
        number = float(text)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


@dataclass
class Batch:
    points: list[dict[str, Any]] = field(default_factory=list)
    where: list[tuple[int, str]] = field(default_factory=list)  # (line, column) per point
    not_numbers: list[str] = field(default_factory=list)  # cells no point could be made of
    first_line: int = 0
    last_line: int = 0
    unit: str = "line"  # what a file counts: a CSV's and an NDJSON's lines, a Parquet's rows
    unreadable: str = "cell(s) are not numbers"  # what a CSV's not_numbers are

    @property
    def lines(self) -> str:
        return f"{self.unit}s {self.first_line}-{self.last_line}"

    def locate(self, item: dict[str, Any]) -> str:
        """A server's problem about point `index` as `line 12, column 'humidity': reason`."""
        index = item.get("index")
        if not isinstance(index, int) or not 0 <= index < len(self.where):
            return describe(item)
        line, column = self.where[index]
        if not column:  # an NDJSON line: the server's field names the part of it
            return f"{self.unit} {line}, " + describe({**item, "index": None})
        what = item.get("field")
        if what in ("time", "bucket", "source", "field"):
            column = str(what)
        return f"{self.unit} {line}, column '{column}': {item.get('reason', 'invalid')}"


class Importer:
    def __init__(
        self,
        client: Api,
        params: dict[str, str],
        batch_size: int,
        partial: bool,
        assumed: ZoneInfo | None = None,
    ) -> None:
        self.assumed = assumed
        self.client = client
        self.params = params
        self.batch_size = batch_size
        self.partial = partial
        self.batches = 0
        self.written = 0
        self.rejected: list[str] = []

    def send(self, batch: Batch) -> None:
        if not batch.points and not batch.not_numbers:
            return
        self.batches += 1
        if batch.not_numbers:
            if not self.partial:
                raise self.refused(
                    CliError(f"{len(batch.not_numbers)} {batch.unreadable}"),
                    batch,
                )
            self.rejected.extend(batch.not_numbers)
        if not batch.points:
            return
        body = msgspec.json.encode({"points": batch.points})
        try:
            reply = self.client.send("/v1/write", body, "application/json", self.params)
        except CliError as exc:
            raise self.refused(exc, batch) from None
        self.written += int(reply["written"])
        self.rejected.extend(batch.locate(item) for item in reply.get("rejected", []))

    def refused(self, exc: CliError, batch: Batch) -> CliError:
        exc.message += (
            f" (batch {self.batches}, {batch.lines}: nothing of it was stored; "
            f"{self.written} point(s) of earlier batches were)"
        )
        errors = (exc.problem or {}).get("errors") or []
        if errors:
            exc.items = [batch.locate(item) for item in errors]
        elif batch.not_numbers:
            exc.items = batch.not_numbers
        if self.rejected:  # refused by earlier batches under --partial: said too
            exc.items = [*exc.items, *(f"{item} (refused earlier)" for item in self.rejected)]
        exc.hint = exc.hint or hint_assume_tz(exc.problem)
        return exc

    def run_points(
        self,
        items: Iterable[tuple[int, str, dict[str, Any] | str]],
        unit: str,
        shown: Callable[[], None],
    ) -> None:
        """Send the points of (line or row, column, point or why there is none) items in
        batches; `shown` updates the progress after each."""
        unreadable = "value(s) cannot be points"
        batch = Batch(unit=unit, unreadable=unreadable)
        for line, column, point in items:
            batch.first_line = batch.first_line or line
            batch.last_line = line
            if isinstance(point, str):
                where = f"column '{column}': " if column else ""
                batch.not_numbers.append(f"{unit} {line}, {where}{point}")
                continue
            batch.points.append(point)
            batch.where.append((line, column))
            if len(batch.points) >= self.batch_size:
                self.send(batch)
                batch = Batch(unit=unit, unreadable=unreadable)
                shown()
        self.send(batch)
        shown()

    def run(self, rows: Any, layout: Layout, progress: Any, task: Any, raw: IO[bytes]) -> int:
        """Send every row's points; returns the number of rows read."""
        batch = Batch()
        count = 0
        width = len(layout.header)
        for row in rows:
            line = rows.line_num
            if not any(cell.strip() for cell in row):
                continue
            batch.first_line = batch.first_line or line
            batch.last_line = line
            if len(row) != width:
                short = f"line {line} has {len(row)} cells; the header has {width}"
                if self.partial:  # a bad row like a bad cell: listed, and the rest goes on
                    batch.not_numbers.append(short)
                    continue
                self.batches += 1
                raise self.refused(CliError(short), batch)
            count += 1
            moment = _time(row[layout.time].strip())
            if isinstance(moment, str):
                moment = with_zone(moment, self.assumed) or moment
            base: dict[str, Any] = {"time": moment}
            for key, at in (("bucket", layout.bucket), ("source", layout.source)):
                if at is not None and row[at].strip():
                    base[key] = row[at].strip()
            for index, column_field in layout.values:
                text = row[index].strip()
                if not text:
                    continue
                name = column_field
                if name is None:  # the `value` column
                    cell = row[layout.field_name].strip() if layout.field_name is not None else ""
                    name = cell or layout.value_field or ""
                value = _value(text)
                if value is None:
                    batch.not_numbers.append(
                        f"line {line}, column '{layout.header[index]}': '{text}' is not a number"
                    )
                    continue
                batch.points.append({**base, "field": name, "value": value})
                batch.where.append((line, layout.header[index]))
            if len(batch.points) >= self.batch_size:
                self.send(batch)
                batch = Batch()
                progress.update(task, completed=_tell(raw), description=f"{self.written:,} points")
        self.send(batch)
        progress.update(task, completed=_tell(raw), description=f"{self.written:,} points")
        return count


def _tell(raw: IO[bytes]) -> int:
    try:
        return raw.tell()
    except OSError:
        return 0


def _from_command_line(ctx: typer.Context, name: str) -> bool:
    # By name: typer carries its own copy of click, whose enum is not click's.
    found = ctx.get_parameter_source(name)
    return found is not None and found.name == "COMMANDLINE"


def _open(path: Path) -> IO[bytes]:
    try:
        return path.open("rb")
    except OSError as exc:
        raise typer.BadParameter(str(exc), param_hint="FILE") from None
