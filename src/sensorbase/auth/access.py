"""The one tenancy check, asked by the catalog service and the ingest pipeline. Every operation
on a bucket, and so on everything inside one, asks here with the principal: another
organisation's bucket is indistinguishable from one that does not exist, and a key limited to
one bucket reaches no other."""

from __future__ import annotations

from typing import Protocol

from sensorbase.auth.keys import Principal
from sensorbase.errors import Forbidden, NotFound
from sensorbase.model import Bucket, Scope


class BucketByKey(Protocol):
    """A reader or a write transaction: both look buckets up."""

    def get_bucket(self, org_id: int, key: str) -> Bucket | None: ...


class BucketLookups(BucketByKey, Protocol):
    def get_bucket_by_id(self, org_id: int, bucket_id: int) -> Bucket | None: ...


def require(who: Principal, scope: Scope) -> None:
    if not who.has(scope):
        raise Forbidden(f"this key lacks the '{scope}' scope", needs=scope)


def require_server_admin(who: Principal) -> None:
    if not who.server_admin:
        raise Forbidden("only a server administrator's key may do this", needs="server_admin")


def require_whole_org(who: Principal, what: str) -> None:
    """For what spans buckets (groups, users, keys of the organisation)."""
    if who.bucket_id is not None:
        raise Forbidden(f"{what}: use a key that is not limited to one bucket")


def bucket(reader: BucketByKey, who: Principal, key: str, scope: Scope) -> Bucket:
    """The principal's bucket `key`, if the principal may use it for `scope`."""
    require(who, scope)
    found = reader.get_bucket(who.org_id, key)
    if found is None:
        raise NotFound(f"bucket '{key}' not found", what="bucket", name=key)
    if who.bucket_id is not None and who.bucket_id != found.id:
        raise Forbidden(f"this key is limited to another bucket than '{key}'")
    return found


def bucket_by_id(reader: BucketLookups, who: Principal, bucket_id: int, scope: Scope) -> Bucket:
    require(who, scope)
    found = reader.get_bucket_by_id(who.org_id, bucket_id)
    if found is None:
        raise NotFound("bucket not found", what="bucket", name=str(bucket_id))
    if who.bucket_id is not None and who.bucket_id != found.id:
        raise Forbidden("this key is limited to another bucket")
    return found


def may_see(who: Principal, found: Bucket) -> bool:
    return found.org_id == who.org_id and who.bucket_id in (None, found.id)
