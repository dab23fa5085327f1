"""Failed credential attempts, counted per account and per client address: the brute-force
limit of every credential check (docs/auth.md, "Failed attempts", says it for users).

Two kinds of credential, two policies:

- Sign-in: a password (`POST /restapi/login`, a user changing their password), client
  credentials or a refresh token (the OAuth2 token routes). A guess there is worth something:
  while a block is in force every attempt is refused with 429, the right credentials too, or
  the block would tell the attacker which guess was right. Counted per (account, address)
  pair, which blocks soon and for long; per account from anywhere, which blocks late and only
  briefly (30 s at most), and never an address the account signed in from before, so that an
  attacker elsewhere cannot lock its owner out; and per address across accounts (spraying).
  A success clears its pair.
- Keys and access tokens on every other route: 192 random bits are not guessed, so a wrong
  key is a flood, a scan or a misconfigured device. They are counted per address only; a
  blocked address gets 429 for its wrong keys, and its right keys still pass: an address is
  often many devices (a gateway, a NAT, a reverse proxy not yet trusted for its forwarded
  addresses), and one device's stale key must not stop the others' writes.

Only what looks like guessing counts (`errors.WrongCredentials`): an expired token or a revoked
key was issued, and is no guess.

A count is a score that fades: each failure adds 1, and one failure is forgiven every
`forgive_s` seconds. Past `free`, each failure blocks for `first_block_s`, doubling with every
further block up to `max_block_s`; the doubling starts over once the score has faded to
nothing. Attempts refused while blocked are not counted, so hammering a block does not lengthen
it. Counts live in this process's memory (see docs/auth.md for why); `clock` is injectable for
tests.
"""

from __future__ import annotations

import hashlib
import ipaddress
import math
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import TypeVar

from sensorbase.errors import RateLimited, WrongCredentials

T = TypeVar("T")
MAX_COUNTS = 100_000  # counts kept before the faded ones are swept (then the oldest)
MAX_KNOWN = 100_000  # (account, address) pairs remembered as having signed in
KNOWN_S = 30 * 86_400.0  # how long a successful sign-in exempts its address from account blocks


@dataclass(frozen=True, slots=True)
class Rule:
    free: int  # failures before the first block
    forgive_s: float  # one failure forgiven per this many seconds
    first_block_s: float
    max_block_s: float


PAIR = Rule(free=5, forgive_s=900.0, first_block_s=1.0, max_block_s=900.0)
ACCOUNT = Rule(free=20, forgive_s=60.0, first_block_s=1.0, max_block_s=30.0)
SIGN_IN_ADDRESS = Rule(free=20, forgive_s=60.0, first_block_s=1.0, max_block_s=300.0)
KEY_ADDRESS = Rule(free=30, forgive_s=1.0, first_block_s=1.0, max_block_s=60.0)


class _Count:
    __slots__ = ("at", "blocked_until", "rule", "score", "strikes")

    def __init__(self, rule: Rule, now: float) -> None:
        self.rule = rule
        self.score = 0.0
        self.at = now
        self.blocked_until = 0.0
        self.strikes = 0

    def fade(self, now: float) -> None:
        self.score = max(0.0, self.score - (now - self.at) / self.rule.forgive_s)
        self.at = now
        if self.score == 0.0:
            self.strikes = 0

    def fail(self, now: float) -> None:
        self.fade(now)
        self.score += 1.0
        rule = self.rule
        if self.score > rule.free:
            block = min(rule.first_block_s * 2.0**self.strikes, rule.max_block_s)
            self.strikes += 1
            self.blocked_until = now + block

    def faded(self, now: float) -> bool:
        return now >= self.blocked_until and self.score <= (now - self.at) / self.rule.forgive_s


Key = tuple[str, ...]


class Failures:
    """Counts of failed attempts in this process, and the blocks they earned."""

    def __init__(
        self, clock: Callable[[], float] = time.monotonic, wrong_keys: int = KEY_ADDRESS.free
    ) -> None:
        self.clock = clock
        self.key_rule = replace(KEY_ADDRESS, free=wrong_keys)
        self._counts: dict[Key, _Count] = {}
        self._known: dict[tuple[str, str], float] = {}  # (account, address) -> signed in at
        self._lock = threading.Lock()  # attempts come from the event loop and worker threads

    # --- sign-in: passwords, client credentials, refresh tokens ---------------------------

    async def sign_in(
        self, account: str | None, address: str, attempt: Callable[[], Awaitable[T]]
    ) -> T:
        """`attempt()`, the check of a sign-in credential for `account` (None: not known, as
        for a refresh token) from `address`: refused with RateLimited while blocked, counted
        when it raises WrongCredentials, and its pair cleared when it succeeds."""
        self.check_sign_in(account, address)
        try:
            result = await attempt()
        except WrongCredentials:
            self.sign_in_failed(account, address)
            raise
        if account is not None:
            self.signed_in(account, address)
        return result

    def check_sign_in(self, account: str | None, address: str) -> None:
        """RateLimited while `account` may not be tried from `address`."""
        now = self.clock()
        net = network(address)
        keys: list[Key] = [("sign-in", net)]
        if account is not None:
            account = _account(account)
            keys.append(("pair", account, net))
            known = self._known.get((account, net))
            if known is None or now - known > KNOWN_S:
                keys.append(("account", account))
        with self._lock:
            until = max((c.blocked_until for k in keys if (c := self._counts.get(k))), default=0)
        if until > now:
            raise _refusal(until - now, "too many failed sign-in attempts")

    def sign_in_failed(self, account: str | None, address: str) -> None:
        now = self.clock()
        net = network(address)
        with self._lock:
            self._fail(("sign-in", net), SIGN_IN_ADDRESS, now)
            if account is not None:
                account = _account(account)
                self._fail(("pair", account, net), PAIR, now)
                self._fail(("account", account), ACCOUNT, now)

    def signed_in(self, account: str, address: str) -> None:
        now = self.clock()
        account, net = _account(account), network(address)
        with self._lock:
            self._counts.pop(("pair", account, net), None)
            self._known.pop((account, net), None)  # (re-inserted last: the newest)
            if len(self._known) >= MAX_KNOWN:
                for old in list(self._known)[: MAX_KNOWN // 4]:
                    del self._known[old]
            self._known[(account, net)] = now

    # --- keys and access tokens on every route --------------------------------------------

    def key_failed(self, address: str) -> None:
        """Count a wrong key from `address`; RateLimited (not counted) if it is blocked."""
        now = self.clock()
        key = ("key", network(address))
        with self._lock:
            count = self._counts.get(key)
            until = count.blocked_until if count is not None else 0.0
            if until <= now:
                self._fail(key, self.key_rule, now)
        if until > now:
            raise _refusal(until - now, "too many wrong keys from this address")

    # --- counts ---------------------------------------------------------------------------

    def _fail(self, key: Key, rule: Rule, now: float) -> None:
        count = self._counts.get(key)
        if count is None:
            if len(self._counts) >= MAX_COUNTS:
                self._sweep(now)
            count = self._counts[key] = _Count(rule, now)
        count.fail(now)

    def _sweep(self, now: float) -> None:
        """Forget the faded counts; if too many are still alive (a flood from ever new
        addresses), the oldest quarter too."""
        self._counts = {k: c for k, c in self._counts.items() if not c.faded(now)}
        if len(self._counts) >= MAX_COUNTS:
            for key in list(self._counts)[: MAX_COUNTS // 4]:
                del self._counts[key]


def _account(name: str) -> str:
    """An account as counted: emails compare without case; a name longer than any email is
    kept as its digest, so that a count costs little memory whatever was sent."""
    name = name.lower()
    return name if len(name) <= 320 else "sha256:" + hashlib.sha256(name.encode()).hexdigest()


def network(address: str) -> str:
    """The unit an address is counted in: an IPv4 address, or an IPv6 /64 (one host is
    commonly given a whole /64, and would otherwise have 2**64 addresses to try from)."""
    if ":" not in address:
        return address
    try:
        ip = ipaddress.IPv6Address(address.partition("%")[0])
    except ValueError:
        return address
    if ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ipaddress.IPv6Network((ip, 64), strict=False))


def _refusal(wait_s: float, why: str) -> RateLimited:
    retry_after_s = max(1, math.ceil(wait_s))
    return RateLimited(f"{why}; retry in {retry_after_s} s", retry_after_s=retry_after_s)
