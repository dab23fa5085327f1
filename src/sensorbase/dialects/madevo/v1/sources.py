"""The data-source routes of /api/v1/secure: plain create, get, list by page, rename, delete,
detect-timeformat, the schema summary and the distinct metadata of a data source. A data source
is a bucket (its key the `id`): tenancy and scopes are the catalog's, so another organisation's
id answers as a missing one (404) and creating, renaming or deleting needs an admin."""

from __future__ import annotations

import math
import secrets
from typing import Any

from fastapi import Depends, Request

from sensorbase.catalog import Catalog
from sensorbase.catalog.buckets import BucketChanges
from sensorbase.dialects.base import authenticate, bearer, catalog_of
from sensorbase.dialects.body import parse_json, read_body, require_media_type
from sensorbase.dialects.madevo.records import refuse
from sensorbase.dialects.madevo.settings import MadevoSettings
from sensorbase.dialects.madevo.v1 import timeformat
from sensorbase.dialects.madevo.v1.config import Config, new_meta, shown
from sensorbase.dialects.madevo.v1.uploads import Uploads
from sensorbase.errors import InvalidInput, Problem
from sensorbase.limits import name_problem

PAGE = 20  # data sources a page, as Madevo lists them
MAX_DISTINCT = 10_000  # distinct metadata values answered at most
BODY_BYTES = 1024 * 1024


async def json_body(request: Request) -> dict[str, Any]:
    require_media_type(request.headers.get("content-type"))
    body = parse_json(await read_body(request, BODY_BYTES))
    if not isinstance(body, dict):
        raise InvalidInput("the body must be a JSON object")
    return body


def text(body: dict[str, Any], name: str, problems: list[Problem], required: bool = True) -> str:
    value = body.get(name)
    if value is None and not required:
        return ""
    if isinstance(value, int) and not isinstance(value, bool) and name.endswith("id"):
        value = str(value)
    why = name_problem(value) if isinstance(value, str) else "must be a string"
    if why:
        problems.append(Problem(f"is required: a name that {why}", name))
        return ""
    return str(value)


def source_id(request: Request, body: dict[str, Any] | None = None) -> str:
    """The data source a request names: `?id=` (or `datasource_id`), else its body's."""
    given = request.query_params.get("id") or request.query_params.get("datasource_id")
    if given:
        return given
    problems: list[Problem] = []
    found = body or {}
    name = "datasource_id" if "datasource_id" in found else "id"
    value = text(found, name, problems)
    if problems:
        raise refuse(problems, InvalidInput)
    return value


def config_from(body: dict[str, Any], problems: list[Problem]) -> Config:
    timefield = text(body, "timefield", problems)
    metafield = text(body, "metafield", problems, required=False) or None
    fmt = body.get("timeformat")
    if fmt is None:  # absent or null: ISO 8601 ("" or false are refused, not taken for it)
        fmt = timeformat.ISO
    why = timeformat.check(fmt) if isinstance(fmt, str) else "must be a string"
    if why:
        problems.append(Problem(why, "timeformat"))
    if metafield is not None and metafield == timefield:
        problems.append(Problem("must differ from the timefield", "metafield"))
    return Config(timefield, metafield, str(fmt))


async def create(
    request: Request, catalog: Catalog, body: dict[str, Any], extra: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A new data source from `{name, description?, timefield, metafield?, timeformat?}`."""
    who = authenticate(request, bearer(request))
    problems: list[Problem] = []
    name = text(body, "name", problems)
    description = body.get("description") or ""
    if not isinstance(description, str):
        problems.append(Problem("must be a string", "description"))
    config = config_from(body, problems)
    if problems:
        raise refuse(problems, InvalidInput)
    meta = {**new_meta(config), **(extra or {})}
    bucket = await catalog.buckets.create(
        who, secrets.token_hex(12), name, str(description), meta, unique_name=True
    )
    return {"error": False, "message": "datasource created", "data": shown(bucket)}


async def create_plain(request: Request, catalog: Catalog = Depends(catalog_of)) -> Any:
    return await create(request, catalog, await json_body(request))


async def get_one(request: Request, catalog: Catalog = Depends(catalog_of)) -> Any:
    who = authenticate(request, bearer(request))
    bucket = await catalog.buckets.get(who, source_id(request))
    return {"error": False, "data": shown(bucket)}


async def list_page(request: Request, catalog: Catalog = Depends(catalog_of)) -> Any:
    who = authenticate(request, bearer(request))
    raw = request.query_params.get("page", "1")
    if not raw.isascii() or not raw.isdigit() or not 1 <= int(raw) <= 10**9:
        raise refuse([Problem("must be a page number from 1", "page")], InvalidInput)
    page = int(raw)
    found, total = await catalog.buckets.page(who, PAGE, (page - 1) * PAGE)
    return {
        "error": False,
        "data": [shown(b) for b in found],
        "page": page,
        "per_page": PAGE,
        "total": total,
        "pages": math.ceil(total / PAGE),
    }


async def rename(request: Request, catalog: Catalog = Depends(catalog_of)) -> Any:
    who = authenticate(request, bearer(request))
    body = await json_body(request)
    key = source_id(request, body)
    problems: list[Problem] = []
    name = text(body, "name", problems)
    if problems:
        raise refuse(problems, InvalidInput)
    bucket = await catalog.buckets.update(who, key, BucketChanges(name=name))
    return {"error": False, "message": "datasource renamed", "data": shown(bucket)}


async def delete(request: Request, catalog: Catalog = Depends(catalog_of)) -> Any:
    who = authenticate(request, bearer(request))
    raw = await read_body(request, BODY_BYTES)
    body = parse_json(raw) if raw.strip() else {}
    key = source_id(request, body if isinstance(body, dict) else None)
    await catalog.buckets.delete(who, key)
    return {"error": False, "message": "datasource deleted"}


def detect_route(settings: MadevoSettings) -> Any:
    async def detect(request: Request) -> Any:
        """`{values: [...]}`, `{value}`, or `{upload_id, column}` (the upload's sample)."""
        who = authenticate(request, bearer(request))
        body = await json_body(request)
        values = body.get("values")
        if isinstance(body.get("value"), str):
            values = [body["value"]]
        if values is None and "upload_id" in body:
            problems: list[Problem] = []
            upload, column = text(body, "upload_id", problems), text(body, "column", problems)
            if problems:
                raise refuse(problems, InvalidInput)
            uploads = Uploads.of(request, settings.max_upload_bytes)
            _, sample = await uploads.sample(who.org_id, upload)
            values = [row.get(column, "") for row in sample]
        if (
            not isinstance(values, list)
            or not 1 <= len(values) <= 1000
            or not all(isinstance(v, str) for v in values)
        ):
            raise refuse(
                [Problem("give 1 to 1000 time strings, or upload_id and column", "values")],
                InvalidInput,
            )
        found = timeformat.detect(values)
        if found is None:
            return {"error": True, "message": "no known timeformat reads every value"}
        return {"error": False, "message": "timeformat detected", "timeformat": found}

    return detect


async def schema_summary(request: Request, catalog: Catalog = Depends(catalog_of)) -> Any:
    """One data source's schema (`?id=`), else every one's the caller may read."""
    who = authenticate(request, bearer(request))
    if "id" in request.query_params:
        problems: list[Problem] = []
        key = text(dict(request.query_params), "id", problems)
        if problems:
            raise refuse(problems, InvalidInput)
        found = [await catalog.buckets.get(who, key)]
    else:
        found, _ = await catalog.buckets.page(who, MAX_DISTINCT, 0)
    summary = []
    for bucket in found:
        data = shown(bucket)
        summary.append({k: data[k] for k in ("id", "name", "timefield", "metafield", "columns")})
    return {"error": False, "data": summary}


async def distinct_metadata(request: Request, catalog: Catalog = Depends(catalog_of)) -> Any:
    """The distinct values of the data source's metafield: its Sensorbase sources."""
    who = authenticate(request, bearer(request))
    key = source_id(request, await json_body(request))
    found, total = await catalog.sources.page(who, key, MAX_DISTINCT, 0)
    return {"error": False, "data": sorted(s.key for s in found), "total": total}
