"""API keys of an organisation: created (the secret shown once, stored as a hash), listed and
revoked by its admins; a server administrator may create one in any organisation."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from sensorbase.auth import access as tenancy
from sensorbase.auth.keys import KeyRing, NewKey, Principal, hash_secret, new_key
from sensorbase.catalog.work import Work
from sensorbase.errors import Conflict, NotFound, Problem, invalid
from sensorbase.model import ApiKey, Bucket, Organisation, Scope
from sensorbase.storage.base import Reader, WriteTx
from sensorbase.times import now_us


class Keys:
    def __init__(self, work: Work, ring: KeyRing) -> None:
        self._work = work
        self._ring = ring
        self._created: list[Callable[[ApiKey, NewKey], Awaitable[None]]] = []
        self._revoked: list[Callable[[ApiKey], Awaitable[None]]] = []

    def on_create(self, hook: Callable[[ApiKey, NewKey], Awaitable[None]]) -> None:
        """Await `hook(stored key, its id and secret)` after every key this node creates (the
        MQTT broker's client for it: mqtt/credentials.py)."""
        self._created.append(hook)

    def on_revoke(self, hook: Callable[[ApiKey], Awaitable[None]]) -> None:
        """Await `hook(the key as it was)` after every revocation this node makes."""
        self._revoked.append(hook)

    async def all(self, who: Principal, bucket: Bucket | None = None) -> list[ApiKey]:
        """The organisation's keys (revoked ones too), or those limited to `bucket`."""
        tenancy.require(who, "admin")
        bucket_id = self._checked(who, bucket)
        return await self._work.read(lambda r: r.list_keys(who.org_id, bucket_id))

    async def create(
        self,
        who: Principal,
        name: str,
        scopes: tuple[Scope, ...],
        bucket: Bucket | str | None = None,
        *,
        org: Organisation | None = None,
        key: NewKey | None = None,
        unique_name: bool = False,
    ) -> tuple[ApiKey, NewKey]:
        """A new key of the principal's organisation (or, for a server administrator, of
        `org`), limited to `bucket` if given (a bucket the catalog gave, or a key named in the
        request body: unknown, it is a problem of the body's 'bucket'). `key`: the id and
        secret to use (a dialect's own format), else generated. With `unique_name`, Conflict
        if an active key of the same bucket has the name."""
        if org is not None and org.id != who.org_id:
            tenancy.require_server_admin(who)
            org_id = org.id
        else:
            tenancy.require(who, "admin")
            org_id = who.org_id
        bucket_id = None
        if isinstance(bucket, str):
            named = bucket
            found = await self._work.read(lambda r: r.get_bucket(org_id, named))
            if found is None:  # (400: the body names what is not found, not the URL)
                reason = f"no bucket '{named}' in this organisation"
                raise invalid([Problem(reason, "bucket", None, "unknown_bucket")])
            bucket_id = found.id
        elif bucket is not None:
            if bucket.org_id != org_id:
                raise NotFound("bucket not found", what="bucket", name=bucket.key)
            bucket_id = bucket.id
        made = key or new_key()

        def create(tx: WriteTx) -> ApiKey:
            if unique_name and any(
                k.name == name and k.revoked_us is None for k in tx.list_keys(org_id, bucket_id)
            ):
                raise Conflict(
                    "API key with this name already exists in this bucket", what="key", name=name
                )
            return tx.create_key(
                org_id, made.key_id, hash_secret(made.secret), name, scopes, bucket_id, False
            )

        stored = await self._work.write(create)
        self._ring.forget(made.key_id)  # a refused guess of this id may be cached
        for hook in self._created:
            await hook(stored, made)
        return stored, made

    async def revoke(self, who: Principal, key_id: str, bucket: Bucket | None = None) -> None:
        """Revoke an active key of the organisation (of `bucket`, if given): refused from the
        next request on, here at once and on other nodes within `key_cache_s`."""
        tenancy.require(who, "admin")
        bucket_id = self._checked(who, bucket)

        def find(reader: Reader) -> ApiKey:
            found = reader.get_key(key_id)
            if (
                found is None
                or found.org_id != who.org_id
                or (bucket is not None and found.bucket_id != bucket_id)
                or (bucket is not None and found.revoked_us is not None)
            ):
                raise NotFound(f"key '{key_id}' not found", what="key", name=key_id)
            return found

        found = await self._work.read(find)
        at = now_us()
        await self._work.write(lambda tx: tx.revoke_key(key_id, at))
        self._ring.forget(key_id)
        for hook in self._revoked:
            await hook(found)

    @staticmethod
    def _checked(who: Principal, bucket: Bucket | None) -> int | None:
        if bucket is None:
            return None
        if not tenancy.may_see(who, bucket):
            raise NotFound("bucket not found", what="bucket", name=bucket.key)
        return bucket.id
