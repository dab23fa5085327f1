"""InfluxDB: line-protocol writes, the ping and health probes, and InfluxQL reads (read.py,
influxql/).

InfluxDB's own example, `POST /write?db=mydb&precision=s` (1.x) or `POST /api/v2/write?org=
myorg&bucket=mydb&precision=s` (2.x) with `Authorization: Token <key>` and the body

    mem,host=host1 used_percent=23.43234543 1556892576
    mem,host=host2 used_percent=26.81522361 1556892576

writes two points: series (source) `mem,host=host1` and `mem,host=host2` of bucket `mydb`, field
`used_percent` (mapping.py holds the whole mapping; docs/dialects/influx.md the routes, errors
and differences).

- `POST /write`: 1.x; `db` (a Sensorbase bucket), `rp` (ignored), `precision` (n|u|ms|s|m|h, ns
  by default), the key as `p` (with `u`), Basic auth's password or `Authorization: Token`.
- `POST /api/v2/write`: 2.x; `org` (the key's organisation, by key or name; optional), `bucket`,
  `precision` (ns|us|ms|s), `Authorization: Token <key>`.
- `GET|HEAD /ping`: 204 with `X-Influxdb-Version` and `X-Influxdb-Build` (`?verbose=true`: 200
  with `{"version": ...}`); `GET /health`: 2.x's health document.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from sensorbase import __version__
from sensorbase.dialects import openapi
from sensorbase.dialects.base import dialect_router
from sensorbase.dialects.influx import errors, read, write
from sensorbase.dialects.lane import Lane, as_route

SAMPLE = (
    b"mem,host=host1 used_percent=23.43234543 1556892576\n"
    b"mem,host=host2 used_percent=26.81522361 1556892576\n"
)

v1 = dialect_router(
    "influx", errors.render_v1, tags=["InfluxDB"], error_schema=errors.ERROR_SCHEMA_V1
)
v2 = dialect_router(
    "influx", errors.render_v2, tags=["InfluxDB"], error_schema=errors.ERROR_SCHEMA_V2
)

_LINES_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {"text/plain": {"schema": {"type": "string"}, "example": SAMPLE.decode()}},
    },
    # The key as a Token (or Bearer) header; /write also takes it as `p` or Basic auth.
    "security": [{"HTTPBearer": []}],
}


_TEXT: dict[str, Any] = {"type": "string"}
_PARAMETERS_V1 = [
    openapi.parameter("db", _TEXT, "the Sensorbase bucket", required=True),
    openapi.parameter("rp", _TEXT, "ignored (Sensorbase has no retention policies)"),
    openapi.parameter("precision", _TEXT, "n|u|ms|s|m|h (default: n)"),
    openapi.parameter("u", _TEXT, "any user name (with p)"),
    openapi.parameter("p", _TEXT, "the key, as a password (or Basic auth's, or a Token header)"),
]
_PARAMETERS_V2 = [
    openapi.parameter("bucket", _TEXT, "the Sensorbase bucket", required=True),
    openapi.parameter("org", _TEXT, "the key's organisation (key or name)"),
    openapi.parameter("orgID", _TEXT, "the same, as orgID"),
    openapi.parameter("precision", _TEXT, "ns|us|ms|s (default: ns)"),
]


@v1.post(
    "/write",
    status_code=204,
    summary="Write line protocol (InfluxDB 1.x)",
    # An empty body is answered 204, as influxd 1.x does (clients use it as a connection
    # test): the body is optional here, and required by /api/v2/write, which refuses it.
    openapi_extra={
        **_LINES_BODY,
        "requestBody": {**_LINES_BODY["requestBody"], "required": False},
        "parameters": _PARAMETERS_V1,
    },
    responses={204: {"description": "Every line written, durably (an empty body: nothing)"}},
)
async def influx_write_1x(request: Request) -> Response:
    return await as_route(request, write.write_1x)


@v2.post(
    "/api/v2/write",
    status_code=204,
    summary="Write line protocol (InfluxDB 2.x)",
    openapi_extra={**_LINES_BODY, "parameters": _PARAMETERS_V2},
    responses={204: {"description": "Every line written, durably"}},
)
async def influx_write_2x(request: Request) -> Response:
    return await as_route(request, write.write_2x)


def fast_lanes() -> dict[tuple[str, str], Lane]:
    """Routes the app calls before FastAPI's routing (see `dialects.lane`): the writes that
    Telegraf, the client libraries and devices send."""
    return {
        ("POST", "/write"): Lane("influx", errors.render_v1, write.write_1x),
        ("POST", "/api/v2/write"): Lane("influx", errors.render_v2, write.write_2x),
    }


@v1.get(
    "/ping",
    status_code=204,
    summary="Ping (InfluxDB): 204 with the version headers",
    responses={
        204: {"description": "Up"},
        200: {
            "description": "Up (verbose=true)",
            "content": {
                "application/json": {
                    "schema": {"type": "object", "properties": {"version": {"type": "string"}}}
                }
            },
        },
    },
)
@v1.head("/ping", status_code=204, summary="Ping (InfluxDB), HEAD", responses={204: {}})
async def influx_ping(verbose: str | None = None) -> Response:
    if verbose in ("true", "1", "yes"):
        return Response(
            b'{"version":"' + errors.INFLUX_VERSION.encode() + b'"}',
            media_type="application/json",
            headers=errors.HEADERS,
        )
    return Response(status_code=204, headers=errors.HEADERS)


@v2.get("/health", summary="Health (InfluxDB 2.x)")
async def influx_health() -> Response:
    body = {
        "name": "influxdb",
        "message": "ready for queries and writes",
        "status": "pass",
        "checks": [],
        "version": errors.INFLUX_VERSION,
        "commit": f"sensorbase-{__version__}",
    }
    return errors.json_reply(body, 200)


def router() -> APIRouter:
    combined = APIRouter()
    combined.include_router(v1)
    combined.include_router(v2)
    combined.include_router(read.router)  # the InfluxQL reads, GET|POST /query
    return combined
