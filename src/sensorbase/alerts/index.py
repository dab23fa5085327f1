"""The rules indexed by organisation and bucket, so that a write to an organisation without
rules costs one set miss, and a series' matching rules are found by name without looking at
other buckets' (once per series: alerts/watch.py keeps what it found by series id).

A rule changed on this node is put in (or taken out of) the index by itself, in the time of
its own entries: `put` and `remove` leave what `build` would make from the rules as stored.
Building keeps the rules it is given: a full reload (another node's change) decodes only the
rows whose stored spec changed (`rules_of`)."""

from __future__ import annotations

import bisect
import json
from collections.abc import Iterable
from dataclasses import dataclass, field

from sensorbase.alerts.rules import Rule, rule_from_spec
from sensorbase.storage.alerts_queries import RuleRow, WebhookRow

_Where = tuple[int, str]  # (organisation id, bucket key)
_SeriesName = tuple[int, str, str, str]  # (organisation id, bucket, source, field)


def rule_of(row: RuleRow) -> Rule:
    return rule_from_spec(
        json.loads(row.spec_json),
        id=row.id,
        org_id=row.org_id,
        bucket_id=row.bucket_id,
        bucket=row.bucket_key,
        key=row.key,
        created_us=row.created_us,
    )


def rules_of(rows: Iterable[RuleRow], known: dict[RuleRow, Rule]) -> dict[RuleRow, Rule]:
    """Each row's rule, taken from `known` (the last load's) where the row is unchanged: ~21 us
    a rule saved, most of a reload's time (json and the dataclass)."""
    return {row: known.get(row) or rule_of(row) for row in rows}


@dataclass
class RuleIndex:
    rules: dict[int, Rule] = field(default_factory=dict)
    orgs: set[int] = field(default_factory=set)
    exact: dict[_SeriesName, list[Rule]] = field(default_factory=dict)
    patterns: dict[_Where, list[Rule]] = field(default_factory=dict)
    # Webhooks that want every write (data.received), by organisation.
    data_hooks: dict[int, list[WebhookRow]] = field(default_factory=dict)
    per_org: dict[int, int] = field(default_factory=dict)  # rules indexed, for `orgs`

    @classmethod
    def build(cls, rules: Iterable[Rule], webhooks: list[WebhookRow]) -> RuleIndex:
        index = cls()
        for rule in rules:
            index.put(rule)
        by_org: dict[int, list[WebhookRow]] = {}
        for hook in webhooks:
            by_org.setdefault(hook.org_id, []).append(hook)
        for org_id, hooks in by_org.items():
            index.set_webhooks(org_id, hooks)
        return index

    def put(self, rule: Rule) -> None:
        """The rule in, in place of what it was (a disabled rule is left out)."""
        self.remove(rule.id)
        if not rule.enabled:
            return
        self.rules[rule.id] = rule
        self.per_org[rule.org_id] = self.per_org.get(rule.org_id, 0) + 1
        self.orgs.add(rule.org_id)
        # In id order within each list, as when built from the rows (ORDER BY id).
        bisect.insort(self._list(rule), rule, key=lambda r: r.id)

    def remove(self, rule_id: int) -> None:
        rule = self.rules.pop(rule_id, None)
        if rule is None:
            return
        found = self._list(rule)
        found[:] = [r for r in found if r.id != rule_id]
        if not found:  # no empty lists, as when built
            if rule.exact:
                del self.exact[(rule.org_id, rule.bucket, rule.source, rule.field)]
            else:
                del self.patterns[(rule.org_id, rule.bucket)]
        self.per_org[rule.org_id] -= 1
        if not self.per_org[rule.org_id]:
            del self.per_org[rule.org_id]
            self.orgs.discard(rule.org_id)

    def set_webhooks(self, org_id: int, hooks: list[WebhookRow]) -> None:
        """An organisation's webhooks as stored (in id order)."""
        data = [h for h in hooks if "data.received" in h.events]
        if data:
            self.data_hooks[org_id] = data
        else:
            self.data_hooks.pop(org_id, None)

    def match(self, org_id: int, bucket: str, source: str, field: str) -> tuple[Rule, ...]:
        return tuple(self.exact.get((org_id, bucket, source, field), ())) + tuple(
            r for r in self.patterns.get((org_id, bucket), ()) if r.matches(source, field)
        )

    def _list(self, rule: Rule) -> list[Rule]:
        if rule.exact:
            return self.exact.setdefault((rule.org_id, rule.bucket, rule.source, rule.field), [])
        return self.patterns.setdefault((rule.org_id, rule.bucket), [])
