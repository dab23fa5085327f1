"""Every credential check: API keys, access tokens, client credentials, refresh tokens and user
tokens, each counted by the failed-attempt limits (auth/failures.py).

OAuth2 client-credentials: a key's id and secret become a short-lived signed access token (JWT,
HS256) and a single-use refresh token. An access token names its key by id (`sub`) and by the
key's row id (`kid`), which is never given twice: every use re-checks that very key, so revoking
or deleting the key ends its tokens, and a later key can never take them over. A refresh token
is stored with its key and deleted with it.

A user who signs in with email and password (auth/users.py) gets a user token: the same kind of
JWT with `typ` "ut", subject `user:<id>` (ids are never given twice either) and `gen`, the
user's token generation, which changes with every change of the user (role, password). Every
use re-reads the user: deleting them, changing their role or their password ends their tokens
on every node at once; the principal acts with the scopes of the user's role
(model.ROLE_SCOPES). A token without `kid` or `gen` (minted before they existed) is refused.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jwt

from sensorbase.auth.failures import Failures
from sensorbase.auth.keys import KeyRing, Principal, hash_secret, principal_of
from sensorbase.errors import Unauthorized, WrongCredentials
from sensorbase.model import ROLE_SCOPES, ApiKey, User
from sensorbase.storage.base import Reader, WriteTx
from sensorbase.storage.write_queue import Committer
from sensorbase.times import now_us

ALGORITHM = "HS256"
SESSION_COOKIE = "sb_session"  # the console's session: an access token (console/session.py)
CSRF_HEADER = "X-CSRF-Token"  # what a state change under that cookie must carry
USER_SUBJECT = "user:"  # a user principal's key_id is `user:<id>`
ENDED = "the token has ended (its key or user was removed or changed): get a new one"


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
        failures: Failures | None = None,
    ) -> None:
        self.keys = keys
        self._users = users  # a reader factory: user tokens need it
        self.committer = committer
        self._secret = signing_secret
        self.access_ttl_s = access_ttl_s
        self.refresh_ttl_s = refresh_ttl_s
        self.failures = failures or Failures()

    async def client_credentials(self, key_id: str, secret: str, address: str) -> TokenPair:
        async def attempt() -> ApiKey:
            self.keys.verify(key_id, secret)
            return self.keys.active(key_id)

        return await self._mint(await self.failures.sign_in(key_id, address, attempt))

    async def refresh(self, refresh_token: str, address: str) -> TokenPair:
        digest = hash_secret(refresh_token)

        async def attempt() -> str:
            now = now_us()
            found = await self.committer.run(lambda tx: tx.take_refresh_token(digest, now))
            if found is None:  # (a used one is gone too: it cannot be told from a guess)
                raise WrongCredentials("the refresh token is unknown, used or expired")
            return found

        key_id = await self.failures.sign_in(None, address, attempt)
        return await self._mint(self.keys.active(key_id))

    async def _mint(self, key: ApiKey) -> TokenPair:
        access, access_exp = self._sign(key.key_id, "at", kid=key.id)
        refresh_exp = now_us() + self.refresh_ttl_s * 1_000_000
        refresh = secrets.token_urlsafe(32)
        digest = hash_secret(refresh)

        def store(tx: WriteTx) -> None:
            tx.put_refresh_token(digest, key.key_id, refresh_exp)

        await self.committer.run(store)
        return TokenPair(
            access, self.access_ttl_s, access_exp, refresh, self.refresh_ttl_s, refresh_exp
        )

    def authenticate(self, credential: str, address: Callable[[], str]) -> Principal:
        """A raw API key or an access token minted from one, or a user token. A wrong one is
        counted against the client's `address` (asked only then)."""
        try:
            principal = self.keys.verify_token(credential)  # (an API key: the usual credential)
            return principal if principal is not None else self._authenticate(credential)
        except WrongCredentials:
            self.failures.key_failed(address())  # RateLimited once the address is blocked
            raise

    def _authenticate(self, credential: str) -> Principal:
        """An access token's or a user token's principal."""
        try:
            claims = jwt.decode(credential, self._secret, algorithms=[ALGORITHM])
        except jwt.ExpiredSignatureError:
            raise Unauthorized("the access token has expired") from None
        except jwt.PyJWTError:
            raise WrongCredentials(
                "the credential is neither an API key nor a valid access token"
            ) from None
        subject, kind = claims.get("sub"), claims.get("typ")
        if not isinstance(subject, str):
            raise Unauthorized("the access token is not valid")
        if kind == "ut":
            return self._user_principal(subject, claims.get("gen"))
        if kind != "at":
            raise Unauthorized("the access token is not valid")
        key = self.keys.active(subject)
        if claims.get("kid") != key.id:
            raise Unauthorized(ENDED)
        return principal_of(key)

    def csrf_of(self, session_token: str) -> str:
        """The CSRF token of a console session: an HMAC of its access token with the signing
        secret, so no server keeps it and no other origin can compute it."""
        digest = hmac.new(self._secret.encode(), session_token.encode(), hashlib.sha256)
        return digest.hexdigest()

    # --- user tokens ----------------------------------------------------------------------

    def user_token(self, user: User) -> tuple[str, int]:
        """A signed access token for a signed-in user: (token, expiry in UTC microseconds)."""
        return self._sign(f"{USER_SUBJECT}{user.id}", "ut", gen=user.token_generation)

    def renew(self, principal: Principal) -> tuple[str, int]:
        """A fresh access token for whoever `principal` is: a user token for a user (of the
        generation their token had), an access token (without a refresh token) for a key."""
        if principal.key_id.startswith(USER_SUBJECT):
            return self._sign(principal.key_id, "ut", gen=principal.token_generation)
        key = self.keys.active(principal.key_id)
        return self._sign(key.key_id, "at", kid=key.id)

    def session_token(self, user: User, ttl_s: int, started_s: int | None = None) -> str:
        """A user token of a sign-in session (Madevo's /api/v1): short-lived (`ttl_s`), and
        carrying when the session began (`sst`), which `resume` measures the session from."""
        started = now_us() // 1_000_000 if started_s is None else started_s
        token, _ = self._sign(
            f"{USER_SUBJECT}{user.id}", "ut", ttl_s, gen=user.token_generation, sst=started
        )
        return token

    def resume(self, token: str, session_ttl_s: int, ttl_s: int) -> str:
        """A fresh session token for one that may have expired, while its session lasts and
        its user's token generation is unchanged (a logout, a new password or role ends it)."""
        try:
            claims = jwt.decode(
                token, self._secret, algorithms=[ALGORITHM], options={"verify_exp": False}
            )
        except jwt.PyJWTError:
            raise WrongCredentials("the token is not a valid session token") from None
        started, subject = claims.get("sst"), claims.get("sub")
        kind = claims.get("typ")
        if kind != "ut" or not isinstance(started, int) or not isinstance(subject, str):
            raise Unauthorized("the token is not a session token: sign in")
        if started + session_ttl_s <= now_us() // 1_000_000:
            raise Unauthorized("the session has ended: sign in again")
        self._user_principal(subject, claims.get("gen"))  # the user still, and unchanged
        user_id = int(subject.removeprefix(USER_SUBJECT))
        assert self._users is not None  # (checked by _user_principal)
        user = self._users().get_user_by_id(user_id)
        if user is None:
            raise Unauthorized(ENDED)
        return self.session_token(user, ttl_s, started)

    def _sign(
        self, subject: str, kind: str, ttl_s: int | None = None, **binding: Any
    ) -> tuple[str, int]:
        now = now_us()
        expires = now + (self.access_ttl_s if ttl_s is None else ttl_s) * 1_000_000
        claims = {
            "sub": subject,
            "iat": now // 1_000_000,
            "exp": expires // 1_000_000,
            "typ": kind,
            "jti": secrets.token_urlsafe(12),  # two tokens of one second still differ
            **binding,
        }
        return jwt.encode(claims, self._secret, algorithm=ALGORITHM), expires

    def _user_principal(self, subject: str, generation: object) -> Principal:
        number = subject.removeprefix(USER_SUBJECT)
        if self._users is None or not subject.startswith(USER_SUBJECT) or not number.isdigit():
            raise Unauthorized("the access token is not valid")
        if not isinstance(generation, str) or not generation:
            raise Unauthorized(f"{ENDED} (it predates this version of Sensorbase)")
        user = self._users().get_user_by_id(int(number))
        if user is None or not hmac.compare_digest(user.token_generation, generation):
            raise Unauthorized(ENDED)
        return Principal(
            subject, user.org_id, ROLE_SCOPES[user.role], None, False, user.token_generation
        )
