"""The one tenancy check. Every route that touches a bucket asks here, with the principal's
organisation: another organisation's bucket is indistinguishable from one that does not exist."""

from __future__ import annotations

from sensorbase.auth.keys import Principal
from sensorbase.errors import Forbidden, NotFound
from sensorbase.model import Bucket, Scope
from sensorbase.storage.base import Reader


def require(principal: Principal, scope: Scope) -> None:
    if not principal.has(scope):
        raise Forbidden(f"this key lacks the '{scope}' scope")


def require_server_admin(principal: Principal) -> None:
    if not principal.server_admin:
        raise Forbidden("only a server administrator's key may do this")


def bucket(reader: Reader, principal: Principal, key: str, scope: Scope) -> Bucket:
    """The principal's bucket `key`, if the principal may use it for `scope`."""
    require(principal, scope)
    found = reader.get_bucket(principal.org_id, key)
    if found is None:
        raise NotFound(f"bucket '{key}' not found")
    if principal.bucket_id is not None and principal.bucket_id != found.id:
        raise Forbidden(f"this key is limited to another bucket than '{key}'")
    return found


def bucket_by_id(reader: Reader, principal: Principal, bucket_id: int, scope: Scope) -> Bucket:
    require(principal, scope)
    found = reader.get_bucket_by_id(principal.org_id, bucket_id)
    if found is None:
        raise NotFound("bucket not found")
    if principal.bucket_id is not None and principal.bucket_id != found.id:
        raise Forbidden("this key is limited to another bucket")
    return found
