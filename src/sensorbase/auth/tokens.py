"""OAuth2 client-credentials: a key's id and secret become a short-lived signed access token
(JWT, HS256) and a single-use refresh token. Every use of an access token re-checks its key,
so revoking the key ends its tokens too."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

import jwt

from sensorbase.auth.keys import KeyRing, Principal, hash_secret, principal_of, split_token
from sensorbase.errors import Unauthorized
from sensorbase.ingest.committer import Committer
from sensorbase.storage.base import WriteTx
from sensorbase.times import now_us

ALGORITHM = "HS256"


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
    ) -> None:
        self.keys = keys
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
            return principal_of(self.keys.verify(*parts))
        try:
            claims = jwt.decode(credential, self._secret, algorithms=[ALGORITHM])
        except jwt.ExpiredSignatureError:
            raise Unauthorized("the access token has expired") from None
        except jwt.PyJWTError:
            raise Unauthorized(
                "the credential is neither an API key nor a valid access token"
            ) from None
        if claims.get("typ") != "at" or not isinstance(claims.get("sub"), str):
            raise Unauthorized("the access token is not valid")
        return principal_of(self.keys.active(claims["sub"]))
