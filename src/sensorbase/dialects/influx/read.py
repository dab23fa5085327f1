"""`GET|POST /query`: InfluxQL reads, as InfluxDB 1.x answers them (what Grafana's InfluxDB
data source and the 1.x client libraries send). Its sample (Grafana's request shape):

    GET /query?db=farm&epoch=ms&q=SELECT mean("value") FROM "cpu" WHERE ("host" = 'a') AND
        time >= 1700000000000ms and time <= 1700003600000ms GROUP BY time(30m) fill(null)
    Authorization: Token sb_k..._...

    200 {"results": [{"statement_id": 0, "series": [{"name": "cpu", "columns": ["time", "mean"],
         "values": [[1699999200000, null], [1700001000000, 0.5], ...]}]}]}

`db` names a bucket; a series is a source (series.py has the mapping). Parameters come from
the query string or, for POST, a form body: `q`, `db`, `epoch` (ns, u, µ, ms, s, m, h; RFC 3339
otherwise), `pretty`. `rp` and `chunked` are accepted and ignored (one answer, not chunks).

Credentials: `u`/`p` parameters, Basic auth, or `Authorization: Token <key>` (or Bearer); the
password or token is a Sensorbase key, the user name anything. Refusals: 401
`{"error": "authorization failed"}`, a query that does not parse 400 `{"error": "error parsing
query: ..."}`, a statement that fails its result's `error` (status 200), as InfluxDB does.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import Depends, Request, Response

from sensorbase.auth.keys import Principal
from sensorbase.catalog import Catalog
from sensorbase.dialects.base import authenticate, catalog_of, dialect_router, query_of, services
from sensorbase.dialects.influx.errors import HEADERS
from sensorbase.dialects.influx.influxql.answer import EPOCH_UNITS
from sensorbase.dialects.influx.influxql.execute import Execution
from sensorbase.dialects.influx.influxql.lexer import ParseError
from sensorbase.dialects.influx.influxql.parser import parse
from sensorbase.dialects.influx.write import credential_v1
from sensorbase.errors import InvalidInput, Problem, SensorbaseError, Unauthorized
from sensorbase.query.service import QueryService

ERROR_SCHEMA = {"type": "object", "properties": {"error": {"type": "string"}}}
_FORM = ("application/x-www-form-urlencoded", "multipart/form-data")


def render_error(exc: SensorbaseError) -> Response:
    """InfluxDB 1.x's error body, `{"error": "..."}`."""
    if isinstance(exc, Unauthorized):
        message = "authorization failed"
    elif isinstance(exc, InvalidInput) and exc.problems and exc.problems[0].field == "q":
        message = exc.problems[0].reason
    else:
        message = exc.detail
    return json_reply({"error": message}, exc.status)


def json_reply(body: dict[str, Any], status: int = 200, pretty: bool = False) -> Response:
    text = json.dumps(body, indent=4 if pretty else None, ensure_ascii=False, allow_nan=False)
    return Response(text + "\n", status, HEADERS, media_type="application/json")


router = dialect_router("influx", render_error, tags=["influx"], error_schema=ERROR_SCHEMA)


def principal(request: Request, params: dict[str, str]) -> Principal:
    try:
        credential = credential_v1(params.get("p"), request.headers.get("authorization"))
        return authenticate(request, credential)
    except Unauthorized:
        # Counted per client address, so a guessing flood meets 429 as on every dialect.
        client = request.client.host if request.client else "unknown"
        request.state.rate = services(request).rate.hit(f"anonymous:{client}")
        raise


async def parameters(request: Request) -> dict[str, str]:
    params = dict(request.query_params)
    content_type = (request.headers.get("content-type") or "").split(";")[0].strip().lower()
    if request.method == "POST" and content_type in _FORM:
        form = await request.form()
        params.update({k: v for k, v in form.items() if isinstance(v, str)})
    return params


def _bad(reason: str) -> InvalidInput:
    return InvalidInput(reason, [Problem(reason, "q")])


async def query_route(
    request: Request,
    catalog: Catalog = Depends(catalog_of),
    query: QueryService = Depends(query_of),
) -> Response:
    params = await parameters(request)
    who = principal(request, params)
    text = params.get("q")
    if not text or not text.strip():
        raise _bad('missing required parameter "q"')
    epoch = params.get("epoch") or None
    if epoch is not None and epoch not in EPOCH_UNITS and epoch not in ("n", "ns"):
        epoch = None  # InfluxDB writes RFC 3339 for an epoch it does not know
    try:
        statements = parse(text)
    except ParseError as exc:
        raise _bad(f"error parsing query: {exc}") from None
    execution = Execution(who, params.get("db"), catalog, query, read_only=request.method == "GET")
    results = await execution.run(statements, epoch)
    return json_reply({"results": results}, pretty=params.get("pretty") == "true")


def _parameter(name: str, description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "description": description,
            "schema": {"type": "string"}}  # fmt: skip


# Documented only (the route reads them itself, from the query string or a POST form). Every
# one is a string: InfluxDB ignores what it does not know (an unknown `epoch`: RFC 3339 times).
OPENAPI = {
    "parameters": [
        _parameter("q", "InfluxQL: one or more statements separated by ';' (required)"),
        _parameter("db", "The bucket"),
        _parameter("epoch", "ns, u, µ, ms, s, m or h: times as integers; else RFC 3339"),
        _parameter("u", "User name (anything)"),
        _parameter("p", "Password: a Sensorbase API key"),
        _parameter("pretty", "true: indented JSON"),
        _parameter("rp", "Retention policy (ignored)"),
        _parameter("chunked", "Ignored: one answer"),
    ],
    "security": [{"HTTPBearer": []}],
}

for _method in ("GET", "POST"):
    router.add_api_route(
        "/query",
        query_route,
        methods=[_method],
        operation_id=f"influx_query_{_method.lower()}",
        summary="InfluxQL query (InfluxDB 1.x)",
        response_description="InfluxDB 1.x results: one per statement",
        openapi_extra=OPENAPI,
    )
