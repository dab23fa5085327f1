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

from fastapi import Depends, Path
from pydantic import BaseModel, Field

from sensorbase.auth.keys import Principal
from sensorbase.catalog import Catalog
from sensorbase.catalog.groups import GroupView, Member
from sensorbase.dialects.base import catalog_of
from sensorbase.dialects.native.deps import principal
from sensorbase.dialects.native.fields import Meta, Name
from sensorbase.dialects.native.problems import native_router
from sensorbase.limits import MAX_ID
from sensorbase.times import format_us

router = native_router()
GroupId = Path(..., ge=1, le=MAX_ID, description="The group's integer id")


class SourceRef(BaseModel):
    bucket: Name
    source: Name


MemberIn = Name | SourceRef


class GroupIn(BaseModel):
    name: Name
    meta: Meta = Field(default_factory=dict)
    sources: list[MemberIn] = Field(
        default_factory=list, description="Source keys or {bucket, source}"
    )


class MembersIn(BaseModel):
    sources: list[MemberIn]


def members(given: list[MemberIn]) -> list[Member]:
    """The members as the catalog takes them: (bucket key or None, source key)."""
    return [(None, m) if isinstance(m, str) else (m.bucket, m.source) for m in given]


def group_out(view: GroupView) -> dict[str, Any]:
    group = view.group
    return {
        "id": group.id,
        "name": group.name,
        "meta": group.meta,
        "created": format_us(group.created_us),
        "sources": [{"bucket": b.key, "source": s.key} for s, b in view.members],
    }


@router.get("/groups", summary="List groups (Datacooee assets)")
async def list_groups(
    who: Principal = Depends(principal), catalog: Catalog = Depends(catalog_of)
) -> dict[str, Any]:
    return {"groups": [group_out(v) for v in await catalog.groups.all(who)]}


@router.post("/groups", status_code=201, summary="Create a group of sources")
async def create_group(
    body: GroupIn, who: Principal = Depends(principal), catalog: Catalog = Depends(catalog_of)
) -> dict[str, Any]:
    created = await catalog.groups.create(who, body.name, body.meta, members(body.sources))
    return group_out(created)


@router.get("/groups/{group_id}", summary="A group and its sources")
async def get_group(
    group_id: int = GroupId,
    who: Principal = Depends(principal),
    catalog: Catalog = Depends(catalog_of),
) -> dict[str, Any]:
    return group_out(await catalog.groups.get(who, group_id))


@router.put("/groups/{group_id}/sources", summary="Replace the sources of a group")
async def set_group_sources(
    body: MembersIn,
    group_id: int = GroupId,
    who: Principal = Depends(principal),
    catalog: Catalog = Depends(catalog_of),
) -> dict[str, Any]:
    return group_out(await catalog.groups.set_members(who, group_id, members(body.sources)))


@router.delete("/groups/{group_id}", status_code=204, summary="Delete a group (not its sources)")
async def delete_group(
    group_id: int = GroupId,
    who: Principal = Depends(principal),
    catalog: Catalog = Depends(catalog_of),
) -> None:
    await catalog.groups.delete(who, group_id)
