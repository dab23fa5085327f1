"""Line-protocol writes: `POST /write` (InfluxDB 1.x) and `POST /api/v2/write` (2.x).

    curl -XPOST 'http://localhost:8080/write?db=farm&precision=s' -u any:$SENSORBASE_KEY \\
      --data-binary 'weather,station=KX1 temperature=21.5,humidity=71i 1700000000'

Each request: the key (1.x: `u`/`p` query parameters, Basic auth or `Authorization: Token`; 2.x:
`Authorization: Token`; the password or token is a Sensorbase key), the body (gzip as
`Content-Encoding` says, through dialects/body.py), every line parsed (lineproto.py), mapped
(mapping.py) and handed to ONE `Ingest.write` with `partial=True`: as influxd does, the good
lines are written and the bad ones named in a 400, because Telegraf and the client libraries do
not retry a 400, so the good lines of such a batch would otherwise be lost.
"""

from __future__ import annotations

import base64
import binascii

from fastapi import Response

from sensorbase.auth import access
from sensorbase.auth.keys import Principal
from sensorbase.dialects.influx import errors, lineproto
from sensorbase.dialects.influx.mapping import to_batch
from sensorbase.dialects.lane import Call
from sensorbase.errors import InvalidInput, NotFound, PayloadTooLarge, Problem
from sensorbase.ingest.pipeline import WriteOptions, writable
from sensorbase.times import now_us

PRECISIONS_V1 = ("n", "ns", "u", "µ", "ms", "s", "m", "h")  # 1.x: n|u|ms|s|m|h (and ns)
PRECISIONS_V2 = ("ns", "us", "ms", "s")


def credential_v1(password: str | None, authorization: str | None) -> str | None:
    """The key a 1.x client sends: `p` (with `u`; from the query string, or a form body),
    Basic auth's password, or a Token (or Bearer)."""
    if password:
        return password
    header = authorization or ""
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return None
        return decoded.partition(":")[2] or None
    return token(header)


def token(header: str | None) -> str | None:
    """The key of `Authorization: Token <key>` (or Bearer). InfluxDB 1.8's 2.x routes take
    `Token username:password`: the password is the key then."""
    scheme, _, value = (header or "").partition(" ")
    value = value.strip()
    if scheme.lower() not in ("token", "bearer") or not value:
        return None
    return value.rpartition(":")[2] or None


def precision_of(given: str | None, allowed: tuple[str, ...]) -> tuple[int, int]:
    name = given or "ns"
    if name not in allowed:
        choices = ", ".join(p for p in allowed if p != "µ")
        raise InvalidInput(
            f"invalid precision '{name}': use one of {choices}",
            [Problem(f"must be one of {choices}", "precision")],
        )
    return lineproto.PRECISIONS[name]


async def write_lines(
    call: Call, who: Principal, bucket: str, precision: tuple[int, int], version: int
) -> Response:
    """The body's lines written into `bucket`: 204, or 400 naming the lines dropped."""
    arrived_us = now_us()  # every line without a timestamp gets this time
    svc = call.services
    settings = svc.settings
    body = await call.body()
    skip_strings = settings.influx_string_fields == "skip"
    lines = lineproto.parse(body, precision, arrived_us, skip_strings)
    if len(lines.value) > settings.max_points_per_request:
        raise PayloadTooLarge(
            f"{len(lines.value)} points in one request; the limit is "
            f"{settings.max_points_per_request}"
        )
    if not lines.lines and version == 2:  # influxd 2.x's refusal, in its words
        raise InvalidInput("writing requires points")
    if not len(lines.value) and not lines.bad:
        # influxd 1.x answers an empty body 204 once the database is found, and clients use
        # that as a connection test (Home Assistant writes `[]` when it starts); lines of
        # skipped string fields only are as empty.
        access.require(who, "data:write")
        writable(await svc.catalog.buckets.get(who, bucket, "data:write"))
        return Response(status_code=204, headers=errors.HEADERS)
    mapped = to_batch(lines, bucket)
    outcome = await svc.ingest.write(
        who,
        mapped.batch,
        WriteOptions(
            partial=True,
            source_meta=mapped.source_meta,
            origin=mapped.origin,
            known_problems=mapped.problems,
        ),
    )
    if outcome.rejected:
        dropped = len({p.index for p in outcome.rejected})
        return errors.partial(
            outcome.rejected, dropped, outcome.receipt.points, lines.line_text, version
        )
    return Response(status_code=204, headers=errors.HEADERS)


async def write_1x(call: Call) -> Response:
    """`POST /write`, as the route and the fast lane (dialects/lane.py) both answer it."""
    params = call.params
    who = call.authenticate_with(credential_v1(params.get("p"), call.header(b"authorization")))
    db = params.get("db")
    if not db:
        raise InvalidInput("database is required", [Problem("is required", "db")])
    return await write_lines(call, who, db, precision_of(params.get("precision"), PRECISIONS_V1), 1)


async def write_2x(call: Call) -> Response:
    """`POST /api/v2/write`, as the route and the fast lane both answer it."""
    params = call.params
    who = call.authenticate_with(token(call.header(b"authorization")))
    bucket = params.get("bucket")
    if not bucket:
        raise InvalidInput("bucket is required", [Problem("is required", "bucket")])
    named = params.get("org") or params.get("orgID")
    if named:
        # Another organisation answers exactly as one that does not exist.
        mine = await call.services.catalog.orgs.mine(who)
        if named not in (mine.key, mine.name, str(mine.id)):
            raise NotFound(f'organization name "{named}" not found', what="organisation")
    precision = precision_of(params.get("precision"), PRECISIONS_V2)
    return await write_lines(call, who, bucket, precision, 2)
