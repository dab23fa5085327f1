"""Users: people who sign in with an email and a password (Madevo's `POST /restapi/login`).

An organisation admin lists, creates and deletes the users of their organisation; a server
administrator may also create a user in any organisation. A user acts with the scopes of their
role: admin (everything in the organisation), writer (data:write, data:read), reader (data:read).
Emails are unique across the server, because signing in names only the email.
"""

from __future__ import annotations

from typing import Any

from fastapi import Depends, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from sensorbase.auth import access
from sensorbase.auth.keys import Principal
from sensorbase.auth.users import hash_password
from sensorbase.dialects.base import services
from sensorbase.dialects.native.deps import principal
from sensorbase.dialects.native.problems import native_router
from sensorbase.errors import Conflict, NotFound
from sensorbase.model import Role, User
from sensorbase.storage.base import Reader, WriteTx
from sensorbase.times import format_us

router = native_router()


class UserIn(BaseModel):
    email: str = Field(..., pattern=r"^[^@\s]+@[^@\s]+$", max_length=320)
    password: str = Field(..., min_length=8, max_length=1024, description="At least 8 characters")
    role: Role = Field("reader", description="admin, writer or reader")


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


@router.delete(
    "/users/{user}", status_code=204, summary="Delete a user (by id or email); ends their tokens"
)
async def delete_user(request: Request, user: str, who: Principal = Depends(principal)) -> None:
    access.require(who, "admin")
    svc = services(request)

    def find(reader: Reader) -> User:
        found = reader.get_user(user) if "@" in user else None
        if found is None and user.isascii() and user.isdigit() and len(user) <= 18:
            found = reader.get_user_by_id(int(user))
        if found is None or found.org_id != who.org_id:
            raise NotFound(f"user '{user}' not found")
        return found

    target = await svc.read(find)
    await svc.committer.run(lambda tx: tx.delete_user(target.id))
