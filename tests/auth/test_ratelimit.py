"""The per-key limiter: fixed windows opened by a key's first request."""

from __future__ import annotations

import pytest

from sensorbase.auth import ratelimit
from sensorbase.auth.ratelimit import RateLimiter
from sensorbase.errors import RateLimited


def test_a_window_counts_then_refuses_then_opens_again() -> None:
    now = [1_000.25]
    limiter = RateLimiter("3/minute", clock=lambda: now[0])
    states = [limiter.hit("k1") for _ in range(3)]
    assert [s.remaining for s in states if s] == [2, 1, 0]
    assert {s.reset_epoch_s for s in states if s} == {1_061}  # 60 s after the first hit
    assert limiter.hit("k2") is not None  # another key has its own window
    now[0] = 1_030.0
    with pytest.raises(RateLimited) as refused:
        limiter.hit("k1")
    assert refused.value.retry_after_s == 31
    assert refused.value.remaining == 0 and refused.value.reset_epoch_s == 1_061
    now[0] = 1_060.25  # the window has closed: a new one opens
    state = limiter.hit("k1")
    assert state is not None and state.remaining == 2 and state.reset_epoch_s == 1_121


def test_no_rule_no_limit() -> None:
    assert RateLimiter("").hit("k1") is None


def test_expired_windows_are_dropped_when_many(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [0.0]
    monkeypatch.setattr(ratelimit, "MAX_KEYS", 10)
    limiter = RateLimiter("5/second", clock=lambda: now[0])
    for i in range(10):
        limiter.hit(f"old{i}")
    now[0] = 5.0
    limiter.hit("new")
    assert set(limiter._windows) == {"new"}
