"""Buckets and data sources changed and deleted, in dakkio's REST style: `PATCH` (and `PUT`,
which dakkio's clients also send: both change only the fields given) and `DELETE` on
`/api/buckets/:id` and `/api/buckets/:bucketId/sources/:id`, plus `GET` of one data source.

    PATCH /api/buckets/507f1f77bcf86cd799439011
    X-API-Key: dakkio_a_…            (or Authorization: Bearer <jwt>)
    {"name": "Home (old)", "status": "archived"}

    200 {"message": "Bucket updated successfully", "bucket": {"_id": "507f…011",
         "name": "Home (old)", "status": "archived", ...}}

An archived bucket refuses every write, on every route of every dialect and over MQTT
(ingest/pipeline.py `writable`), and still answers reads. `retentionDays` (1 to 3650, checked by
retention.py) is the bucket's retention in whole days (docs/lifecycle.md); unlike the other
members, `null` is not as absent: it takes the retention off (points kept forever), as on
`POST /api/buckets`.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from fastapi import Depends, Request, Response

from sensorbase.auth.keys import Principal
from sensorbase.catalog import Catalog
from sensorbase.catalog.buckets import BucketChanges
from sensorbase.dialects import openapi
from sensorbase.dialects.base import catalog_of, dialect_router
from sensorbase.dialects.dakkio.admin import (
    DESCRIPTION_TEXT,
    NAME_TEXT,
    SOURCE_SCHEMA,
    bucket_out,
    field_schema,
    source_out,
    text_field,
)
from sensorbase.dialects.dakkio.body import json_object
from sensorbase.dialects.dakkio.credential import admin_principal, require
from sensorbase.dialects.dakkio.errors import (
    ERROR_SCHEMA,
    Details,
    expected,
    json_reply,
    render_error,
)
from sensorbase.dialects.dakkio.retention import DAY_US, RETENTION_DAYS, retention_days
from sensorbase.model import BUCKET_STATUSES, BucketStatus

router = dialect_router("dakkio", render_error, tags=["dakkio"], error_schema=ERROR_SCHEMA)

# A member given as null leaves its part as it is, but for `retentionDays` (null: forever).
BUCKET_CHANGE_SCHEMA = {
    "type": "object",
    "properties": {
        "name": openapi.nullable(NAME_TEXT),
        "description": DESCRIPTION_TEXT,
        "status": openapi.nullable({"type": "string", "enum": list(BUCKET_STATUSES)}),
        "retentionDays": RETENTION_DAYS,
    },
}
SOURCE_CHANGE_SCHEMA = {
    "type": "object",
    "properties": {
        k: v if k == "description" else openapi.nullable(v)
        for k, v in SOURCE_SCHEMA["properties"].items()  # type: ignore[attr-defined]
    },
}
_BUCKET_DOC = openapi.body(BUCKET_CHANGE_SCHEMA, {"name": "Home (old)", "status": "archived"})
_SOURCE_DOC = openapi.body(SOURCE_CHANGE_SCHEMA, {"name": "Kitchen", "downsampling": False})


def _bucket_changes(body: dict[str, Any]) -> BucketChanges:
    details = Details()
    name = text_field(body, "name", details, required=False, max_len=100)
    if "name" in body and isinstance(name, str) and not name.strip():
        details.add(["body", "name"], "String must contain at least 1 character(s)")
    description = text_field(body, "description", details, required=False, max_len=500)
    status = body.get("status")
    if status is not None and status not in BUCKET_STATUSES:
        options = " | ".join(f"'{s}'" for s in BUCKET_STATUSES)
        shown = f"'{status}'" if isinstance(status, str) else expected("string", status)
        details.add(["body", "status"], f"Invalid enum value. Expected {options}, received {shown}")
    days = retention_days(body, details)
    if details:
        raise details.error()
    known: BucketStatus | None = status  # (checked above)
    changes = BucketChanges(name, description, known)
    if "retentionDays" in body:
        return replace(changes, retention_us=None if days is None else days * DAY_US)
    return changes


async def _update_bucket(
    request: Request, bucket_id: str, who: Principal, catalog: Catalog
) -> Response:
    require(who, "admin")
    changes = _bucket_changes(await json_object(request))
    bucket = await catalog.buckets.update(who, bucket_id, changes, unique_name=True)
    org_key = (await catalog.orgs.mine(who)).key
    return json_reply(
        {"message": "Bucket updated successfully", "bucket": bucket_out(bucket, org_key)}
    )


@router.patch(
    "/api/buckets/{bucket_id}",
    summary="dakkio: change a bucket: name, description, status, retentionDays (admin key or JWT)",
    openapi_extra=_BUCKET_DOC,
)
async def patch_bucket(
    request: Request,
    bucket_id: str,
    who: Principal = Depends(admin_principal),
    catalog: Catalog = Depends(catalog_of),
) -> Response:
    return await _update_bucket(request, bucket_id, who, catalog)


@router.put(
    "/api/buckets/{bucket_id}",
    summary="dakkio: change a bucket (as PATCH)",
    openapi_extra=_BUCKET_DOC,
)
async def put_bucket(
    request: Request,
    bucket_id: str,
    who: Principal = Depends(admin_principal),
    catalog: Catalog = Depends(catalog_of),
) -> Response:
    return await _update_bucket(request, bucket_id, who, catalog)


@router.delete(
    "/api/buckets/{bucket_id}",
    summary="dakkio: delete a bucket with its data sources, points and keys (admin key or JWT)",
)
async def delete_bucket(
    bucket_id: str,
    who: Principal = Depends(admin_principal),
    catalog: Catalog = Depends(catalog_of),
) -> Response:
    require(who, "admin")
    await catalog.buckets.delete(who, bucket_id)
    return json_reply({"message": "Bucket deleted successfully"})


# --- data sources ----------------------------------------------------------------------


@router.get("/api/buckets/{bucket_id}/sources/{source_id}", summary="dakkio: a data source")
async def get_source(
    bucket_id: str,
    source_id: str,
    who: Principal = Depends(admin_principal),
    catalog: Catalog = Depends(catalog_of),
) -> Response:
    source = await catalog.sources.get(who, bucket_id, source_id)
    return json_reply({"dataSource": source_out(source, bucket_id)})


async def _update_source(
    request: Request, bucket_id: str, source_id: str, who: Principal, catalog: Catalog
) -> Response:
    require(who, "data:write")
    body = await json_object(request)
    details = Details()
    name = text_field(body, "name", details, required=False, max_len=100)
    if "name" in body and isinstance(name, str) and not name.strip():
        details.add(["body", "name"], "String must contain at least 1 character(s)")
    meta: dict[str, Any] = {}
    kind = text_field(body, "type", details, required=False, max_len=100)
    if kind is not None:
        meta["type"] = kind
    description = text_field(body, "description", details, required=False, max_len=500)
    if description is not None:
        meta["description"] = description
    if body.get("downsampling") is not None:
        downsampling = body["downsampling"]
        if isinstance(downsampling, bool):
            meta["downsampling"] = downsampling
        else:
            details.add(["body", "downsampling"], expected("boolean", downsampling))
    schema = field_schema(body["schema"], details) if body.get("schema") is not None else None
    if details:
        raise details.error()
    source = await catalog.sources.update(
        who, bucket_id, source_id, name=name, meta=meta, schema=schema, unique_name=True
    )
    return json_reply(
        {"message": "Data source updated successfully", "dataSource": source_out(source, bucket_id)}
    )


@router.patch(
    "/api/buckets/{bucket_id}/sources/{source_id}",
    summary="dakkio: change a data source: name, type, description, schema, downsampling",
    openapi_extra=_SOURCE_DOC,
)
async def patch_source(
    request: Request,
    bucket_id: str,
    source_id: str,
    who: Principal = Depends(admin_principal),
    catalog: Catalog = Depends(catalog_of),
) -> Response:
    return await _update_source(request, bucket_id, source_id, who, catalog)


@router.put(
    "/api/buckets/{bucket_id}/sources/{source_id}",
    summary="dakkio: change a data source (as PATCH)",
    openapi_extra=_SOURCE_DOC,
)
async def put_source(
    request: Request,
    bucket_id: str,
    source_id: str,
    who: Principal = Depends(admin_principal),
    catalog: Catalog = Depends(catalog_of),
) -> Response:
    return await _update_source(request, bucket_id, source_id, who, catalog)


@router.delete(
    "/api/buckets/{bucket_id}/sources/{source_id}",
    summary="dakkio: delete a data source with its points (admin key or JWT)",
)
async def delete_source(
    bucket_id: str,
    source_id: str,
    who: Principal = Depends(admin_principal),
    catalog: Catalog = Depends(catalog_of),
) -> Response:
    require(who, "admin")
    await catalog.sources.delete(who, bucket_id, source_id)
    return json_reply({"message": "Data source deleted successfully"})
