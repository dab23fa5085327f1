"""Per-key request rate, fixed one-second (or minute, hour) windows, in this node's memory."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import limits

from sensorbase.errors import RateLimited

MAX_KEYS = 100_000  # windows kept before the expired ones are dropped


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
    """Fixed windows opened by a key's first request (as `limits`' fixed-window strategy
    counts), kept in a dict: `limits`' own storage cost ~16 us per request, a quarter of a
    one-point write; this costs ~1. `limits` still parses the rule."""

    def __init__(self, rule: str, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock  # epoch seconds (tests move it instead of sleeping)
        self.item = limits.parse(rule) if rule.strip() else None
        self._window_s = self.item.get_expiry() if self.item else 0
        self._windows: dict[str, list[float]] = {}  # key → [end of its window (epoch s), hits]
        self._lock = threading.Lock()  # hits come from the event loop and worker threads

    def hit(self, key_id: str) -> RateState | None:
        """Count one request; RateLimited (with the state) when over the limit."""
        if self.item is None:
            return None
        amount = self.item.amount
        now = self.clock()
        with self._lock:
            window = self._windows.get(key_id)
            if window is None or now >= window[0]:
                if len(self._windows) >= MAX_KEYS:
                    self._windows = {k: w for k, w in self._windows.items() if now < w[0]}
                window = self._windows[key_id] = [now + self._window_s, 0]
            allowed = window[1] < amount
            if allowed:
                window[1] += 1
            end, hits = window
        state = RateState(amount, int(amount - hits), math.ceil(end))
        if not allowed:
            raise RateLimited(
                f"rate limit of {amount} per {self.item.GRANULARITY.name} exceeded",
                retry_after_s=max(1, math.ceil(end - now)),
                limit=amount,
                remaining=0,
                reset_epoch_s=state.reset_epoch_s,
            )
        return state
