"""Buckets, data sources and keys, as dakkio manages them, through the catalog service.

Ids: a dakkio `_id` is the Sensorbase key of the object. What dakkio creates gets a fresh
24-hex ObjectId as its key; what was created natively keeps its own key, which dakkio clients
then send as the id (a native bucket keyed `507f1f77bcf86cd799439011` is that dakkio bucket).
dakkio's own rule: names are unique (a bucket's in its organisation, a data source's and an
active key's in their bucket), checked inside the creating transaction (`unique_name`).
"""

from __future__ import annotations

import re
import secrets
from typing import Any

from fastapi import Depends, Request, Response

from sensorbase.auth.keys import NewKey, Principal
from sensorbase.catalog import Catalog
from sensorbase.dialects import openapi
from sensorbase.dialects.base import catalog_of, dialect_router
from sensorbase.dialects.dakkio.body import json_object
from sensorbase.dialects.dakkio.credential import KIND_LETTER, admin_principal, key_kind, require
from sensorbase.dialects.dakkio.dates import ms_text
from sensorbase.dialects.dakkio.errors import (
    ERROR_SCHEMA,
    MISSING,
    Details,
    expected,
    json_reply,
    render_error,
)
from sensorbase.dialects.dakkio.ids import object_id
from sensorbase.dialects.dakkio.retention import DAY_US, RETENTION_DAYS, retention_days
from sensorbase.limits import (
    CONTROL,
    MAX_OFFSET,
    NAME_PATTERN,
    NUL,
    TEXT_PATTERN,
    name_problem,
    text_problem,
)
from sensorbase.model import ApiKey, Bucket, FieldSpec, Scope, Source

router = dialect_router("dakkio", render_error, tags=["dakkio"], error_schema=ERROR_SCHEMA)
FIELD_TYPES = ("number", "string", "boolean")
KEY_SCOPES: dict[str, tuple[Scope, ...]] = {
    "write": ("data:write", "data:read"),
    "read": ("data:read",),
}


_PAGE = (("limit", 1, 1000, 100), ("offset", 0, MAX_OFFSET, 0))
_INTEGER = re.compile("-?[0-9]{1,30}")  # ASCII digits (`int` also takes " 5", "1_0", Arabic-Indic)
PAGE_DOC = {
    "parameters": [
        openapi.parameter(name, {"type": "integer", "minimum": low, "maximum": high, "default": d})
        for name, low, high, d in _PAGE
    ]
}


def page_params(request: Request) -> tuple[int, int]:
    """`limit` (default 100, 1..1000) and `offset` (default 0) of a list route."""
    details = Details()
    out = {"limit": 100, "offset": 0}
    for name, low, high, _ in _PAGE:
        text = request.query_params.get(name)
        if text is None:
            continue
        if not _INTEGER.fullmatch(text):
            details.add(["query", name], f"Expected number, received '{text}'")
            continue
        value = int(text)
        if value < low:
            details.add(["query", name], f"Number must be greater than or equal to {low}")
        elif high is not None and value > high:
            details.add(["query", name], f"Number must be less than or equal to {high}")
        else:
            out[name] = value
    if details:
        raise details.error()
    return out["limit"], out["offset"]


# What `_text` takes: a name (required, not blank, no control character), a description (free
# text), a data source's type (no control character).
NAME_TEXT = {"type": "string", "maxLength": 100, "pattern": NAME_PATTERN}
DESCRIPTION_TEXT = openapi.nullable({"type": "string", "maxLength": 500, "pattern": TEXT_PATTERN})
_KIND = openapi.nullable({"type": "string", "maxLength": 100, "pattern": r"^[^\x00-\x1f\x7f]*$"})
_FIELD_TEXT = openapi.nullable(
    {"type": "string", **{k: openapi.TEXT[k] for k in ("maxLength", "pattern")}}
)
BUCKET_SCHEMA = {
    "type": "object",
    "required": ["name"],
    "properties": {
        "name": NAME_TEXT,
        "description": DESCRIPTION_TEXT,
        "retentionDays": RETENTION_DAYS,
    },
}
SOURCE_SCHEMA = {
    "type": "object",
    "required": ["name", "schema"],
    "properties": {
        "name": NAME_TEXT,
        "type": {**_KIND, "description": "Default: sensor"},
        "description": DESCRIPTION_TEXT,
        "schema": {
            "type": "object",
            "description": "{field: {type, unit?, description?}} or {field: type}",
            "propertyNames": openapi.NAME,
            "additionalProperties": {
                "anyOf": [
                    {"type": "string", "enum": list(FIELD_TYPES)},
                    {
                        "type": "object",
                        "required": ["type"],
                        "properties": {
                            "type": {"type": "string", "enum": list(FIELD_TYPES)},
                            "unit": _FIELD_TEXT,
                            "description": _FIELD_TEXT,
                        },
                    },
                ]
            },
        },
        "downsampling": {"type": "boolean", "default": True},
    },
}
KEY_SCHEMA = {
    "type": "object",
    "required": ["name", "type"],
    "properties": {"name": NAME_TEXT, "type": {"type": "string", "enum": list(KEY_SCOPES)}},
}


def pagination(limit: int, offset: int, total: int) -> dict[str, Any]:
    return {"limit": limit, "offset": offset, "total": total, "hasMore": offset + limit < total}


def text_field(
    body: dict[str, Any], name: str, details: Details, *, required: bool, max_len: int
) -> str | None:
    value = body.get(name, MISSING if required else None)
    if value is None and not required:
        return None
    if not isinstance(value, str):
        details.add(["body", name], expected("string", value))
        return None
    if required and not value.strip():
        details.add(["body", name], "String must contain at least 1 character(s)")
        return None
    if len(value) > max_len:
        details.add(["body", name], f"String must contain at most {max_len} character(s)")
        return None
    # A description may hold line breaks; a name no control character; neither a NUL.
    if (CONTROL if name != "description" else NUL).search(value):
        details.add(["body", name], "String must not contain control characters")
        return None
    return value


# --- buckets ---------------------------------------------------------------------------


def bucket_out(bucket: Bucket, org_key: str) -> dict[str, Any]:
    created = ms_text(bucket.created_us)
    return {
        "_id": bucket.key,
        "name": bucket.name,
        "description": bucket.description,
        "organizationId": org_key,
        "status": bucket.status,
        "retentionDays": None
        if bucket.retention_us is None
        else -(-bucket.retention_us // DAY_US),  # (a whole number of days, rounded up)
        "createdAt": created,
        "updatedAt": created,
    }


@router.get("/api/buckets", summary="dakkio: list buckets (admin key)", openapi_extra=PAGE_DOC)
async def list_buckets(
    request: Request,
    who: Principal = Depends(admin_principal),
    catalog: Catalog = Depends(catalog_of),
) -> Response:
    require(who, "admin")
    limit, offset = page_params(request)
    found, total = await catalog.buckets.page(who, limit, offset)
    org_key = (await catalog.orgs.mine(who)).key
    items = [bucket_out(b, org_key) for b in found]
    return json_reply(
        {"buckets": items, "data": items, "pagination": pagination(limit, offset, total)}
    )


@router.post(
    "/api/buckets",
    status_code=201,
    summary="dakkio: create a bucket (admin key)",
    openapi_extra=openapi.body(BUCKET_SCHEMA, {"name": "Home", "description": "Sensors at home"}),
)
async def create_bucket(
    request: Request,
    who: Principal = Depends(admin_principal),
    catalog: Catalog = Depends(catalog_of),
) -> Response:
    require(who, "admin")
    body = await json_object(request)
    details = Details()
    name = text_field(body, "name", details, required=True, max_len=100)
    description = text_field(body, "description", details, required=False, max_len=500)
    days = retention_days(body, details)
    if details or name is None:
        raise details.error()
    bucket = await catalog.buckets.create(
        who,
        object_id(),
        name,
        description or "",
        {},
        unique_name=True,
        retention_us=None if days is None else days * DAY_US,
    )
    org_key = (await catalog.orgs.mine(who)).key
    return json_reply(
        {"message": "Bucket created successfully", "bucket": bucket_out(bucket, org_key)}, 201
    )


@router.get("/api/buckets/{bucket_id}", summary="dakkio: a bucket with its stats (admin key)")
async def get_bucket(
    bucket_id: str,
    who: Principal = Depends(admin_principal),
    catalog: Catalog = Depends(catalog_of),
) -> Response:
    require(who, "admin")
    found, counts = await catalog.buckets.stats(who, bucket_id)
    stats = {
        "dataSourceCount": counts["sources"],
        "dataPointCount": counts["points"],
        "apiKeyCount": counts["keys"],
    }
    out = {**bucket_out(found, (await catalog.orgs.mine(who)).key), "stats": stats}
    return json_reply({"bucket": out, "stats": stats})


# --- data sources ----------------------------------------------------------------------


def source_out(source: Source, bucket_key: str) -> dict[str, Any]:
    created = ms_text(source.created_us)
    schema = {
        name: {"type": spec.type, "unit": spec.unit, "description": spec.description}
        for name, spec in (source.schema or {}).items()
    }
    return {
        "_id": source.key,
        "bucketId": bucket_key,
        "name": source.name,
        "type": source.meta.get("type", "sensor"),
        "description": source.meta.get("description"),
        "schema": schema,
        "downsampling": source.meta.get("downsampling", True) is not False,
        "createdAt": created,
        "updatedAt": created,
    }


def field_schema(value: Any, details: Details) -> dict[str, FieldSpec] | None:
    """`{field: {type, unit?, description?}}`, or the shorthand `{field: "number"}`."""
    path: list[str | int] = ["body", "schema"]
    if not isinstance(value, dict):
        details.add(path, expected("object", value))
        return None
    schema: dict[str, FieldSpec] = {}
    options = " | ".join(f"'{t}'" for t in FIELD_TYPES)
    for name, spec in value.items():
        where = [*path, name]
        if isinstance(spec, str):
            spec = {"type": spec}
        problem = name_problem(name)
        if problem is not None:
            details.add(where, f"Field name {problem}")
            continue
        if not isinstance(spec, dict):
            details.add(where, expected("object", spec))
            continue
        kind = spec.get("type", MISSING)
        if kind not in FIELD_TYPES:
            shown = (
                f"'{kind}'" if isinstance(kind, str) else "undefined" if kind is MISSING else kind
            )
            details.add(
                [*where, "type"], f"Invalid enum value. Expected {options}, received {shown}"
            )
            continue
        texts = {}
        for attr in ("unit", "description"):
            text = spec.get(attr)
            if text is not None and not isinstance(text, str):
                details.add([*where, attr], expected("string", text))
            elif text is not None and (problem := text_problem(text)) is not None:
                details.add([*where, attr], f"String {problem}")
            texts[attr] = text
        schema[name] = FieldSpec(kind, texts["unit"], texts["description"])
    # An empty schema declares nothing, so it restricts nothing.
    return schema or None


@router.get(
    "/api/buckets/{bucket_id}/sources", summary="dakkio: list data sources", openapi_extra=PAGE_DOC
)
async def list_sources(
    request: Request,
    bucket_id: str,
    who: Principal = Depends(admin_principal),
    catalog: Catalog = Depends(catalog_of),
) -> Response:
    limit, offset = page_params(request)
    require(who, "data:write")
    sources, total = await catalog.sources.page(who, bucket_id, limit, offset)
    items = [source_out(s, bucket_id) for s in sources]
    return json_reply(
        {"dataSources": items, "data": items, "pagination": pagination(limit, offset, total)}
    )


@router.post(
    "/api/buckets/{bucket_id}/sources",
    status_code=201,
    summary="dakkio: create a data source",
    openapi_extra=openapi.body(
        SOURCE_SCHEMA,
        {"name": "Living room", "type": "sensor", "schema": {"temperature": "number"}},
    ),
)
async def create_source(
    request: Request,
    bucket_id: str,
    who: Principal = Depends(admin_principal),
    catalog: Catalog = Depends(catalog_of),
) -> Response:
    require(who, "data:write")
    body = await json_object(request)
    details = Details()
    name = text_field(body, "name", details, required=True, max_len=100)
    kind = text_field(body, "type", details, required=False, max_len=100) or "sensor"
    description = text_field(body, "description", details, required=False, max_len=500)
    schema = field_schema(body.get("schema", MISSING), details)
    downsampling = body.get("downsampling", True)
    if not isinstance(downsampling, bool):
        details.add(["body", "downsampling"], expected("boolean", downsampling))
    if details or name is None:
        raise details.error()
    bucket = await catalog.buckets.get(who, bucket_id, "data:write")
    meta: dict[str, Any] = {"type": kind, "downsampling": downsampling}
    if description is not None:
        meta["description"] = description
    source = await catalog.sources.create(
        who, bucket, object_id(), name, meta, schema, unique_name=True
    )
    return json_reply(
        {
            "message": "Data source created successfully",
            "dataSource": source_out(source, bucket.key),
        },
        201,
    )


# --- keys ------------------------------------------------------------------------------


def key_out(key: ApiKey, bucket_key: str) -> dict[str, Any]:
    kind = key_kind(key.scopes)
    return {
        "_id": key.key_id,
        "name": key.name,
        "type": kind,
        "keyPrefix": f"dakkio_{KIND_LETTER[kind]}_{key.key_id}",
        "bucketId": bucket_key,
        "permissions": list(key.scopes),
        "createdAt": ms_text(key.created_us),
    }


@router.get(
    "/api/buckets/{bucket_id}/keys",
    summary="dakkio: list a bucket's keys (admin key)",
    openapi_extra=PAGE_DOC,
)
async def list_keys(
    request: Request,
    bucket_id: str,
    who: Principal = Depends(admin_principal),
    catalog: Catalog = Depends(catalog_of),
) -> Response:
    limit, offset = page_params(request)
    bucket = await catalog.buckets.get(who, bucket_id, "admin")
    active = [k for k in await catalog.keys.all(who, bucket) if k.revoked_us is None]
    items = [key_out(k, bucket.key) for k in active[offset : offset + limit]]
    return json_reply(
        {"apiKeys": items, "data": items, "pagination": pagination(limit, offset, len(active))}
    )


@router.post(
    "/api/buckets/{bucket_id}/keys",
    status_code=201,
    summary="dakkio: create a key",
    openapi_extra=openapi.body(KEY_SCHEMA, {"name": "ESP32 writer", "type": "write"}),
)
async def create_key(
    request: Request,
    bucket_id: str,
    who: Principal = Depends(admin_principal),
    catalog: Catalog = Depends(catalog_of),
) -> Response:
    require(who, "admin")
    body = await json_object(request)
    details = Details()
    name = text_field(body, "name", details, required=True, max_len=100)
    kind = body.get("type", MISSING)
    if not isinstance(kind, str) or kind not in KEY_SCOPES:  # (a dict is no dict key: a 500)
        shown = f"'{kind}'" if isinstance(kind, str) else "undefined" if kind is MISSING else kind
        details.add(
            ["body", "type"], f"Invalid enum value. Expected 'write' | 'read', received {shown}"
        )
    if details or name is None:
        raise details.error()
    bucket = await catalog.buckets.get(who, bucket_id, "admin")
    # A dakkio key's id is a 24-hex ObjectId; its token is dakkio_<w|r>_<id>_<secret>.
    new = NewKey(object_id(), secrets.token_urlsafe(24))
    stored, _ = await catalog.keys.create(
        who, name, KEY_SCOPES[kind], bucket, key=new, unique_name=True
    )
    plaintext = f"dakkio_{KIND_LETTER[kind]}_{new.key_id}_{new.secret}"
    return json_reply(
        {
            "message": "API key created successfully. Store it now: it is not shown again.",
            "apiKey": {**key_out(stored, bucket.key), "key": plaintext},
            "key": plaintext,
        },
        201,
    )


@router.delete("/api/buckets/{bucket_id}/keys/{key_id}", summary="dakkio: delete a key")
async def delete_key(
    bucket_id: str,
    key_id: str,
    who: Principal = Depends(admin_principal),
    catalog: Catalog = Depends(catalog_of),
) -> Response:
    bucket = await catalog.buckets.get(who, bucket_id, "admin")
    await catalog.keys.revoke(who, key_id, bucket)
    return json_reply({"message": "API key deleted successfully"})
