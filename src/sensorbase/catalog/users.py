"""Users: people who sign in with an email and a password and act with their role's scopes.
An organisation's admins manage its users; a server administrator may create one anywhere.
Emails are unique across the server, because signing in names only the email. Any change to a
user gives them a new token generation, which ends every token they hold."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool

from sensorbase.auth import access as tenancy
from sensorbase.auth.keys import Principal
from sensorbase.auth.tokens import ENDED, USER_SUBJECT
from sensorbase.auth.users import Passwords
from sensorbase.catalog.work import Work
from sensorbase.errors import Conflict, Forbidden, NotFound, Unauthorized
from sensorbase.model import Organisation, Role, User
from sensorbase.storage.base import Reader, WriteTx

MAX_USER_ID = 10**18


class Users:
    def __init__(self, work: Work, passwords: Passwords) -> None:
        self._work = work
        self._passwords = passwords

    async def all(self, who: Principal) -> list[User]:
        tenancy.require(who, "admin")
        return await self._work.read(lambda r: r.list_users(who.org_id))

    async def check(self, email: str, password: str) -> User:
        """The user whose email and password these are (argon2, off the event loop), else
        WrongCredentials: what signing in asks."""
        return await self._work.read(lambda r: self._passwords.check(r, email, password))

    async def me(self, who: Principal) -> User:
        """The signed-in user behind a user token."""
        if not who.key_id.startswith(USER_SUBJECT):
            raise Forbidden("only a signed-in user has a password: send a user token")
        user_id = int(who.key_id.removeprefix(USER_SUBJECT))
        found = await self._work.read(lambda r: r.get_user_by_id(user_id))
        if found is None:
            raise Unauthorized(ENDED)
        return found

    async def create(
        self,
        who: Principal,
        email: str,
        password: str,
        role: Role,
        org: Organisation | None = None,
    ) -> User:
        if org is not None and org.id != who.org_id:
            tenancy.require_server_admin(who)
            org_id = org.id
        else:
            tenancy.require(who, "admin")
            org_id = who.org_id
        if await self._work.read(lambda r: r.get_user(email)) is not None:
            raise Conflict(f"a user with email '{email}' already exists", what="user", name=email)
        password_hash = await run_in_threadpool(self._passwords.hash, password)
        return await self._work.write(lambda tx: tx.create_user(org_id, email, password_hash, role))

    async def get(self, who: Principal, user: str) -> User:
        """The user `user` (an email or an id) of the principal's organisation."""
        tenancy.require(who, "admin")

        def find(reader: Reader) -> User:
            found = reader.get_user(user) if "@" in user else None
            if found is None and user.isascii() and user.isdigit() and len(user) <= 18:
                found = reader.get_user_by_id(int(user))
            if found is None or found.org_id != who.org_id:
                raise NotFound(f"user '{user}' not found", what="user", name=user)
            return found

        return await self._work.read(find)

    async def update(
        self, who: Principal, user: str, role: Role | None = None, password: str | None = None
    ) -> User:
        target = await self.get(who, user)
        password_hash = None
        if password is not None:
            password_hash = await run_in_threadpool(self._passwords.hash, password)

        def change(tx: WriteTx) -> User:
            changed = tx.update_user(target.id, role=role, password_hash=password_hash)
            if changed is None:
                raise NotFound(f"user '{user}' not found", what="user", name=user)
            return changed

        return await self._work.write(change)

    async def set_own_password(self, me: User, password: str) -> User:
        """A user's own new password (the caller has checked the current one)."""
        password_hash = await run_in_threadpool(self._passwords.hash, password)
        changed = await self._work.write(
            lambda tx: tx.update_user(me.id, password_hash=password_hash)
        )
        if changed is None:
            raise Unauthorized(ENDED)
        return changed

    async def end_tokens(self, who: Principal) -> None:
        """Sign the user behind a user token out everywhere: a new token generation ends every
        token they hold, on every node (each use of a token re-reads its user)."""
        me = await self.me(who)
        if await self._work.write(lambda tx: tx.update_user(me.id)) is None:
            raise Unauthorized(ENDED)

    async def delete(self, who: Principal, user: str) -> None:
        target = await self.get(who, user)
        await self._work.write(lambda tx: tx.delete_user(target.id))
