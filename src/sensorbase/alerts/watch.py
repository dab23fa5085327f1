"""What a write looks at, as arrays: a row per (rule, series) pair, sorted by series id, with
the rule's comparison and the pair's state as this node knows it. A batch's newest point of
each series is compared with every pair of its series at once (numpy), and only the pairs whose
state the point may change come back to Python (alerts/engine.py queues them).

Profiled before (benchmarks/alerts.py, 1,000 rules over the fleet, py-spy on the server): the
per-series Python loop, a lexsort of the batch and a rule lookup by name per series took ~3% of
the server's CPU per point (0.12 us/point in process); here a 5,000-point batch costs a few
array operations over its rows and its ~250 series, whatever the number of rules.

A series is matched against the rules by name once, the first time a write names it (its id
then joins `known`, with or without pairs), so a write of known series never touches the rule
index. Adding pairs re-sorts the arrays: linear in the pairs, once per batch that brings new
series of an organisation with rules.

A rule changed on this node replaces its own pairs (`put_rule`, `drop_rule`): the series it
matches among those known, one pass over the arrays, so that creating 1,000 rules costs 1,000
small changes, not 1,000 rebuilds of everything. The arrays are then what a fresh Watch shown
the same series would hold (tests/alerts/test_alerts_index.py)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from sensorbase.alerts.index import RuleIndex
from sensorbase.alerts.rules import US, Rule
from sensorbase.model import SeriesKey
from sensorbase.storage.alerts_queries import StateRow

STATES = ("ok", "pending", "firing", "resolved")
_CODE = {name: code for code, name in enumerate(STATES)}
_PENDING, _FIRING = _CODE["pending"], _CODE["firing"]
VALUE, NO_DATA, WINDOW = 0, 1, 2  # a pair's kind
# An operator as the outcomes of comparing value with threshold it accepts: bit 0 below,
# bit 1 equal, bit 2 above.
_ACCEPTS = {"<": 0b001, "<=": 0b011, "==": 0b010, ">=": 0b110, ">": 0b100, "!=": 0b101}
_NEVER = np.iinfo(np.int64).min // 2  # "never fired": out of any cooldown

_States = dict[tuple[int, int], StateRow]
_COLUMNS = (  # the arrays with a row per pair
    "series",
    "rule_id",
    "rules",
    "kind",
    "accepts",
    "threshold",
    "cooldown_us",
    "state",
    "fired_us",
)


@dataclass(slots=True)
class Candidate:
    rule: Rule
    series_id: int
    key: SeriesKey
    breaking: bool | None  # None: a window aggregate, to be read
    value: float


def newest_rows(
    used: npt.NDArray[np.int32], time_us: npt.NDArray[np.int64], keys: int
) -> npt.NDArray[np.int64]:
    """Each series key's newest row (the later row on a tie, as the store keeps), -1 where the
    batch has none: no sort, two passes over the rows."""
    newest = np.full(keys, _NEVER, np.int64)
    np.maximum.at(newest, used, time_us)
    rows = np.flatnonzero(time_us == newest[used])
    found = np.full(keys, -1, np.int64)
    np.maximum.at(found, used[rows], rows)
    return found


class Watch:
    def __init__(self, index: RuleIndex, states: _States) -> None:
        self.index = index
        self.known = np.empty(0, np.int64)  # series ids matched (with pairs or not), sorted
        # Per pair, sorted by (series id, rule id):
        self.series = np.empty(0, np.int64)
        self.rule_id = np.empty(0, np.int64)
        self.rules = np.empty(0, object)  # the Rule
        self.kind = np.empty(0, np.uint8)
        self.accepts = np.empty(0, np.uint8)
        self.threshold = np.empty(0, np.float64)
        self.cooldown_us = np.empty(0, np.int64)
        self.state = np.empty(0, np.uint8)
        self.fired_us = np.empty(0, np.int64)
        # The known series by organisation and bucket, (source, field) -> id: whom a rule
        # added here matches.
        self._names: dict[tuple[int, str], dict[tuple[str, str], int]] = {}
        self._states: dict[int, dict[int, StateRow]] = {}  # rule id -> series id -> state
        self._keep(states)

    def _keep(self, states: _States) -> None:
        self._states = {}
        for (rule_id, series_id), known in states.items():
            self._states.setdefault(rule_id, {})[series_id] = known

    def restate(self, states: _States) -> None:
        """The states as stored now (another node's transitions included)."""
        self._keep(states)
        self.state, self.fired_us = self._state_columns(self.rule_id, self.series)

    def remember(self, known: StateRow) -> None:
        """A transition this node made (or saw made)."""
        self._states.setdefault(known.rule_id, {})[known.series_id] = known
        lo = int(np.searchsorted(self.series, known.series_id, "left"))
        hi = int(np.searchsorted(self.series, known.series_id, "right"))
        at = np.flatnonzero(self.rule_id[lo:hi] == known.rule_id)
        if len(at):
            self.state[lo + at[0]] = _CODE[known.state]
            self.fired_us[lo + at[0]] = _NEVER if known.fired_us is None else known.fired_us

    def put_rule(self, rule: Rule, states: list[StateRow]) -> None:
        """A rule changed on this node, as stored now, with its states: its pairs with the
        known series it matches (none if disabled), in place of its former pairs. Costs the
        series of its bucket (of its name, for a rule without a pattern) and a pass over the
        pairs' arrays, whatever the number of rules."""
        self.drop_rule(rule.id)
        if states:
            self._states[rule.id] = {s.series_id: s for s in states}
        if not rule.enabled:
            return
        names = self._names.get((rule.org_id, rule.bucket), {})
        if rule.exact:
            found = names.get((rule.source, rule.field))
            matched = [] if found is None else [found]
        else:
            matched = [i for (src, fld), i in names.items() if rule.matches(src, fld)]
        self._insert([(series_id, rule) for series_id in matched])

    def drop_rule(self, rule_id: int) -> None:
        """A rule deleted (or about to be put back changed): its pairs and states gone."""
        self._states.pop(rule_id, None)
        keep = self.rule_id != rule_id
        if not keep.all():
            for name in _COLUMNS:
                setattr(self, name, getattr(self, name)[keep])

    def candidates(
        self,
        org_id: int,
        keys: Sequence[SeriesKey],
        ids: npt.NDArray[np.int64],
        used: npt.NDArray[np.int32],
        time_us: npt.NDArray[np.int64],
        value: npt.NDArray[np.float64],
        now_us: int,
    ) -> list[Candidate]:
        """The pairs whose state the batch's newest points may change."""
        rows = newest_rows(used, time_us, len(keys))
        present = np.flatnonzero((rows >= 0) & (ids >= 0))
        series = ids[present]
        new = np.ones(len(series), bool)
        if len(self.known):
            at = np.minimum(np.searchsorted(self.known, series), len(self.known) - 1)
            new = self.known[at] != series
        if new.any():
            self._add(org_id, keys, present[new], ids)
        lo = np.searchsorted(self.series, series, "left")
        counts = np.searchsorted(self.series, series, "right") - lo
        total = int(counts.sum())
        if not total:
            return []
        starts = np.repeat(lo - (np.cumsum(counts) - counts), counts)
        pairs = np.arange(total) + starts
        key_of = np.repeat(present, counts)
        v = value[rows[key_of]]
        threshold = self.threshold[pairs]
        outcome = (v > threshold).astype(np.uint8) * 2 + (v == threshold)
        breaking = ((self.accepts[pairs] >> outcome) & 1).astype(bool)
        state = self.state[pairs]
        kind = self.kind[pairs]
        held = (state == _PENDING) | (state == _FIRING)
        cooling = (now_us - self.fired_us[pairs] < self.cooldown_us[pairs]) & (state != _PENDING)
        changes = np.where(breaking, (state != _FIRING) & ~cooling, held)
        wanted = np.flatnonzero(
            np.where(kind == VALUE, changes, np.where(kind == NO_DATA, held, True))
        )
        found = []
        for i in wanted.tolist():
            p, k = int(pairs[i]), int(key_of[i])
            b: bool | None = bool(breaking[i])
            if kind[i] == NO_DATA:
                b = False  # a point: there is data
            elif kind[i] == WINDOW:
                b = None
            found.append(Candidate(self.rules[p], int(ids[k]), keys[k], b, float(v[i])))
        return found

    def _add(
        self,
        org_id: int,
        keys: Sequence[SeriesKey],
        new_keys: npt.NDArray[np.int64],
        ids: npt.NDArray[np.int64],
    ) -> None:
        """Match series seen for the first time, by name, and add their pairs."""
        pairs = []
        added = []
        for k in new_keys.tolist():
            key = keys[k]
            series_id = int(ids[k])
            added.append(series_id)
            self._names.setdefault((org_id, key.bucket), {})[(key.source, key.field)] = series_id
            for rule in self.index.match(org_id, key.bucket, key.source, key.field):
                pairs.append((series_id, rule))
        self.known = np.unique(np.concatenate([self.known, np.array(added, np.int64)]))
        self._insert(pairs)

    def _insert(self, pairs: list[tuple[int, Rule]]) -> None:
        """New pairs with their states, the arrays kept in (series, rule) order."""
        if not pairs:
            return
        rules = np.empty(len(pairs), object)
        rules[:] = [r for _, r in pairs]
        series = np.array([s for s, _ in pairs], np.int64)
        rule_id = np.array([r.id for _, r in pairs], np.int64)
        state, fired_us = self._state_columns(rule_id, series)
        added = {
            "series": series,
            "rule_id": rule_id,
            "rules": rules,
            "kind": np.array([_kind(r) for _, r in pairs], np.uint8),
            "accepts": np.array([_ACCEPTS[r.op] for _, r in pairs], np.uint8),
            "threshold": np.array([r.threshold for _, r in pairs], np.float64),
            "cooldown_us": np.array([r.cooldown_s * US for _, r in pairs], np.int64),
            "state": state,
            "fired_us": fired_us,
        }
        merged = {name: np.concatenate([getattr(self, name), added[name]]) for name in _COLUMNS}
        order = np.lexsort((merged["rule_id"], merged["series"]))
        for name in _COLUMNS:
            setattr(self, name, merged[name][order])

    def _state_columns(
        self, rule_id: npt.NDArray[np.int64], series: npt.NDArray[np.int64]
    ) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.int64]]:
        """The pairs' states and last firings as this node knows them."""
        state = np.zeros(len(series), np.uint8)
        fired = np.full(len(series), _NEVER, np.int64)
        for at, (r, s) in enumerate(zip(rule_id.tolist(), series.tolist(), strict=True)):
            known = self._states.get(r, {}).get(s)
            if known is not None:
                state[at] = _CODE[known.state]
                fired[at] = _NEVER if known.fired_us is None else known.fired_us
        return state, fired


def _kind(rule: Rule) -> int:
    if rule.no_data_s is not None:
        return NO_DATA
    return WINDOW if rule.reads else VALUE
