"""`POST /api/v1/secure/data/plot` `{datasource_id, asset, from, to, value}`: one column
(`value`, a Sensorbase field) of one asset (the metafield's value, a Sensorbase source) between
two instants (ISO 8601 with a zone, or epoch), through the one query service:
`{error: false, data: [{time, value}], total}`.
`total` counts the points in the range; `data` holds the first `limit` of them (default and
most: the server's result limit)."""

from __future__ import annotations

from typing import Any

from fastapi import Depends, Request

from sensorbase.catalog import Catalog
from sensorbase.dialects.base import authenticate, bearer, catalog_of, query_of
from sensorbase.dialects.madevo.records import refuse
from sensorbase.dialects.madevo.v1.config import config_of
from sensorbase.dialects.madevo.v1.sources import json_body, source_id, text
from sensorbase.errors import InvalidInput, Problem
from sensorbase.model import TimeRange
from sensorbase.query.service import QueryService
from sensorbase.times import format_many, parse_instant


async def plot(
    request: Request,
    catalog: Catalog = Depends(catalog_of),
    query: QueryService = Depends(query_of),
) -> dict[str, Any]:
    who = authenticate(request, bearer(request))
    body = await json_body(request)
    key = source_id(request, body)
    bucket = await catalog.buckets.get(who, key)
    config = config_of(bucket)
    problems: list[Problem] = []
    value = text(body, "value", problems)
    asset = text(body, "asset", problems, required=config.metafield is not None) or key
    bounds = [_instant(body, name, problems) for name in ("from", "to")]
    limit = body.get("limit", query.max_result_points)
    if isinstance(limit, float) and limit.is_integer():
        limit = int(limit)  # (JSON has numbers: 5.0 is the integer 5)
    if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
        problems.append(Problem("must be a positive integer", "limit"))
    if problems:
        raise refuse(problems, InvalidInput)
    refs = await query.select(who, key, [asset], [value])
    if not refs:
        return {"error": False, "data": [], "total": 0}
    span = TimeRange(bounds[0], None if bounds[1] is None else bounds[1] + 1)  # `to` inclusive
    total = (await query.counts(refs, span))[0]
    found = (await query.points(refs, span, min(limit, query.max_result_points)))[0]
    times = format_many(found.time_us)
    data = [{"time": t, "value": v} for t, v in zip(times, found.value.tolist(), strict=True)]
    return {"error": False, "data": data, "total": total}


def _instant(body: dict[str, Any], name: str, problems: list[Problem]) -> int | None:
    """A bound: ISO 8601 with a zone or an epoch number (as every Sensorbase query takes it);
    absent: unbounded."""
    given = body.get(name)
    if given is None:
        return None
    if isinstance(given, str):
        try:
            return parse_instant(given)
        except ValueError:
            pass
    problems.append(Problem("must be ISO 8601 with a zone, or an epoch number (a string)", name))
    return None
