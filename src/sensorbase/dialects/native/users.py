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

from sensorbase.auth.keys import Principal
from sensorbase.catalog import Catalog
from sensorbase.dialects.base import catalog_of, client_address, services
from sensorbase.dialects.native.deps import principal
from sensorbase.dialects.native.problems import native_router
from sensorbase.limits import BLANK
from sensorbase.model import Role, User
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


@router.get("/users", summary="List the organisation's users")
async def list_users(
    who: Principal = Depends(principal), catalog: Catalog = Depends(catalog_of)
) -> dict[str, Any]:
    return {"users": [user_out(u) for u in await catalog.users.all(who)]}


@router.post("/users", status_code=201, summary="Create a user (email, password, role)")
async def create_user(
    body: UserIn, who: Principal = Depends(principal), catalog: Catalog = Depends(catalog_of)
) -> dict[str, Any]:
    return user_out(await catalog.users.create(who, body.email, body.password, body.role))


@router.post(
    "/orgs/{org}/users", status_code=201, summary="Create a user in an organisation (server admin)"
)
async def create_org_user(
    org: str,
    body: UserIn,
    who: Principal = Depends(principal),
    catalog: Catalog = Depends(catalog_of),
) -> dict[str, Any]:
    found = await catalog.orgs.get(who, org)
    created = await catalog.users.create(who, body.email, body.password, body.role, org=found)
    return user_out(created)


@router.post(
    "/users/me/password",
    summary="Change your own password (a user token); ends your other tokens",
)
async def change_own_password(
    request: Request,
    body: PasswordChange,
    who: Principal = Depends(principal),
    catalog: Catalog = Depends(catalog_of),
) -> dict[str, Any]:
    me = await catalog.users.me(who)

    async def attempt() -> User:
        return await catalog.users.check(me.email, body.current_password)

    # The current password is a sign-in credential: limited as the sign-in route limits it.
    svc = services(request)
    await svc.failures.sign_in(me.email, client_address(request), attempt)
    changed = await catalog.users.set_own_password(me, body.new_password)
    token, _ = svc.tokens.user_token(changed)
    return {**user_out(changed), "token": token, "expires_in": svc.tokens.access_ttl_s}


@router.patch(
    "/users/{user}",
    summary="Change a user's role or password (by id or email); ends their tokens",
)
async def change_user(
    user: str,
    body: UserChange,
    who: Principal = Depends(principal),
    catalog: Catalog = Depends(catalog_of),
) -> dict[str, Any]:
    return user_out(await catalog.users.update(who, user, body.role, body.password))


@router.delete(
    "/users/{user}", status_code=204, summary="Delete a user (by id or email); ends their tokens"
)
async def delete_user(
    user: str, who: Principal = Depends(principal), catalog: Catalog = Depends(catalog_of)
) -> None:
    await catalog.users.delete(who, user)
