"""Groups: sources gathered across buckets under one integer id (a Datacooee asset).

    POST /v1/groups {"name": "Boiler room", "sources": ["senA", {"bucket": "farm", "source": "senB"}]}
    → 201 {"id": 67, "name": "Boiler room", "meta": {}, "created": "...",
           "sources": [{"bucket": "farm", "source": "senA"}, {"bucket": "farm", "source": "senB"}]}

A member is a source key (found anywhere in the organisation; the oldest if two buckets share
it) or `{"bucket", "source"}`. Groups span buckets, so a key limited to one bucket cannot
manage or list them.
"""  # noqa: E501

from __future__ import annotations

from typing import Any

from fastapi import Depends, Path, Request
from pydantic import BaseModel, Field

from sensorbase.auth import access
from sensorbase.auth.keys import Principal
from sensorbase.dialects.base import services
from sensorbase.dialects.native.deps import principal
from sensorbase.dialects.native.fields import Meta, Name
from sensorbase.dialects.native.problems import native_router
from sensorbase.errors import Forbidden, NotFound, Problem, invalid
from sensorbase.limits import MAX_ID
from sensorbase.model import Group, Scope
from sensorbase.storage.base import Reader, WriteTx
from sensorbase.times import format_us

router = native_router()
GroupId = Path(..., ge=1, le=MAX_ID, description="The group's integer id")


class SourceRef(BaseModel):
    bucket: Name
    source: Name


Member = Name | SourceRef


class GroupIn(BaseModel):
    name: Name
    meta: Meta = Field(default_factory=dict)
    sources: list[Member] = Field(
        default_factory=list, description="Source keys or {bucket, source}"
    )


class MembersIn(BaseModel):
    sources: list[Member]


def _allowed(who: Principal, scope: Scope) -> None:
    access.require(who, scope)
    if who.bucket_id is not None:
        raise Forbidden("groups span buckets: use a key that is not limited to one bucket")


def _resolve(reader: Reader, org_id: int, members: list[Member]) -> list[int]:
    """Source ids of the members; every unknown one named (400: the body names what is not
    found; a 404 would say the group itself is not)."""
    ids: list[int] = []
    problems: list[Problem] = []
    for i, member in enumerate(members):
        if isinstance(member, str):
            found = reader.find_source(org_id, member)
            shown = f"'{member}'"
        else:
            bucket = reader.get_bucket(org_id, member.bucket)
            found = reader.get_source(bucket.id, member.source) if bucket else None
            shown = f"'{member.source}' in bucket '{member.bucket}'"
        if found is None:
            problems.append(Problem(f"no source {shown} in this organisation", "sources", i))
        else:
            ids.append(found.id)
    if problems:
        raise invalid(problems)
    return ids


def group_out(reader: Reader, group: Group) -> dict[str, Any]:
    sources = []
    buckets: dict[int, str] = {}
    for source_id in group.source_ids:
        source = reader.get_source_by_id(group.org_id, source_id)
        if source is None:
            continue
        if source.bucket_id not in buckets:
            bucket = reader.get_bucket_by_id(group.org_id, source.bucket_id)
            buckets[source.bucket_id] = bucket.key if bucket else ""
        sources.append({"bucket": buckets[source.bucket_id], "source": source.key})
    return {
        "id": group.id,
        "name": group.name,
        "meta": group.meta,
        "created": format_us(group.created_us),
        "sources": sources,
    }


def _group(reader: Reader, org_id: int, group_id: int) -> Group:
    found = reader.get_group(org_id, group_id)
    if found is None:
        raise NotFound(f"group {group_id} not found")
    return found


@router.get("/groups", summary="List groups (Datacooee assets)")
async def list_groups(request: Request, who: Principal = Depends(principal)) -> dict[str, Any]:
    _allowed(who, "data:read")

    def find(reader: Reader) -> list[dict[str, Any]]:
        return [group_out(reader, g) for g in reader.list_groups(who.org_id)]

    return {"groups": await services(request).read(find)}


@router.post("/groups", status_code=201, summary="Create a group of sources")
async def create_group(
    request: Request, body: GroupIn, who: Principal = Depends(principal)
) -> dict[str, Any]:
    _allowed(who, "data:write")
    svc = services(request)
    ids = await svc.read(lambda reader: _resolve(reader, who.org_id, body.sources))
    created = await svc.committer.run(
        lambda tx: tx.create_group(who.org_id, body.name, body.meta, ids)
    )
    return await svc.read(lambda reader: group_out(reader, _group(reader, who.org_id, created.id)))


@router.get("/groups/{group_id}", summary="A group and its sources")
async def get_group(
    request: Request, group_id: int = GroupId, who: Principal = Depends(principal)
) -> dict[str, Any]:
    _allowed(who, "data:read")
    return await services(request).read(
        lambda reader: group_out(reader, _group(reader, who.org_id, group_id))
    )


@router.put("/groups/{group_id}/sources", summary="Replace the sources of a group")
async def set_group_sources(
    request: Request, body: MembersIn, group_id: int = GroupId, who: Principal = Depends(principal)
) -> dict[str, Any]:
    _allowed(who, "data:write")
    svc = services(request)

    def resolve(reader: Reader) -> list[int]:
        _group(reader, who.org_id, group_id)
        return _resolve(reader, who.org_id, body.sources)

    ids = await svc.read(resolve)

    def update(tx: WriteTx) -> None:
        tx.set_group_members(group_id, ids)

    await svc.committer.run(update)
    return await svc.read(lambda reader: group_out(reader, _group(reader, who.org_id, group_id)))


@router.delete("/groups/{group_id}", status_code=204, summary="Delete a group (not its sources)")
async def delete_group(
    request: Request, group_id: int = GroupId, who: Principal = Depends(principal)
) -> None:
    _allowed(who, "admin")
    svc = services(request)
    await svc.read(lambda reader: _group(reader, who.org_id, group_id))
    await svc.committer.run(lambda tx: tx.delete_group(group_id))
