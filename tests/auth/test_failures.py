"""The failed-attempt rules of auth/failures.py, on an injected clock: who is blocked, for how
long, what a success clears, and what never grows without bound."""

from __future__ import annotations

import pytest

from sensorbase.auth import failures
from sensorbase.auth.failures import ACCOUNT, KEY_ADDRESS, PAIR, Failures, network
from sensorbase.errors import RateLimited, WrongCredentials


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def blocked_for(check: object) -> int | None:
    """The Retry-After of a refused check, or None when it passes."""
    try:
        check()  # type: ignore[operator]
    except RateLimited as exc:
        return exc.retry_after_s
    return None


def test_a_pair_blocks_after_its_free_failures_doubling_up_to_its_cap(clock: Clock) -> None:
    f = Failures(clock)
    for _ in range(PAIR.free):
        assert blocked_for(lambda: f.check_sign_in("ann@example.com", "10.0.0.1")) is None
        f.sign_in_failed("ann@example.com", "10.0.0.1")
    assert blocked_for(lambda: f.check_sign_in("ann@example.com", "10.0.0.1")) is None
    waits = []
    for _ in range(12):  # fail each time the block has just ended
        f.sign_in_failed("ann@example.com", "10.0.0.1")
        wait = blocked_for(lambda: f.check_sign_in("ANN@example.com", "10.0.0.1"))
        assert wait is not None
        waits.append(wait)
        clock.now += wait
    assert waits == [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 900, 900]
    # The pair's count holds that address back; the account's own count is still under its
    # free failures, so elsewhere the account signs in.
    assert blocked_for(lambda: f.check_sign_in("ann@example.com", "10.0.0.2")) is None
    f.sign_in_failed("ann@example.com", "10.0.0.1")
    assert blocked_for(lambda: f.check_sign_in("ann@example.com", "10.0.0.1")) == 900


def test_a_success_clears_its_pair_only(clock: Clock) -> None:
    f = Failures(clock)
    for _ in range(PAIR.free):
        f.sign_in_failed("ann@example.com", "10.0.0.1")
    f.signed_in("ann@example.com", "10.0.0.1")
    for _ in range(PAIR.free):  # five more free failures, as before the first
        f.sign_in_failed("ann@example.com", "10.0.0.1")
        assert blocked_for(lambda: f.check_sign_in("ann@example.com", "10.0.0.1")) is None
    f.sign_in_failed("ann@example.com", "10.0.0.1")
    assert blocked_for(lambda: f.check_sign_in("ann@example.com", "10.0.0.1")) == 1


def test_an_account_is_blocked_only_briefly_and_never_where_it_signed_in(clock: Clock) -> None:
    f = Failures(clock)
    f.signed_in("ann@example.com", "10.0.0.9")
    for i in range(ACCOUNT.free + 1):  # one failure from each of many addresses
        f.sign_in_failed("ann@example.com", f"198.51.100.{i}")
    assert blocked_for(lambda: f.check_sign_in("ann@example.com", "203.0.113.1")) == 1
    assert blocked_for(lambda: f.check_sign_in("ann@example.com", "10.0.0.9")) is None
    assert blocked_for(lambda: f.check_sign_in("bob@example.com", "203.0.113.1")) is None
    for _ in range(40):  # a patient attacker keeps it blocked, never for long
        clock.now += 31
        f.sign_in_failed("ann@example.com", f"192.0.2.{int(clock.now) % 250}")
        wait = blocked_for(lambda: f.check_sign_in("ann@example.com", "203.0.113.1"))
        assert wait is not None and wait <= ACCOUNT.max_block_s
    clock.now += failures.KNOWN_S  # a sign-in is remembered for a month
    for i in range(ACCOUNT.free + 1):
        f.sign_in_failed("ann@example.com", f"198.51.100.{i}")
    assert blocked_for(lambda: f.check_sign_in("ann@example.com", "10.0.0.9")) == 1


def test_one_address_trying_many_accounts_is_blocked(clock: Clock) -> None:
    f = Failures(clock)
    for i in range(failures.SIGN_IN_ADDRESS.free + 1):
        f.sign_in_failed(f"user{i}@example.com", "203.0.113.5")
    assert blocked_for(lambda: f.check_sign_in("new@example.com", "203.0.113.5")) == 1
    assert blocked_for(lambda: f.check_sign_in(None, "203.0.113.5")) == 1  # refresh tokens too
    assert blocked_for(lambda: f.check_sign_in("new@example.com", "203.0.113.6")) is None


def test_counts_fade_and_the_doubling_starts_over(clock: Clock) -> None:
    f = Failures(clock)
    for _ in range(PAIR.free + 3):
        f.sign_in_failed(None, "203.0.113.5")  # the address count only
        clock.now += 3600  # (every block long over)
    clock.now += 10 * failures.SIGN_IN_ADDRESS.forgive_s
    assert blocked_for(lambda: f.check_sign_in(None, "203.0.113.5")) is None
    for _ in range(failures.SIGN_IN_ADDRESS.free):
        f.sign_in_failed(None, "203.0.113.5")
    assert blocked_for(lambda: f.check_sign_in(None, "203.0.113.5")) is None
    f.sign_in_failed(None, "203.0.113.5")
    assert blocked_for(lambda: f.check_sign_in(None, "203.0.113.5")) == 1  # from 1 s again


def test_wrong_keys_block_an_address_without_counting_what_it_refuses(clock: Clock) -> None:
    f = Failures(clock)
    for _ in range(KEY_ADDRESS.free + 1):  # a burst (one is forgiven a second)
        f.key_failed("203.0.113.5")
    with pytest.raises(RateLimited) as refused:
        f.key_failed("203.0.113.5")
    assert refused.value.retry_after_s == 1
    for _ in range(1000):  # hammering the block does not lengthen it
        with pytest.raises(RateLimited):
            f.key_failed("203.0.113.5")
    f.key_failed("203.0.113.6")  # another address is not blocked
    clock.now += 1
    f.key_failed("203.0.113.5")  # counted again once the block is over: the next is longer
    with pytest.raises(RateLimited) as refused:
        f.key_failed("203.0.113.5")
    assert refused.value.retry_after_s == 2
    assert blocked_for(lambda: f.check_sign_in(None, "203.0.113.5")) is None  # its own count


async def test_sign_in_counts_only_wrong_credentials(clock: Clock) -> None:
    f = Failures(clock)

    async def wrong() -> None:
        raise WrongCredentials("wrong email or password")

    async def right() -> str:
        return "ok"

    for _ in range(PAIR.free + 1):
        with pytest.raises(WrongCredentials):
            await f.sign_in("ann@example.com", "10.0.0.1", wrong)
    with pytest.raises(RateLimited):  # refused before it is tried: the right one too
        await f.sign_in("ann@example.com", "10.0.0.1", right)
    clock.now += 1
    assert await f.sign_in("ann@example.com", "10.0.0.1", right) == "ok"


def test_ipv6_is_counted_per_64_and_mapped_ipv4_as_ipv4() -> None:
    assert network("2001:db8:1:2:aaaa::1") == network("2001:db8:1:2:bbbb::7") == "2001:db8:1:2::/64"
    assert network("2001:db8:1:3::1") != network("2001:db8:1:2::1")
    assert network("::ffff:192.0.2.1") == "192.0.2.1"
    assert network("192.0.2.1") == "192.0.2.1" and network("unknown") == "unknown"
    assert network("fe80::1%eth0") == "fe80::/64"


def test_memory_stays_bounded(clock: Clock, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(failures, "MAX_COUNTS", 100)
    monkeypatch.setattr(failures, "MAX_KNOWN", 100)
    f = Failures(clock)
    for i in range(1000):  # ever new addresses, each blocked
        for _ in range(KEY_ADDRESS.free + 1):
            f.key_failed(f"10.0.{i // 250}.{i % 250}")
        f.signed_in(f"user{i}@example.com", "10.0.0.1")
    assert len(f._counts) <= 100 and len(f._known) <= 100
    long_name = "x" * 100_000
    f.sign_in_failed(long_name, "10.0.0.1")
    assert all(len(part) < 400 for key in f._counts for part in key)
