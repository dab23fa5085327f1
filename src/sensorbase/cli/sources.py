"""`sensorbase sources`: the devices / data sources of a bucket, with optional schemas."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

import typer

from sensorbase.cli.client import api
from sensorbase.cli.options import (
    BucketOption,
    LimitOption,
    OffsetOption,
    YesOption,
    json_object,
)
from sensorbase.cli.output import done, paged, record, show, table

commands = typer.Typer(
    name="sources",
    help="Sources (devices) of a bucket: list, create, show, delete.",
    rich_help_panel="Administration",
    no_args_is_help=True,
)

COLUMNS = ["key", "name", "schema", "meta", "created"]


def readable(source: dict[str, Any]) -> dict[str, Any]:
    """A source for a table: its schema as the --schema specs that declare it."""
    schema = source.get("schema")
    if not schema:
        return source
    specs = [
        f"{n}:{f.get('type') or ''}:{f.get('unit') or ''}".rstrip(":") for n, f in schema.items()
    ]
    return {**source, "schema": specs}


def _path(bucket: str, source: str | None = None) -> str:
    path = f"/v1/buckets/{quote(bucket, safe='')}/sources"
    return path if source is None else f"{path}/{quote(source, safe='')}"


def parse_field(spec: str) -> tuple[str, dict[str, Any]]:
    """`temperature:number:°C`, `status:string`, `humidity::%` or `pressure` (a number)."""
    name, _, rest = spec.partition(":")
    kind, _, unit = rest.partition(":")
    if not name.strip():
        raise typer.BadParameter(f"'{spec}' has no field name", param_hint="--schema")
    declared: dict[str, Any] = {}
    if kind.strip():
        declared["type"] = kind.strip()
    if unit.strip():
        declared["unit"] = unit.strip()
    return name.strip(), declared


def read_schema(specs: list[str], schema_file: Path | None) -> dict[str, Any] | None:
    """The schema a create sends: the file's JSON object, then each --schema on top."""
    if not specs and schema_file is None:
        return None
    schema: dict[str, Any] = {}
    if schema_file is not None:
        try:
            loaded = json.loads(schema_file.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise typer.BadParameter(f"not valid JSON: {exc}", param_hint="--schema-file") from None
        if not isinstance(loaded, dict):
            raise typer.BadParameter(
                'must hold a JSON object: {"temperature": {"type": "number", "unit": "°C"}}',
                param_hint="--schema-file",
            )
        schema.update(loaded)
    schema.update(parse_field(spec) for spec in specs)
    return schema


@commands.command("list")
def list_sources(
    ctx: typer.Context, bucket: BucketOption, limit: LimitOption = 100, offset: OffsetOption = 0
) -> None:
    """List the sources of a bucket."""
    reply = api(ctx).get(_path(bucket), {"limit": limit, "offset": offset})
    show(ctx, reply, table([readable(s) for s in reply["sources"]], COLUMNS))
    paged(ctx, reply, "sources")


@commands.command("create")
def create_source(
    ctx: typer.Context,
    bucket: BucketOption,
    key: str | None = typer.Argument(
        None,
        help="Its key, as writes name it (e.g. ESP32-001). Left out: the server generates one "
        "shaped like a Datacooee input id, 'sen' and 10 hex digits.",
        show_default=False,
    ),
    name: str | None = typer.Option(None, help="Display name (default: the key)."),
    meta: str | None = typer.Option(None, help='Metadata, a JSON object: \'{"room": "lab"}\''),
    schema: list[str] = typer.Option(
        [],
        "--schema",
        help="A declared field as name:type:unit (type number, string or boolean); repeat. "
        "With a schema, writes of other fields are refused.",
    ),
    schema_file: Path | None = typer.Option(
        None,
        exists=True,
        dir_okay=False,
        help='The schema as a JSON file: {"temperature": {"type": "number", "unit": "°C"}}.',
    ),
) -> None:
    """Create a source, optionally with a declared schema (e.g. a Datacooee input:
    `sources create -b plant --name "Boiler" --schema value:number:°C`)."""
    body = {
        "key": key,
        "name": name,
        "meta": json_object(meta, "--meta"),
        "schema": read_schema(schema, schema_file),
    }
    reply = api(ctx).post(_path(bucket), body)
    show(ctx, reply, table([readable(reply)], COLUMNS, "Created source"))


@commands.command("show")
def show_source(
    ctx: typer.Context,
    bucket: BucketOption,
    key: str = typer.Argument(..., help="The source."),
) -> None:
    """A source, with its schema and the fields it has series for."""
    reply = api(ctx).get(_path(bucket, key))
    fields = reply.get("fields", [])
    summary = {k: v for k, v in readable(reply).items() if k != "fields"}
    show(ctx, reply, record(summary), table(fields, ["field", "unit", "meta"], "Series"))


@commands.command("delete")
def delete_source(
    ctx: typer.Context,
    bucket: BucketOption,
    key: str = typer.Argument(..., help="The source to delete."),
    yes: YesOption = False,
) -> None:
    """Delete a source with its data."""
    if not yes:
        typer.confirm(f"Delete source '{key}' of bucket '{bucket}' and ALL its data?", abort=True)
    api(ctx).delete(_path(bucket, key))
    done(
        ctx,
        {"deleted": "source", "bucket": bucket, "key": key},
        f"Deleted source '{key}' of bucket '{bucket}'.",
    )
