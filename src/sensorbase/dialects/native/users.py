"""Users: people who sign in with an email and a password (Madevo's `POST /restapi/login`).

An organisation admin lists, creates, changes (role, password) and deletes the users of their
organisation; a server administrator may also create a user in any organisation. A signed-in
user may change their own password, giving the current one (a stolen token alone must not be
enough to take the account over). Any change to a user ends every token they hold; changing
one's own password answers with a fresh token. A user acts with the scopes of their role: admin
(everything in the organisation), writer (data:write, data:read), reader (data:read). Emails are
unique across the server, because signing in names only the email.
"""

from __future__ import annotations

from typing import Any

from fastapi import Depends, Request
from pydantic import BaseModel, ConfigDict, Field, model_validator
from starlette.concurrency import run_in_threadpool

from sensorbase.auth import access
from sensorbase.auth.keys import Principal
from sensorbase.auth.tokens import ENDED, USER_SUBJECT
from sensorbase.auth.users import check_password, hash_password
from sensorbase.dialects.base import client_address, services
from sensorbase.dialects.native.deps import principal
from sensorbase.dialects.native.problems import native_router
from sensorbase.errors import (
    Conflict,
    Forbidden,
    NotFound,
    Unauthorized,
)
from sensorbase.limits import BLANK
from sensorbase.model import Role, User
from sensorbase.storage.base import Reader, WriteTx
from sensorbase.times import format_us

router = native_router()


_EMAIL_PART = rf"[^@\x00-\x1f\x7f{BLANK}]+"


class UserIn(BaseModel):
    # Spelled out, not `\s` (which differs between regex engines); no control characters,
    # which no email holds (and PostgreSQL cannot store U+0000).
    email: str = Field(..., pattern=rf"^{_EMAIL_PART}@{_EMAIL_PART}$", max_length=320)
    password: str = Field(..., min_length=8, max_length=1024, description="At least 8 characters")
    role: Role = Field("reader", description="admin, writer or reader")


def _given_not_null(schema: dict[str, Any]) -> None:
    """A change names at least one field, and none of them as null (pydantic would declare
    each `X | None` field nullable)."""
    schema["minProperties"] = 1
    for spec in schema["properties"].values():
        kinds = spec.pop("anyOf", None)
        if kinds is not None:
            spec.update(next(k for k in kinds if k.get("type") != "null"))
        spec.pop("default", None)


class UserChange(BaseModel):
    model_config = ConfigDict(json_schema_extra=_given_not_null)

    role: Role | None = Field(None, description="admin, writer or reader")
    password: str | None = Field(
        None, min_length=8, max_length=1024, description="At least 8 characters"
    )

    @model_validator(mode="after")
    def _something_to_change(self) -> UserChange:
        if not self.model_fields_set:
            raise ValueError("nothing to change: give a role, a password or both")
        for name in self.model_fields_set:
            if getattr(self, name) is None:
                raise ValueError(f"{name} may not be null")
        return self


class PasswordChange(BaseModel):
    current_password: str = Field(..., min_length=1, max_length=1024)
    new_password: str = Field(
        ..., min_length=8, max_length=1024, description="At least 8 characters"
    )


def user_out(user: User) -> dict[str, Any]:
    return {
        "id": user.id,
        "email": user.email,
        "role": user.role,
        "created": format_us(user.created_us),
    }


async def _create(request: Request, org_id: int, body: UserIn) -> dict[str, Any]:
    svc = services(request)
    taken = await svc.read(lambda r: r.get_user(body.email))
    if taken is not None:
        raise Conflict(f"a user with email '{body.email}' already exists")
    password_hash = await run_in_threadpool(hash_password, body.password)

    def create(tx: WriteTx) -> User:
        return tx.create_user(org_id, body.email, password_hash, body.role)

    return user_out(await svc.committer.run(create))


@router.get("/users", summary="List the organisation's users")
async def list_users(request: Request, who: Principal = Depends(principal)) -> dict[str, Any]:
    access.require(who, "admin")
    users = await services(request).read(lambda r: r.list_users(who.org_id))
    return {"users": [user_out(u) for u in users]}


@router.post("/users", status_code=201, summary="Create a user (email, password, role)")
async def create_user(
    request: Request, body: UserIn, who: Principal = Depends(principal)
) -> dict[str, Any]:
    access.require(who, "admin")
    return await _create(request, who.org_id, body)


@router.post(
    "/orgs/{org}/users", status_code=201, summary="Create a user in an organisation (server admin)"
)
async def create_org_user(
    request: Request, org: str, body: UserIn, who: Principal = Depends(principal)
) -> dict[str, Any]:
    access.require_server_admin(who)
    found = await services(request).read(lambda r: r.get_org(org))
    if found is None:
        raise NotFound(f"organisation '{org}' not found")
    return await _create(request, found.id, body)


def _find(reader: Reader, who: Principal, user: str) -> User:
    """The user `user` (an email or an id) of the principal's organisation."""
    found = reader.get_user(user) if "@" in user else None
    if found is None and user.isascii() and user.isdigit() and len(user) <= 18:
        found = reader.get_user_by_id(int(user))
    if found is None or found.org_id != who.org_id:
        raise NotFound(f"user '{user}' not found")
    return found


@router.post(
    "/users/me/password",
    summary="Change your own password (a user token); ends your other tokens",
)
async def change_own_password(
    request: Request, body: PasswordChange, who: Principal = Depends(principal)
) -> dict[str, Any]:
    svc = services(request)
    if not who.key_id.startswith(USER_SUBJECT):
        raise Forbidden("only a signed-in user has a password: send a user token")
    me = await svc.read(lambda r: r.get_user_by_id(int(who.key_id.removeprefix(USER_SUBJECT))))
    if me is None:
        raise Unauthorized(ENDED)

    async def attempt() -> User:
        return await svc.read(lambda r: check_password(r, me.email, body.current_password))

    # The current password is a sign-in credential: limited as the sign-in route limits it.
    await svc.failures.sign_in(me.email, client_address(request), attempt)
    password_hash = await run_in_threadpool(hash_password, body.new_password)
    changed = await svc.committer.run(lambda tx: tx.update_user(me.id, password_hash=password_hash))
    if changed is None:
        raise Unauthorized(ENDED)
    token, _ = svc.tokens.user_token(changed)
    return {**user_out(changed), "token": token, "expires_in": svc.tokens.access_ttl_s}


@router.patch(
    "/users/{user}",
    summary="Change a user's role or password (by id or email); ends their tokens",
)
async def change_user(
    request: Request, user: str, body: UserChange, who: Principal = Depends(principal)
) -> dict[str, Any]:
    access.require(who, "admin")
    svc = services(request)
    target = await svc.read(lambda r: _find(r, who, user))
    password_hash = None
    if body.password is not None:
        password_hash = await run_in_threadpool(hash_password, body.password)

    def change(tx: WriteTx) -> User:
        changed = tx.update_user(target.id, role=body.role, password_hash=password_hash)
        if changed is None:
            raise NotFound(f"user '{user}' not found")
        return changed

    return user_out(await svc.committer.run(change))


@router.delete(
    "/users/{user}", status_code=204, summary="Delete a user (by id or email); ends their tokens"
)
async def delete_user(request: Request, user: str, who: Principal = Depends(principal)) -> None:
    access.require(who, "admin")
    svc = services(request)
    target = await svc.read(lambda r: _find(r, who, user))
    await svc.committer.run(lambda tx: tx.delete_user(target.id))
