"""A rule: what it watches (a bucket, a source and a field pattern), what breaks it (a
threshold on the raw value or a window aggregate, or no data for a while), for how long, and
where it tells (its own webhook URL besides the organisation's webhooks).

Its state per series moves ok -> pending (breaking, not yet for `for_s`) -> firing -> resolved
(-> pending or firing again); `step` is the one place that says how. A rule's spec is stored as
JSON (storage/alerts_queries.py); `Rule.spec()` and `rule_from_spec` are its two directions."""

from __future__ import annotations

import math
import operator
from collections.abc import Callable
from dataclasses import dataclass, replace
from fnmatch import fnmatchcase
from typing import Any, Literal

from sensorbase.errors import Problem, invalid
from sensorbase.storage.alerts_queries import StateRow

Op = Literal[">", ">=", "<", "<=", "==", "!="]
Aggregate = Literal["avg", "min", "max"]
OPS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
    "==": operator.eq,
    "!=": operator.ne,
}
AGGREGATES = ("avg", "min", "max")
MAX_WINDOW_S = 7 * 86_400
MAX_DURATION_S = 30 * 86_400
US = 1_000_000


@dataclass(frozen=True, slots=True)
class Rule:
    id: int
    org_id: int
    bucket_id: int
    bucket: str  # the bucket's key
    key: str
    name: str
    source: str  # a key or a glob pattern (fnmatch: * ? [...])
    field: str  # the same
    op: Op = ">"
    threshold: float = 0.0
    aggregate: Aggregate | None = None  # None: the raw value
    window_s: int = 0
    for_s: int = 0
    no_data_s: int | None = None  # set: a no-data rule (op and threshold unused)
    cooldown_s: int = 300
    enabled: bool = True
    webhook_url: str | None = None
    webhook_secret: str | None = None
    condition: str | None = None  # dakkio's words, as given
    created_us: int = 0

    @property
    def exact(self) -> bool:
        return not any(c in self.source + self.field for c in "*?[")

    @property
    def timer(self) -> bool:
        """Whether the timer must look at it: time alone can change its outcome."""
        return self.no_data_s is not None or self.for_s > 0 or self.aggregate is not None

    @property
    def reads(self) -> bool:
        """Whether a new point's value alone cannot say if it breaks (a window must be read)."""
        return self.aggregate is not None

    def matches(self, source: str, field: str) -> bool:
        return fnmatchcase(source, self.source) and fnmatchcase(field, self.field)

    def breaks(self, value: float) -> bool:
        return OPS[self.op](value, self.threshold)

    def spec(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "source": self.source,
            "field": self.field,
            "op": self.op,
            "threshold": self.threshold,
            "aggregate": self.aggregate,
            "window_s": self.window_s,
            "for_s": self.for_s,
            "no_data_s": self.no_data_s,
            "cooldown_s": self.cooldown_s,
            "enabled": self.enabled,
            "webhook_url": self.webhook_url,
            "webhook_secret": self.webhook_secret,
            "condition": self.condition,
        }


def rule_from_spec(
    spec: dict[str, Any],
    *,
    id: int,
    org_id: int,
    bucket_id: int,
    bucket: str,
    key: str,
    created_us: int,
) -> Rule:
    known = {k: v for k, v in spec.items() if k in Rule.__dataclass_fields__}
    return Rule(
        id=id,
        org_id=org_id,
        bucket_id=bucket_id,
        bucket=bucket,
        key=key,
        created_us=created_us,
        **known,
    )


def check(rule: Rule) -> Rule:
    """The rule, if it makes sense; else InvalidInput naming every bad part."""
    problems = []
    if rule.op not in OPS:
        problems.append(Problem(f"must be one of {' '.join(OPS)}", "op"))
    if not math.isfinite(rule.threshold):
        problems.append(Problem("must be a finite number", "threshold"))
    if rule.aggregate is not None:
        if rule.aggregate not in AGGREGATES:
            problems.append(Problem(f"must be one of {', '.join(AGGREGATES)}", "aggregate"))
        if not 1 <= rule.window_s <= MAX_WINDOW_S:
            problems.append(
                Problem(f"must be 1 to {MAX_WINDOW_S} seconds with an aggregate", "window_s")
            )
    if not 0 <= rule.for_s <= MAX_DURATION_S:
        problems.append(Problem(f"must be 0 to {MAX_DURATION_S} seconds", "for_s"))
    if rule.no_data_s is not None and not 1 <= rule.no_data_s <= MAX_DURATION_S:
        problems.append(Problem(f"must be 1 to {MAX_DURATION_S} seconds", "no_data_s"))
    if not 0 <= rule.cooldown_s <= MAX_DURATION_S:
        problems.append(Problem(f"must be 0 to {MAX_DURATION_S} seconds", "cooldown_s"))
    if not rule.source or not rule.field:
        problems.append(Problem("a source and a field (or patterns) are required", "source"))
    if problems:
        raise invalid(problems)
    return rule


def step(
    rule: Rule, state: StateRow, breaking: bool, value: float | None, now_us: int
) -> StateRow | None:
    """The state after observing `breaking` at `now_us`, or None if it does not change.

    A rule in its cooldown (less than `cooldown_s` since it last fired) does not fire again:
    it stays where it is until the cooldown is over and it is still breaking."""
    current = state.state
    if breaking:
        if current == "firing":
            return None
        if current != "pending" and rule.for_s > 0:
            return replace(state, state="pending", since_us=now_us, value=value)
        if current == "pending" and now_us - state.since_us < rule.for_s * US:
            return None
        if state.fired_us is not None and now_us - state.fired_us < rule.cooldown_s * US:
            return None
        return replace(state, state="firing", since_us=now_us, value=value, fired_us=now_us)
    if current == "firing":
        return replace(state, state="resolved", since_us=now_us, value=value)
    if current == "pending":
        return replace(state, state="ok", since_us=now_us, value=value)
    return None
