"""Organisations: created and deleted by server administrators; every principal sees its own."""

from __future__ import annotations

from collections.abc import Callable

from sensorbase.auth import access as tenancy
from sensorbase.auth.keys import KeyRing, Principal
from sensorbase.catalog.recent import Recent
from sensorbase.catalog.work import Work
from sensorbase.errors import Conflict, NotFound
from sensorbase.model import Organisation
from sensorbase.storage.base import Reader, WriteTx


class Orgs:
    def __init__(self, work: Work, keys: KeyRing) -> None:
        self._work = work
        self._keys = keys
        self._seen: Recent[Organisation | None] = Recent(keys)
        work.on_change(self._seen.clear)

    async def mine(self, who: Principal) -> Organisation:
        found = await self._cached(who.org_id, lambda r: r.get_org_by_id(who.org_id))
        if found is None:  # deleted since the key was looked up
            raise NotFound("organisation not found", what="organisation")
        return found

    async def named(self, key: str) -> Organisation | None:
        """An organisation by key, without a principal: for a dialect whose credentials name
        the organisation (Datacooee's ORGANIZATION-API-KEY header), before any check."""
        return await self._cached(key, lambda r: r.get_org(key))

    async def _cached(
        self, name: int | str, read: Callable[[Reader], Organisation | None]
    ) -> Organisation | None:
        """An organisation (by id or key) read at most once per `key_cache_s` (recent.py):
        the ingest routes of Datacooee and DiagRAMS check the organisation a request names on
        every request. A deleted organisation's keys are refused before it is looked up."""
        hit = self._seen.get(name)
        if hit is not None:
            return hit[0]
        return self._seen.put(name, await self._work.read(read))

    async def all(self, who: Principal) -> list[Organisation]:
        tenancy.require_server_admin(who)
        return await self._work.read(lambda r: r.list_orgs())

    async def get(self, who: Principal, key: str) -> Organisation:
        tenancy.require_server_admin(who)
        found = await self.named(key)
        if found is None:
            raise NotFound(f"organisation '{key}' not found", what="organisation", name=key)
        return found

    async def create(self, who: Principal, key: str, name: str) -> Organisation:
        tenancy.require_server_admin(who)

        def create(tx: WriteTx) -> Organisation:
            if tx.get_org(key) is not None:
                raise Conflict(
                    f"organisation '{key}' already exists", what="organisation", name=key
                )
            return tx.create_org(key, name)

        return await self._work.write(create)

    async def delete(self, who: Principal, key: str) -> None:
        found = await self.get(who, key)
        if found.id == who.org_id:
            # It holds the very key of this request: deleting it would lock the server's
            # administrator out (the first start's key is the only server admin key).
            raise Conflict(
                f"organisation '{key}' holds the key of this request: delete it with a server "
                "administrator's key of another organisation",
                what="organisation",
                name=key,
            )
        await self._work.delete(lambda tx: tx.delete_org(found.id))
        self._keys.clear()
