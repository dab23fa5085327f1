"""Time zones at the command line: `--assume-tz` gives a zone to times written without one
(a date-only `--start 2026-11-21`, a CSV's `2026-11-21 10:00`), which the server refuses
rather than guess; `--tz` shows a table's times in that zone."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import typer

AssumeTzOption = Annotated[
    str | None,
    typer.Option(
        "--assume-tz",
        help="The IANA zone (UTC, Europe/Paris) of times given without one, date-only ones "
        "included (their midnight). Default: such times are refused.",
        show_default=False,
    ),
]


def zone(name: str | None, option: str) -> ZoneInfo | None:
    if name is None:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise typer.BadParameter(f"{name!r} is not an IANA time zone", param_hint=option) from None


def with_zone(text: str | None, assumed: ZoneInfo | None) -> str | None:
    """`text` with `assumed` as its zone when it is an ISO 8601 date or time without one; other
    text (epoch numbers, times with a zone, anything malformed) is left for the server."""
    if text is None or assumed is None:
        return text
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return text
    if moment.tzinfo is not None or text.strip().lstrip("-").isdigit():
        return text
    return moment.replace(tzinfo=assumed).isoformat()


def shown_in(text: str, shown: ZoneInfo | None) -> str:
    """A server's UTC time (`...Z`) in the zone `shown`."""
    if shown is None:
        return text
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(shown).isoformat()
    except ValueError:
        return text


def hint_assume_tz(problem: dict[str, object] | None) -> str | None:
    """The hint for a refusal of a time without a zone."""
    if problem and "no time zone" in str(problem.get("errors") or problem.get("detail")):
        return "give the zone (Z, +01:00) or --assume-tz UTC (or another IANA zone)"
    return None
