"""The rules indexed by organisation and bucket, so that a write to an organisation without
rules costs one set miss, and a series' matching rules are found by name without looking at
other buckets' (once per series: alerts/watch.py keeps what it found by series id)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from sensorbase.alerts.rules import Rule, rule_from_spec
from sensorbase.storage.alerts_queries import RuleRow, WebhookRow

_Where = tuple[int, str]  # (organisation id, bucket key)
_SeriesName = tuple[int, str, str, str]  # (organisation id, bucket, source, field)


def rule_of(row: RuleRow) -> Rule:
    return rule_from_spec(
        row.spec,
        id=row.id,
        org_id=row.org_id,
        bucket_id=row.bucket_id,
        bucket=row.bucket_key,
        key=row.key,
        created_us=row.created_us,
    )


@dataclass
class RuleIndex:
    rules: dict[int, Rule] = field(default_factory=dict)
    orgs: set[int] = field(default_factory=set)
    exact: dict[_SeriesName, list[Rule]] = field(default_factory=dict)
    patterns: dict[_Where, list[Rule]] = field(default_factory=dict)
    # Webhooks that want every write (data.received), by organisation.
    data_hooks: dict[int, list[WebhookRow]] = field(default_factory=dict)

    @classmethod
    def build(cls, rows: list[RuleRow], webhooks: list[WebhookRow]) -> RuleIndex:
        index = cls()
        exact: dict[_SeriesName, list[Rule]] = defaultdict(list)
        patterns: dict[_Where, list[Rule]] = defaultdict(list)
        for row in rows:
            rule = rule_of(row)
            if not rule.enabled:
                continue
            index.rules[rule.id] = rule
            index.orgs.add(rule.org_id)
            if rule.exact:
                exact[(rule.org_id, rule.bucket, rule.source, rule.field)].append(rule)
            else:
                patterns[(rule.org_id, rule.bucket)].append(rule)
        index.exact, index.patterns = dict(exact), dict(patterns)
        for hook in webhooks:
            if "data.received" in hook.events:
                index.data_hooks.setdefault(hook.org_id, []).append(hook)
        return index

    def match(self, org_id: int, bucket: str, source: str, field: str) -> tuple[Rule, ...]:
        return tuple(self.exact.get((org_id, bucket, source, field), ())) + tuple(
            r for r in self.patterns.get((org_id, bucket), ()) if r.matches(source, field)
        )
