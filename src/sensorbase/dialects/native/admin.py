"""Organisations, buckets, sources and keys; the token endpoint; who am I."""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Literal

from fastapi import Depends, Query, Request
from pydantic import BaseModel, Field, StrictBool

from sensorbase.auth.keys import Principal
from sensorbase.catalog import Catalog
from sensorbase.catalog.buckets import BucketChanges
from sensorbase.dialects import openapi
from sensorbase.dialects.base import catalog_of, dialect_router
from sensorbase.dialects.native.deps import principal
from sensorbase.dialects.native.fields import (
    KEY_HELP,
    Key,
    Meta,
    Name,
    Retention,
    Text,
    keys_are_names,
)
from sensorbase.dialects.native.problems import native_router
from sensorbase.dialects.oauth import (
    OAUTH_ERROR_SCHEMA,
    exchange,
    render_oauth_error,
    token_reply,
)
from sensorbase.limits import MAX_OFFSET
from sensorbase.model import ApiKey, Bucket, BucketStatus, FieldSpec, Organisation, Scope, Source
from sensorbase.times import format_duration_us, format_us, parse_duration_us

router = native_router()
token_router = dialect_router(
    "native", render_oauth_error, prefix="/v1", error_schema=OAUTH_ERROR_SCHEMA
)


class OrgIn(BaseModel):
    key: Key
    name: Name | None = None


class BucketIn(BaseModel):
    key: Key
    name: Name | None = None
    description: Text = ""
    meta: Meta = Field(default_factory=dict)
    retention: Retention = None
    keep_summaries: StrictBool = Field(
        False, description="When points expire, keep each chunk's count/min/max/sum/first/last"
    )


class BucketChange(BaseModel):
    name: Name | None = None
    description: Text | None = None
    status: BucketStatus | None = Field(
        None, description="archived: the bucket refuses every write and still answers reads"
    )
    retention: Retention = Field(None, description="Absent: unchanged; null: keep forever")
    keep_summaries: StrictBool | None = Field(None, description="Absent: unchanged")


class FieldIn(BaseModel):
    type: Literal["number", "string", "boolean"] = "number"
    unit: Name | None = None
    description: Text | None = None


class SourceIn(BaseModel):
    key: Key | None = Field(
        None, description=f"{KEY_HELP}; when absent, generated: 'sen' and 10 hex digits"
    )
    name: Name | None = None
    meta: Meta = Field(default_factory=dict)
    schema_: dict[Name, FieldIn] | None = Field(
        None,
        alias="schema",
        description="Declared fields; when set, other fields are refused",
        json_schema_extra=keys_are_names,
    )


class KeyIn(BaseModel):
    name: Name
    scopes: list[Scope] = Field(..., min_length=1)
    bucket: Key | None = Field(None, description="Limit the key to this bucket")


def org_out(org: Organisation) -> dict[str, Any]:
    return {"key": org.key, "name": org.name, "created": format_us(org.created_us)}


def bucket_out(bucket: Bucket) -> dict[str, Any]:
    return {
        "key": bucket.key,
        "name": bucket.name,
        "description": bucket.description,
        "meta": bucket.meta,
        "status": bucket.status,
        "created": format_us(bucket.created_us),
        "retention": None
        if bucket.retention_us is None
        else format_duration_us(bucket.retention_us),
        "keep_summaries": bucket.keep_summaries,
    }


def source_out(source: Source) -> dict[str, Any]:
    schema = None
    if source.schema is not None:
        schema = {
            name: {"type": s.type, "unit": s.unit, "description": s.description}
            for name, s in source.schema.items()
        }
    return {
        "key": source.key,
        "name": source.name,
        "meta": source.meta,
        "schema": schema,
        "created": format_us(source.created_us),
    }


def key_out(key: ApiKey, bucket_key: str | None) -> dict[str, Any]:
    return {
        "id": key.key_id,
        "name": key.name,
        "scopes": list(key.scopes),
        "bucket": bucket_key,
        "server_admin": key.server_admin,
        "created": format_us(key.created_us),
        "revoked": format_us(key.revoked_us) if key.revoked_us else None,
    }


# --- tokens and identity ----------------------------------------------------------------


@token_router.post(
    "/auth/token",
    summary="OAuth2 token (client_credentials, refresh_token)",
    openapi_extra=openapi.TOKEN_ROUTE,
)
async def token(request: Request, _: None = Depends(openapi.BASIC_CLIENT)) -> dict[str, Any]:
    return token_reply(await exchange(request))


@router.get("/whoami", summary="The key behind this request")
async def whoami(
    who: Principal = Depends(principal), catalog: Catalog = Depends(catalog_of)
) -> dict[str, Any]:
    org = await catalog.orgs.mine(who)
    bucket = await catalog.buckets.get_by_id(who, who.bucket_id) if who.bucket_id else None
    return {
        "key": who.key_id,
        "organisation": org.key,
        "scopes": list(who.scopes),
        "bucket": bucket.key if bucket else None,
        "server_admin": who.server_admin,
    }


# --- organisations (server administrators) --------------------------------------------


@router.get("/orgs", summary="List organisations (server admin)")
async def list_orgs(
    who: Principal = Depends(principal), catalog: Catalog = Depends(catalog_of)
) -> dict[str, Any]:
    return {"orgs": [org_out(o) for o in await catalog.orgs.all(who)]}


@router.post("/orgs", status_code=201, summary="Create an organisation (server admin)")
async def create_org(
    body: OrgIn, who: Principal = Depends(principal), catalog: Catalog = Depends(catalog_of)
) -> dict[str, Any]:
    return org_out(await catalog.orgs.create(who, body.key, body.name or body.key))


@router.delete("/orgs/{org}", status_code=204, summary="Delete an organisation and all its data")
async def delete_org(
    org: str, who: Principal = Depends(principal), catalog: Catalog = Depends(catalog_of)
) -> None:
    await catalog.orgs.delete(who, org)


@router.post("/orgs/{org}/keys", status_code=201, summary="Create a key in an organisation")
async def create_org_key(
    org: str,
    body: KeyIn,
    who: Principal = Depends(principal),
    catalog: Catalog = Depends(catalog_of),
) -> dict[str, Any]:
    found = await catalog.orgs.get(who, org)
    return await _create_key(catalog, who, body, found)


# --- buckets ---------------------------------------------------------------------------


@router.get("/buckets", summary="List buckets")
async def list_buckets(
    limit: int = Query(100, ge=1, le=1000),
    offset: int = Query(0, ge=0, le=MAX_OFFSET),
    who: Principal = Depends(principal),
    catalog: Catalog = Depends(catalog_of),
) -> dict[str, Any]:
    found, total = await catalog.buckets.page(who, limit, offset)
    return {
        "buckets": [bucket_out(b) for b in found],
        "total": total,
        "limit": limit,
        "offset": offset,
    }


@router.post("/buckets", status_code=201, summary="Create a bucket")
async def create_bucket(
    body: BucketIn, who: Principal = Depends(principal), catalog: Catalog = Depends(catalog_of)
) -> dict[str, Any]:
    created = await catalog.buckets.create(
        who,
        body.key,
        body.name or body.key,
        body.description,
        body.meta,
        retention_us=None if body.retention is None else parse_duration_us(body.retention),
        keep_summaries=body.keep_summaries,
    )
    return bucket_out(created)


@router.get("/buckets/{bucket}", summary="A bucket, with counts")
async def get_bucket(
    bucket: str, who: Principal = Depends(principal), catalog: Catalog = Depends(catalog_of)
) -> dict[str, Any]:
    found, stats = await catalog.buckets.stats(who, bucket)
    return {**bucket_out(found), "stats": stats}


@router.patch(
    "/buckets/{bucket}",
    summary="Rename, describe, archive or reactivate a bucket, or change its retention",
)
async def update_bucket(
    bucket: str,
    body: BucketChange,
    who: Principal = Depends(principal),
    catalog: Catalog = Depends(catalog_of),
) -> dict[str, Any]:
    changes = BucketChanges(
        body.name, body.description, body.status, keep_summaries=body.keep_summaries
    )
    if "retention" in body.model_fields_set:  # (null: forever, so not as absent)
        retention = body.retention
        changes = replace(
            changes, retention_us=None if retention is None else parse_duration_us(retention)
        )
    return bucket_out(await catalog.buckets.update(who, bucket, changes))


@router.delete("/buckets/{bucket}", status_code=204, summary="Delete a bucket and its data")
async def delete_bucket(
    bucket: str, who: Principal = Depends(principal), catalog: Catalog = Depends(catalog_of)
) -> None:
    await catalog.buckets.delete(who, bucket)


# --- sources ---------------------------------------------------------------------------


@router.get("/buckets/{bucket}/sources", summary="List the sources of a bucket")
async def list_sources(
    bucket: str,
    limit: int = Query(100, ge=1, le=1000),
    offset: int = Query(0, ge=0, le=MAX_OFFSET),
    who: Principal = Depends(principal),
    catalog: Catalog = Depends(catalog_of),
) -> dict[str, Any]:
    sources, total = await catalog.sources.page(who, bucket, limit, offset)
    return {
        "sources": [source_out(s) for s in sources],
        "total": total,
        "limit": limit,
        "offset": offset,
    }


@router.post("/buckets/{bucket}/sources", status_code=201, summary="Create a source")
async def create_source(
    bucket: str,
    body: SourceIn,
    who: Principal = Depends(principal),
    catalog: Catalog = Depends(catalog_of),
) -> dict[str, Any]:
    found = await catalog.buckets.get(who, bucket, "data:write")
    schema = None
    if body.schema_ is not None:
        schema = {n: FieldSpec(f.type, f.unit, f.description) for n, f in body.schema_.items()}
    created = await catalog.sources.create(who, found, body.key, body.name, body.meta, schema)
    return source_out(created)


@router.get("/buckets/{bucket}/sources/{source}", summary="A source, with its series")
async def get_source(
    bucket: str,
    source: str,
    who: Principal = Depends(principal),
    catalog: Catalog = Depends(catalog_of),
) -> dict[str, Any]:
    found, series = await catalog.sources.with_series(who, bucket, source)
    fields = [{"field": s.field, "unit": s.unit, "meta": s.meta} for s in series]
    return {**source_out(found), "fields": fields}


@router.delete(
    "/buckets/{bucket}/sources/{source}", status_code=204, summary="Delete a source and its data"
)
async def delete_source(
    bucket: str,
    source: str,
    who: Principal = Depends(principal),
    catalog: Catalog = Depends(catalog_of),
) -> None:
    await catalog.sources.delete(who, bucket, source)


# --- keys ------------------------------------------------------------------------------


async def _create_key(
    catalog: Catalog, who: Principal, body: KeyIn, org: Organisation | None = None
) -> dict[str, Any]:
    stored, new = await catalog.keys.create(
        who, body.name, tuple(body.scopes), body.bucket, org=org
    )
    return {**key_out(stored, body.bucket), "key": new.token, "secret": new.secret}


@router.get("/keys", summary="List the organisation's keys")
async def list_keys(
    who: Principal = Depends(principal), catalog: Catalog = Depends(catalog_of)
) -> dict[str, Any]:
    keys = await catalog.keys.all(who)
    names = await catalog.buckets.names(who)
    return {"keys": [key_out(k, names.get(k.bucket_id) if k.bucket_id else None) for k in keys]}


@router.post("/keys", status_code=201, summary="Create a key (its secret is shown once)")
async def create_key(
    body: KeyIn, who: Principal = Depends(principal), catalog: Catalog = Depends(catalog_of)
) -> dict[str, Any]:
    return await _create_key(catalog, who, body)


@router.delete("/keys/{key_id}", status_code=204, summary="Revoke a key")
async def revoke_key(
    key_id: str, who: Principal = Depends(principal), catalog: Catalog = Depends(catalog_of)
) -> None:
    await catalog.keys.revoke(who, key_id)
