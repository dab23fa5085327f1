"""Options and option parsing that several commands share."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

SCOPE_HELP = "data:write, data:read, catalog:write or admin; repeat for several."

BucketOption = Annotated[
    str,
    typer.Option("--bucket", "-b", envvar="SENSORBASE_BUCKET", help="The bucket."),
]
MaybeBucketOption = Annotated[
    str | None,
    typer.Option(
        "--bucket", "-b", envvar="SENSORBASE_BUCKET", help="The bucket.", show_default=False
    ),
]
YesOption = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]
LimitOption = Annotated[int, typer.Option(help="At most this many (1-1000).")]
OffsetOption = Annotated[int, typer.Option(help="Skip this many.")]


def json_object(text: str | None, option: str) -> dict[str, Any]:
    """A JSON-object option such as --meta '{"site": "north"}'; {} when absent."""
    if text is None:
        return {}
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise typer.BadParameter(f"not valid JSON: {exc}", param_hint=option) from None
    if not isinstance(value, dict):
        raise typer.BadParameter("must be a JSON object", param_hint=option)
    return value
