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

from fastapi import APIRouter, Depends, Query, Request, Response

from sensorbase import __version__
from sensorbase.catalog import Catalog
from sensorbase.dialects.base import catalog_of, dialect_router, ingest_of
from sensorbase.dialects.influx import errors, read, write
from sensorbase.errors import InvalidInput, NotFound, Problem
from sensorbase.ingest.pipeline import Ingest

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


@v1.post(
    "/write",
    status_code=204,
    summary="Write line protocol (InfluxDB 1.x)",
    openapi_extra=_LINES_BODY,
    responses={204: {"description": "Every line written, durably"}},
)
async def influx_write_1x(
    request: Request,
    db: str | None = Query(None, description="the Sensorbase bucket"),
    rp: str | None = Query(None, description="ignored (Sensorbase has no retention policies)"),
    precision: str | None = Query(None, description="n|u|ms|s|m|h (default: n)"),
    ingest: Ingest = Depends(ingest_of),
) -> Response:
    who = write.principal_v1(request)
    if not db:
        raise InvalidInput("database is required", [Problem("is required", "db")])
    return await write.write_lines(
        request, who, ingest, db, write.precision_of(precision, write.PRECISIONS_V1), 1
    )


@v2.post(
    "/api/v2/write",
    status_code=204,
    summary="Write line protocol (InfluxDB 2.x)",
    openapi_extra=_LINES_BODY,
    responses={204: {"description": "Every line written, durably"}},
)
async def influx_write_2x(
    request: Request,
    bucket: str | None = Query(None, description="the Sensorbase bucket"),
    org: str | None = Query(None, description="the key's organisation (key or name)"),
    org_id: str | None = Query(None, alias="orgID", description="the same, as orgID"),
    precision: str | None = Query(None, description="ns|us|ms|s (default: ns)"),
    catalog: Catalog = Depends(catalog_of),
    ingest: Ingest = Depends(ingest_of),
) -> Response:
    who = write.principal_v2(request)
    if not bucket:
        raise InvalidInput("bucket is required", [Problem("is required", "bucket")])
    named = org or org_id
    if named:
        # Another organisation answers exactly as one that does not exist.
        mine = await catalog.orgs.mine(who)
        if named not in (mine.key, mine.name, str(mine.id)):
            raise NotFound(f'organization name "{named}" not found', what="organisation")
    return await write.write_lines(
        request, who, ingest, bucket, write.precision_of(precision, write.PRECISIONS_V2), 2
    )


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
