"""What became of each message: counted for /metrics, and each refusal kept (the last
`mqtt_recent_errors` per organisation) for `GET /v1/mqtt/errors`."""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass
from typing import Any

from prometheus_client import Counter

from sensorbase.errors import Problem
from sensorbase.times import format_us, now_us

MESSAGES = Counter(
    "sensorbase_mqtt_messages",
    "MQTT messages taken from the broker, by outcome (stored, refused)",
    ["outcome"],
)
_STORED = MESSAGES.labels("stored")  # (bound once: a lookup a message shows in profiles)

WRITES = Counter(
    "sensorbase_mqtt_writes",
    "Writes the MQTT consumer made: of several messages folded into one, or of one alone",
    ["kind"],
)


@dataclass(frozen=True, slots=True)
class Refusal:
    topic: str
    reason: str
    problems: list[Problem]
    time_us: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "topic": self.topic,
            "reason": self.reason,
            "errors": [p.as_dict() for p in self.problems],
            "time": format_us(self.time_us),
        }


class Refusals:
    def __init__(self, keep: int) -> None:
        self._keep = keep
        self._by_org: dict[str, deque[Refusal]] = {}
        self._lock = threading.Lock()

    def stored(self, messages: int = 1) -> None:
        _STORED.inc(messages)

    def refused(self, org: str | None, topic: str, reason: str, problems: list[Problem]) -> Refusal:
        MESSAGES.labels("refused").inc()
        refusal = Refusal(topic, reason, problems, now_us())
        if org is not None and self._keep:
            with self._lock:
                kept = self._by_org.get(org)
                if kept is None:
                    if len(self._by_org) >= 10_000:  # topics name organisations: bound them
                        self._by_org.pop(next(iter(self._by_org)))
                    kept = self._by_org[org] = deque(maxlen=self._keep)
                kept.append(refusal)
        return refusal

    def recent(self, org: str) -> list[Refusal]:
        """The organisation's refusals, newest first."""
        with self._lock:
            return list(reversed(self._by_org.get(org, ())))
