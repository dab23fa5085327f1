"""Per-key request rate, fixed one-second (or minute, hour) windows, in this node's memory."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import limits
from limits.storage import MemoryStorage
from limits.strategies import FixedWindowRateLimiter

from sensorbase.errors import RateLimited


@dataclass(frozen=True, slots=True)
class RateState:
    limit: int
    remaining: int
    reset_epoch_s: int

    def headers(self) -> dict[str, str]:
        return {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(self.reset_epoch_s),
        }


class RateLimiter:
    def __init__(self, rule: str) -> None:
        self.item = limits.parse(rule) if rule.strip() else None
        self._limiter = FixedWindowRateLimiter(MemoryStorage())

    def hit(self, key_id: str) -> RateState | None:
        """Count one request; RateLimited (with the state) when over the limit."""
        if self.item is None:
            return None
        allowed = self._limiter.hit(self.item, key_id)
        stats = self._limiter.get_window_stats(self.item, key_id)
        state = RateState(self.item.amount, max(stats.remaining, 0), math.ceil(stats.reset_time))
        if not allowed:
            error = RateLimited(
                f"rate limit of {self.item.amount} per {self.item.GRANULARITY.name} exceeded",
                retry_after_s=max(1, math.ceil(stats.reset_time - time.time())),
            )
            error.rate_state = state  # type: ignore[attr-defined]
            raise error
        return state
