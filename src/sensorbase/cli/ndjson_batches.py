"""`sensorbase write` of a large NDJSON file: sent in batches of `--batch-size` lines, so an
export of any size goes back in without a 413 (the server caps a body at
SENSORBASE_MAX_BODY_BYTES and a request at SENSORBASE_MAX_POINTS_PER_REQUEST points). Each
batch is atomic (all or nothing, unless --partial); a refused batch stops the write and says
which lines it held and how many points earlier batches stored. A file of at most one batch is
one request, as before."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sensorbase.cli.client import Api, CliError, describe


@dataclass
class Outcome:
    written: int = 0
    batches: int = 0
    rejected: list[str] = field(default_factory=list)


def numbered_lines(body: bytes) -> list[tuple[int, bytes]]:
    return [(n, line) for n, line in enumerate(body.splitlines(), start=1) if line.strip()]


def located(item: dict[str, Any], chunk: list[tuple[int, bytes]]) -> str:
    """A server's problem about point `index` of a batch, as `line 12, field 'value': ...`."""
    index = item.get("index")
    if not isinstance(index, int) or not 0 <= index < len(chunk):
        return describe(item)
    return f"line {chunk[index][0]}, " + describe({**item, "index": None})


def send_batches(
    client: Api, lines: list[tuple[int, bytes]], params: dict[str, str], batch_lines: int
) -> Outcome:
    done = Outcome()
    for start in range(0, len(lines), batch_lines):
        chunk = lines[start : start + batch_lines]
        payload = b"\n".join(line for _, line in chunk) + b"\n"
        done.batches += 1
        try:
            reply = client.send("/v1/write", payload, "application/x-ndjson", params)
        except CliError as exc:
            errors = (exc.problem or {}).get("errors") or []
            if errors:
                exc.items = [located(item, chunk) for item in errors]
            exc.message += (
                f" (batch {done.batches}, lines {chunk[0][0]}-{chunk[-1][0]}: nothing of it was "
                f"stored; {done.written} point(s) of earlier batches were)"
            )
            exc.items += [f"{item} (refused earlier)" for item in done.rejected]
            raise
        done.written += int(reply["written"])
        done.rejected += [located(item, chunk) for item in reply.get("rejected", [])]
    return done
