"""Groups: sources gathered across buckets under one integer id (a Datacooee asset). They span
buckets, so a key limited to one bucket can neither manage nor list them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sensorbase.auth import access as tenancy
from sensorbase.auth.keys import Principal
from sensorbase.catalog.work import Work
from sensorbase.errors import NotFound, Problem, invalid
from sensorbase.model import Bucket, Group, Scope, Source
from sensorbase.storage.base import Reader

# A member as a request names it: (bucket key, source key), or (None, source key) for the
# source of that key anywhere in the organisation (the oldest, if two buckets share it).
Member = tuple[str | None, str]


@dataclass(frozen=True, slots=True)
class GroupView:
    group: Group
    members: list[tuple[Source, Bucket]]


class Groups:
    def __init__(self, work: Work) -> None:
        self._work = work

    async def all(self, who: Principal) -> list[GroupView]:
        _allowed(who, "data:read")
        return await self._work.read(lambda r: [_view(r, g) for g in r.list_groups(who.org_id)])

    async def get(self, who: Principal, group_id: int) -> GroupView:
        _allowed(who, "data:read")
        return await self._work.read(lambda r: _view(r, _group(r, who.org_id, group_id)))

    async def get_to_read(self, who: Principal, group_id: int) -> GroupView:
        """A group whose members' points are to be read, for any key with data:read, a key
        limited to one bucket too: its caller reads only the members in that bucket (as
        Datacooee lets such a key read an asset's inputs that lie in its bucket)."""
        tenancy.require(who, "data:read")
        return await self._work.read(lambda r: _view(r, _group(r, who.org_id, group_id)))

    async def create(
        self, who: Principal, name: str, meta: dict[str, Any], members: list[Member]
    ) -> GroupView:
        _allowed(who, "data:write")
        ids = await self._work.read(lambda r: _resolve(r, who.org_id, members))
        created = await self._work.write(lambda tx: tx.create_group(who.org_id, name, meta, ids))
        return await self.get(who, created.id)

    async def set_members(self, who: Principal, group_id: int, members: list[Member]) -> GroupView:
        _allowed(who, "data:write")

        def resolve(reader: Reader) -> list[int]:
            _group(reader, who.org_id, group_id)
            return _resolve(reader, who.org_id, members)

        ids = await self._work.read(resolve)
        await self._work.write(lambda tx: tx.set_group_members(group_id, ids))
        return await self.get(who, group_id)

    async def delete(self, who: Principal, group_id: int) -> None:
        _allowed(who, "admin")
        await self._work.read(lambda r: _group(r, who.org_id, group_id))
        await self._work.write(lambda tx: tx.delete_group(group_id))


def _allowed(who: Principal, scope: Scope) -> None:
    tenancy.require(who, scope)
    tenancy.require_whole_org(who, "groups span buckets")


def _group(reader: Reader, org_id: int, group_id: int) -> Group:
    found = reader.get_group(org_id, group_id)
    if found is None:
        raise NotFound(f"group {group_id} not found", what="group", name=str(group_id))
    return found


def _view(reader: Reader, group: Group) -> GroupView:
    members = []
    buckets: dict[int, Bucket | None] = {}
    for source_id in group.source_ids:
        source = reader.get_source_by_id(group.org_id, source_id)
        if source is None:
            continue
        if source.bucket_id not in buckets:
            buckets[source.bucket_id] = reader.get_bucket_by_id(group.org_id, source.bucket_id)
        bucket = buckets[source.bucket_id]
        if bucket is not None:
            members.append((source, bucket))
    return GroupView(group, members)


def _resolve(reader: Reader, org_id: int, members: list[Member]) -> list[int]:
    """Source ids of the members; every unknown one named (400: the body names what is not
    found; a 404 would say the group itself is not)."""
    ids: list[int] = []
    problems: list[Problem] = []
    for i, (bucket_key, source_key) in enumerate(members):
        if bucket_key is None:
            found = reader.find_source(org_id, source_key)
            shown = f"'{source_key}'"
        else:
            bucket = reader.get_bucket(org_id, bucket_key)
            found = reader.get_source(bucket.id, source_key) if bucket else None
            shown = f"'{source_key}' in bucket '{bucket_key}'"
        if found is None:
            problems.append(
                Problem(f"no source {shown} in this organisation", "sources", i, "unknown_source")
            )
        else:
            ids.append(found.id)
    if problems:
        raise invalid(problems)
    return ids
