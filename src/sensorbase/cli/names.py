"""Near names for a mistyped source or field: a query naming a source that has no series is a
404 from the server, and one naming a field no source has is told the same way here (an error,
exit status 1), with the known names closest to it (difflib), rather than "No points match"."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote

from sensorbase.cli.client import Api, CliError

# Past this many sources the look-up of their fields is cut short: a hint, not an audit.
MAX_SOURCES_LOOKED_UP = 200


def near(name: str, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, sorted(set(known)), n=3, cutoff=0.6)
    return f"did you mean {' or '.join(repr(c) for c in close)}?" if close else ""


def sources_of(client: Api, bucket: str) -> list[str]:
    keys: list[str] = []
    while len(keys) < MAX_SOURCES_LOOKED_UP:
        page = client.get(
            f"/v1/buckets/{quote(bucket, safe='')}/sources",
            {"limit": 1000, "offset": len(keys)},
        )
        keys += [s["key"] for s in page["sources"]]
        if not page["sources"] or len(keys) >= int(page.get("total", 0)):
            break
    return keys


def fields_of(client: Api, bucket: str, sources: list[str]) -> set[str]:
    found: set[str] = set()
    for key in sources[:MAX_SOURCES_LOOKED_UP]:
        path = f"/v1/buckets/{quote(bucket, safe='')}/sources/{quote(key, safe='')}"
        try:
            found |= {f["field"] for f in client.get(path).get("fields", [])}
        except CliError:  # a source named on the command line that does not exist
            continue
    return found


def suggest_source(exc: CliError, client: Api, bucket: str | None, sources: list[str]) -> None:
    """Add near names to the server's 404 for a source that has no series."""
    if exc.status != 404 or not bucket or not sources:
        return
    known = sources_of(client, bucket)
    for name in sources:
        if name not in known:
            hint = near(name, known)
            exc.items.append(
                f"source '{name}' is not in bucket '{bucket}'" + (f"; {hint}" if hint else "")
            )


def check_fields(
    client: Api, bucket: str | None, sources: list[str], fields: list[str], reply: dict[str, Any]
) -> None:
    """Refuse fields that no source of the selection has (the reply has no series of them)."""
    seen = {s["field"] for s in reply.get("series", [])}
    missing = [f for f in fields if f not in seen]
    if not missing or not bucket:
        return
    known = fields_of(client, bucket, sources or sources_of(client, bucket))
    unknown = [f for f in missing if f not in known]
    if unknown:
        items = []
        for name in unknown:
            hint = near(name, known)
            items.append(
                f"field '{name}'"
                + (f": {hint}" if hint else f"; fields: {', '.join(sorted(known)) or 'none'}")
            )
        raise CliError(
            f"no series for field {', '.join(repr(f) for f in unknown)} in bucket '{bucket}'",
            status=404,
            items=items,
        )
