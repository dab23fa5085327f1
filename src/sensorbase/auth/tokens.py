"""OAuth2 client-credentials: a key's id and secret become a short-lived signed access token
(JWT, HS256) and a single-use refresh token. Every use of an access token re-checks its key,
so revoking the key ends its tokens too.

A user who signs in with email and password (auth/users.py) gets a user token: the same kind of
JWT with `typ` "ut" and subject `user:<id>`. Every use re-reads the user, so deleting the user
ends their tokens; the principal acts with the scopes of the user's role (model.ROLE_SCOPES)."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass

import jwt

from sensorbase.auth.keys import KeyRing, Principal, hash_secret, principal_of, split_token
from sensorbase.errors import Unauthorized
from sensorbase.ingest.committer import Committer
from sensorbase.model import ROLE_SCOPES, User
from sensorbase.storage.base import Reader, WriteTx
from sensorbase.times import now_us

ALGORITHM = "HS256"
USER_SUBJECT = "user:"  # a user principal's key_id is `user:<id>`


@dataclass(frozen=True, slots=True)
class TokenPair:
    access_token: str
    expires_in_s: int
    expires_us: int
    refresh_token: str
    refresh_expires_in_s: int
    refresh_expires_us: int


class Tokens:
    def __init__(
        self,
        keys: KeyRing,
        committer: Committer,
        signing_secret: str,
        access_ttl_s: int,
        refresh_ttl_s: int,
        users: Callable[[], Reader] | None = None,
    ) -> None:
        self.keys = keys
        self._users = users  # a reader factory: user tokens need it
        self.committer = committer
        self._secret = signing_secret
        self.access_ttl_s = access_ttl_s
        self.refresh_ttl_s = refresh_ttl_s

    async def client_credentials(self, key_id: str, secret: str) -> TokenPair:
        self.keys.verify(key_id, secret)
        return await self._mint(key_id)

    async def refresh(self, refresh_token: str) -> TokenPair:
        digest = hash_secret(refresh_token)
        now = now_us()

        def take(tx: WriteTx) -> str | None:
            return tx.take_refresh_token(digest, now)

        key_id = await self.committer.run(take)
        if key_id is None:
            raise Unauthorized("the refresh token is unknown, used or expired")
        self.keys.active(key_id)
        return await self._mint(key_id)

    async def _mint(self, key_id: str) -> TokenPair:
        now = now_us()
        access_exp = now + self.access_ttl_s * 1_000_000
        refresh_exp = now + self.refresh_ttl_s * 1_000_000
        access = jwt.encode(
            {
                "sub": key_id,
                "iat": now // 1_000_000,
                "exp": access_exp // 1_000_000,
                "typ": "at",
                "jti": secrets.token_urlsafe(12),  # two tokens of one second still differ
            },
            self._secret,
            algorithm=ALGORITHM,
        )
        refresh = secrets.token_urlsafe(32)
        digest = hash_secret(refresh)

        def store(tx: WriteTx) -> None:
            tx.put_refresh_token(digest, key_id, refresh_exp)

        await self.committer.run(store)
        return TokenPair(
            access, self.access_ttl_s, access_exp, refresh, self.refresh_ttl_s, refresh_exp
        )

    def authenticate(self, credential: str) -> Principal:
        """A raw API key or an access token minted from one."""
        parts = split_token(credential)
        if parts is not None:
            return self.keys.verify(*parts)
        try:
            claims = jwt.decode(credential, self._secret, algorithms=[ALGORITHM])
        except jwt.ExpiredSignatureError:
            raise Unauthorized("the access token has expired") from None
        except jwt.PyJWTError:
            raise Unauthorized(
                "the credential is neither an API key nor a valid access token"
            ) from None
        if not isinstance(claims.get("sub"), str):
            raise Unauthorized("the access token is not valid")
        if claims.get("typ") == "ut":
            return self._user_principal(claims["sub"])
        if claims.get("typ") != "at":
            raise Unauthorized("the access token is not valid")
        return principal_of(self.keys.active(claims["sub"]))

    # --- user tokens ----------------------------------------------------------------------

    def user_token(self, user: User) -> tuple[str, int]:
        """A signed access token for a signed-in user: (token, expiry in UTC microseconds)."""
        return self._sign(f"{USER_SUBJECT}{user.id}", "ut")

    def renew(self, principal: Principal) -> tuple[str, int]:
        """A fresh access token for whoever `principal` is: a user token for a user, an access
        token (without a refresh token) for a key."""
        if principal.key_id.startswith(USER_SUBJECT):
            return self._sign(principal.key_id, "ut")
        return self._sign(principal.key_id, "at")

    def _sign(self, subject: str, kind: str) -> tuple[str, int]:
        now = now_us()
        expires = now + self.access_ttl_s * 1_000_000
        claims = {
            "sub": subject,
            "iat": now // 1_000_000,
            "exp": expires // 1_000_000,
            "typ": kind,
            "jti": secrets.token_urlsafe(12),  # two tokens of one second still differ
        }
        return jwt.encode(claims, self._secret, algorithm=ALGORITHM), expires

    def _user_principal(self, subject: str) -> Principal:
        number = subject.removeprefix(USER_SUBJECT)
        if self._users is None or not subject.startswith(USER_SUBJECT) or not number.isdigit():
            raise Unauthorized("the access token is not valid")
        user = self._users().get_user_by_id(int(number))
        if user is None:
            raise Unauthorized("the user of this token no longer exists")
        return Principal(subject, user.org_id, ROLE_SCOPES[user.role], None, False)
