"""API keys: `sb_<key id>_<secret>`, shown once, stored as a hash.

The secret is 192 random bits, so a single SHA-256 is the right hash: a slow password hash
(argon2) buys nothing against guessing such a secret and would cost milliseconds per request.
User passwords, which are low-entropy, use argon2 (`auth/users.py`).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from sensorbase.errors import Unauthorized, WrongCredentials
from sensorbase.model import ApiKey, Scope
from sensorbase.storage.base import Reader, WriteTx

PREFIX = "sb_"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is asking: the key behind a request, whatever form the credential took."""

    key_id: str
    org_id: int
    scopes: tuple[Scope, ...]
    bucket_id: int | None
    server_admin: bool
    # A signed-in user's: the token generation their token carried (auth/tokens.py).
    token_generation: str | None = None

    def has(self, scope: Scope) -> bool:
        # An organisation admin may do everything inside its organisation.
        return scope in self.scopes or "admin" in self.scopes


@dataclass(frozen=True, slots=True)
class NewKey:
    key_id: str
    secret: str

    @property
    def token(self) -> str:
        return f"{PREFIX}{self.key_id}_{self.secret}"


def new_key() -> NewKey:
    return NewKey("k" + secrets.token_hex(8), secrets.token_urlsafe(24))


def create_server_admin_key(tx: WriteTx, org_id: int, name: str) -> NewKey:
    """A new key with the admin scope of organisation `org_id` that is also a server
    administrator's (the first start's, and `sensorbase recover-key`'s)."""
    key = new_key()
    tx.create_key(org_id, key.key_id, hash_secret(key.secret), name, ("admin",), None, True)
    return key


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def split_token(token: str) -> tuple[str, str] | None:
    """`sb_<key id>_<secret>` into its parts, or None when it is not of that form."""
    if not token.startswith(PREFIX):
        return None
    key_id, sep, secret = token[len(PREFIX) :].partition("_")
    return (key_id, secret) if sep and key_id and secret else None


class KeyRing:
    """Key lookups with a short cache: a revocation on another node is seen within `ttl_s`;
    on this node `forget` makes it immediate."""

    def __init__(
        self,
        reader: Callable[[], Reader],
        ttl_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._reader = reader
        self.ttl_s = ttl_s  # (the catalog's organisation cache uses it too)
        self.clock = clock  # (tests move it instead of sleeping)
        self._cache: dict[str, tuple[ApiKey | None, float, Principal | None]] = {}
        # The secret last verified for a cache entry (the entry itself: a refreshed or
        # forgotten entry is another object): a repeated key is compared with it instead of
        # hashed again (sha256 and hexdigest, ~5,000 instructions of a one-point write's
        # ~330,000). Held as long as the entry, in this process's memory, as each request's
        # secret already is while it is answered.
        self._verified: dict[str, tuple[object, str]] = {}
        # Tokens verified (`verify_token`): token -> (key id, the cache entry it was verified
        # against), good while that entry is the cache's.
        self._tokens: dict[str, tuple[str, tuple[ApiKey | None, float, Principal | None]]] = {}
        self._lock = threading.Lock()

    def get(self, key_id: str) -> ApiKey | None:
        return self._entry(key_id)[0]

    def _entry(self, key_id: str) -> tuple[ApiKey | None, float, Principal | None]:
        now = self.clock()
        hit = self._cache.get(key_id)  # (one dict read is atomic: the lock guards the writes)
        if hit is not None and now - hit[1] < self.ttl_s:
            return hit
        found = self._reader().get_key(key_id)
        entry = (found, now, None if found is None else principal_of(found))
        with self._lock:
            if len(self._cache) > 100_000:
                self._cache.clear()
            self._cache[key_id] = entry
        return entry

    def clear(self) -> None:
        """Forget every lookup (after deleting an organisation or bucket, whose keys go too)."""
        with self._lock:
            self._cache.clear()
            self._verified.clear()
            self._tokens.clear()

    def forget(self, key_id: str) -> None:
        with self._lock:
            self._cache.pop(key_id, None)
            self._verified.pop(key_id, None)

    def active(self, key_id: str) -> ApiKey:
        """The key, if it exists and is not revoked; else Unauthorized."""
        key = self.get(key_id)
        if key is None or key.revoked_us is not None:
            raise Unauthorized("the API key is unknown or revoked")
        return key

    def verify(self, key_id: str, secret: str) -> Principal:
        """The principal of a key's id and secret, if the key is active and the secret right.
        (WrongCredentials for an unknown key or a wrong secret: only those are guesses.)"""
        principal = self._verified_entry(key_id, secret)[2]
        assert principal is not None
        return principal

    def verify_token(self, token: str) -> Principal | None:
        """`verify` of a token `sb_<key id>_<secret>`, None when it is not of that form. A
        token verified against the cache entry that is still current (same object, fresh, not
        revoked) is found by two dict look-ups: a device sends one token again and again."""
        known = self._tokens.get(token)
        if known is not None:
            key_id, entry = known
            if (
                self._cache.get(key_id) is entry
                and self.clock() - entry[1] < self.ttl_s
                and entry[0] is not None
                and entry[0].revoked_us is None
            ):
                return entry[2]
        parts = split_token(token)
        if parts is None:
            return None
        entry = self._verified_entry(*parts)
        if len(self._tokens) > 100_000:
            self._tokens.clear()
        self._tokens[token] = (parts[0], entry)
        assert entry[2] is not None
        return entry[2]

    def _verified_entry(
        self, key_id: str, secret: str
    ) -> tuple[ApiKey | None, float, Principal | None]:
        entry = self._entry(key_id)
        key, _, principal = entry
        if key is None or principal is None:
            raise WrongCredentials("the API key is unknown or wrong")
        memo = self._verified.get(key_id)
        if not (
            memo is not None
            and memo[0] is entry
            and secret.isascii()  # (compare_digest takes ASCII str only)
            and hmac.compare_digest(memo[1], secret)
        ):
            if not hmac.compare_digest(key.secret_hash, hash_secret(secret)):
                raise WrongCredentials("the API key is unknown or wrong")
            if len(self._verified) > 100_000:
                self._verified.clear()
            self._verified[key_id] = (entry, secret)
        if key.revoked_us is not None:
            raise Unauthorized("the API key is revoked")
        return entry


def principal_of(key: ApiKey) -> Principal:
    return Principal(key.key_id, key.org_id, key.scopes, key.bucket_id, key.server_admin)
