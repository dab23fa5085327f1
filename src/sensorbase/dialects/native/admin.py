"""Organisations, buckets, sources and keys; the token endpoint; who am I."""

from __future__ import annotations

import secrets
from typing import Any, Literal

from fastapi import Depends, Query, Request
from pydantic import BaseModel, Field

from sensorbase.auth import access
from sensorbase.auth.keys import Principal
from sensorbase.dialects import openapi
from sensorbase.dialects.base import dialect_router, services
from sensorbase.dialects.native.deps import principal
from sensorbase.dialects.native.fields import KEY_HELP, Key, Meta, Name, Text, keys_are_names
from sensorbase.dialects.native.problems import native_router
from sensorbase.dialects.oauth import (
    OAUTH_ERROR_SCHEMA,
    exchange,
    render_oauth_error,
    token_reply,
)
from sensorbase.errors import Conflict, NotFound, Problem, invalid
from sensorbase.limits import MAX_OFFSET
from sensorbase.model import ApiKey, Bucket, FieldSpec, Organisation, Scope, Source
from sensorbase.storage.base import Reader, WriteTx
from sensorbase.times import format_us, now_us

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


def new_source_key() -> str:
    """A generated source key shaped like a Datacooee input id: `sen` and 10 hex digits."""
    return "sen" + secrets.token_hex(5)


def org_out(org: Organisation) -> dict[str, Any]:
    return {"key": org.key, "name": org.name, "created": format_us(org.created_us)}


def bucket_out(bucket: Bucket) -> dict[str, Any]:
    return {
        "key": bucket.key,
        "name": bucket.name,
        "description": bucket.description,
        "meta": bucket.meta,
        "created": format_us(bucket.created_us),
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
async def whoami(request: Request, who: Principal = Depends(principal)) -> dict[str, Any]:
    def find(reader: Reader) -> dict[str, Any]:
        org = reader.get_org_by_id(who.org_id)
        bucket = reader.get_bucket_by_id(who.org_id, who.bucket_id) if who.bucket_id else None
        return {
            "key": who.key_id,
            "organisation": org.key if org else None,
            "scopes": list(who.scopes),
            "bucket": bucket.key if bucket else None,
            "server_admin": who.server_admin,
        }

    return await services(request).read(find)


# --- organisations (server administrators) --------------------------------------------


@router.get("/orgs", summary="List organisations (server admin)")
async def list_orgs(request: Request, who: Principal = Depends(principal)) -> dict[str, Any]:
    access.require_server_admin(who)
    orgs = await services(request).read(lambda r: r.list_orgs())
    return {"orgs": [org_out(o) for o in orgs]}


@router.post("/orgs", status_code=201, summary="Create an organisation (server admin)")
async def create_org(
    request: Request, body: OrgIn, who: Principal = Depends(principal)
) -> dict[str, Any]:
    access.require_server_admin(who)

    def create(tx: WriteTx) -> Organisation:
        if tx.get_org(body.key) is not None:
            raise Conflict(f"organisation '{body.key}' already exists")
        return tx.create_org(body.key, body.name or body.key)

    return org_out(await services(request).committer.run(create))


async def _org(request: Request, key: str) -> Organisation:
    org = await services(request).read(lambda r: r.get_org(key))
    if org is None:
        raise NotFound(f"organisation '{key}' not found")
    return org


@router.delete("/orgs/{org}", status_code=204, summary="Delete an organisation and all its data")
async def delete_org(request: Request, org: str, who: Principal = Depends(principal)) -> None:
    access.require_server_admin(who)
    found = await _org(request, org)
    if found.id == who.org_id:
        # It holds the very key of this request: deleting it would lock the server's
        # administrator out (the first start's key is the only server admin key).
        raise Conflict(
            f"organisation '{org}' holds the key of this request: delete it with a server "
            "administrator's key of another organisation"
        )
    svc = services(request)
    await svc.ingest.delete(lambda tx: tx.delete_org(found.id))
    svc.keys.clear()


@router.post("/orgs/{org}/keys", status_code=201, summary="Create a key in an organisation")
async def create_org_key(
    request: Request, org: str, body: KeyIn, who: Principal = Depends(principal)
) -> dict[str, Any]:
    access.require_server_admin(who)
    found = await _org(request, org)
    return await _create_key(request, found.id, body, None)


# --- buckets ---------------------------------------------------------------------------


@router.get("/buckets", summary="List buckets")
async def list_buckets(
    request: Request,
    limit: int = Query(100, ge=1, le=1000),
    offset: int = Query(0, ge=0, le=MAX_OFFSET),
    who: Principal = Depends(principal),
) -> dict[str, Any]:
    access.require(who, "data:read")

    def find(reader: Reader) -> tuple[list[Bucket], int]:
        if who.bucket_id is not None:
            only = reader.get_bucket_by_id(who.org_id, who.bucket_id)
            return ([only] if only else []), 1
        return reader.list_buckets(who.org_id, limit, offset)

    found, total = await services(request).read(find)
    return {
        "buckets": [bucket_out(b) for b in found],
        "total": total,
        "limit": limit,
        "offset": offset,
    }


@router.post("/buckets", status_code=201, summary="Create a bucket")
async def create_bucket(
    request: Request, body: BucketIn, who: Principal = Depends(principal)
) -> dict[str, Any]:
    access.require(who, "admin")

    def create(tx: WriteTx) -> Bucket:
        if tx.get_bucket(who.org_id, body.key) is not None:
            raise Conflict(f"bucket '{body.key}' already exists")
        return tx.create_bucket(
            who.org_id, body.key, body.name or body.key, body.description, body.meta
        )

    return bucket_out(await services(request).committer.run(create))


@router.get("/buckets/{bucket}", summary="A bucket, with counts")
async def get_bucket(
    request: Request, bucket: str, who: Principal = Depends(principal)
) -> dict[str, Any]:
    def find(reader: Reader) -> dict[str, Any]:
        found = access.bucket(reader, who, bucket, "data:read")
        return {**bucket_out(found), "stats": reader.bucket_stats(found.id)}

    return await services(request).read(find)


@router.delete("/buckets/{bucket}", status_code=204, summary="Delete a bucket and its data")
async def delete_bucket(request: Request, bucket: str, who: Principal = Depends(principal)) -> None:
    svc = services(request)
    found = await svc.read(lambda r: access.bucket(r, who, bucket, "admin"))
    await svc.ingest.delete(lambda tx: tx.delete_bucket(found.id))
    svc.keys.clear()


# --- sources ---------------------------------------------------------------------------


@router.get("/buckets/{bucket}/sources", summary="List the sources of a bucket")
async def list_sources(
    request: Request,
    bucket: str,
    limit: int = Query(100, ge=1, le=1000),
    offset: int = Query(0, ge=0, le=MAX_OFFSET),
    who: Principal = Depends(principal),
) -> dict[str, Any]:
    def find(reader: Reader) -> tuple[list[Source], int]:
        found = access.bucket(reader, who, bucket, "data:read")
        return reader.list_sources(found.id, limit, offset)

    sources, total = await services(request).read(find)
    return {
        "sources": [source_out(s) for s in sources],
        "total": total,
        "limit": limit,
        "offset": offset,
    }


@router.post("/buckets/{bucket}/sources", status_code=201, summary="Create a source")
async def create_source(
    request: Request, bucket: str, body: SourceIn, who: Principal = Depends(principal)
) -> dict[str, Any]:
    svc = services(request)
    found = await svc.read(lambda r: access.bucket(r, who, bucket, "data:write"))
    schema = None
    if body.schema_ is not None:
        schema = {n: FieldSpec(f.type, f.unit, f.description) for n, f in body.schema_.items()}

    key = body.key or new_source_key()

    def create(tx: WriteTx) -> Source:
        if tx.get_source(found.id, key) is not None:
            raise Conflict(f"source '{key}' already exists in bucket '{bucket}'")
        return tx.create_source(who.org_id, found.id, key, body.name or key, body.meta, schema)

    return source_out(await svc.committer.run(create))


@router.get("/buckets/{bucket}/sources/{source}", summary="A source, with its series")
async def get_source(
    request: Request, bucket: str, source: str, who: Principal = Depends(principal)
) -> dict[str, Any]:
    def find(reader: Reader) -> dict[str, Any]:
        found = access.bucket(reader, who, bucket, "data:read")
        src = reader.get_source(found.id, source)
        if src is None:
            raise NotFound(f"source '{source}' not found in bucket '{bucket}'")
        fields = [
            {"field": s.field, "unit": s.unit, "meta": s.meta}
            for s in reader.list_source_series(src.id)
        ]
        return {**source_out(src), "fields": fields}

    return await services(request).read(find)


@router.delete(
    "/buckets/{bucket}/sources/{source}", status_code=204, summary="Delete a source and its data"
)
async def delete_source(
    request: Request, bucket: str, source: str, who: Principal = Depends(principal)
) -> None:
    svc = services(request)

    def find(reader: Reader) -> Source:
        found = access.bucket(reader, who, bucket, "admin")
        src = reader.get_source(found.id, source)
        if src is None:
            raise NotFound(f"source '{source}' not found in bucket '{bucket}'")
        return src

    src = await svc.read(find)
    await svc.ingest.delete(lambda tx: tx.delete_source(src.id))


# --- keys ------------------------------------------------------------------------------


async def _create_key(
    request: Request, org_id: int, body: KeyIn, who: Principal | None
) -> dict[str, Any]:
    svc = services(request)
    bucket_id = None
    if body.bucket is not None:

        def find(reader: Reader) -> int:
            found = reader.get_bucket(org_id, body.bucket or "")
            if found is None:  # (400: the body names what is not found, not the URL)
                raise invalid(
                    [Problem(f"no bucket '{body.bucket}' in this organisation", "bucket")]
                )
            return found.id

        bucket_id = await svc.read(find)
    stored, new = await svc.create_key(org_id, body.name, tuple(body.scopes), bucket_id)
    return {**key_out(stored, body.bucket), "key": new.token, "secret": new.secret}


@router.get("/keys", summary="List the organisation's keys")
async def list_keys(request: Request, who: Principal = Depends(principal)) -> dict[str, Any]:
    access.require(who, "admin")

    def find(reader: Reader) -> list[dict[str, Any]]:
        names = {b.id: b.key for b in reader.list_buckets(who.org_id, 1_000_000, 0)[0]}
        return [
            key_out(k, names.get(k.bucket_id) if k.bucket_id else None)
            for k in reader.list_keys(who.org_id)
        ]

    return {"keys": await services(request).read(find)}


@router.post("/keys", status_code=201, summary="Create a key (its secret is shown once)")
async def create_key(
    request: Request, body: KeyIn, who: Principal = Depends(principal)
) -> dict[str, Any]:
    access.require(who, "admin")
    return await _create_key(request, who.org_id, body, who)


@router.delete("/keys/{key_id}", status_code=204, summary="Revoke a key")
async def revoke_key(request: Request, key_id: str, who: Principal = Depends(principal)) -> None:
    access.require(who, "admin")
    svc = services(request)
    key = await svc.read(lambda r: r.get_key(key_id))
    if key is None or key.org_id != who.org_id:
        raise NotFound(f"key '{key_id}' not found")
    await svc.revoke_key(key_id, now_us())
