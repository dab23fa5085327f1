"""The write path's array evaluation (alerts/watch.py) against a plain-Python model of what a
batch's newest points may change: the same pairs, with the same verdicts, for any rules, states
and batches (Hypothesis)."""

from __future__ import annotations

import json

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from sensorbase.alerts.index import RuleIndex, rule_of
from sensorbase.alerts.rules import OPS, US, Rule
from sensorbase.alerts.watch import Watch
from sensorbase.model import SeriesKey
from sensorbase.storage.alerts_queries import RuleRow, StateRow

NOW = 1_800_000_000 * US
SOURCES = ["a", "b", "c"]
FIELDS = ["t", "h"]
STATE_NAMES = ["ok", "pending", "firing", "resolved"]

rule_specs = st.fixed_dictionaries(
    {
        "name": st.just("r"),
        "source": st.sampled_from([*SOURCES, "*", "[ab]"]),
        "field": st.sampled_from([*FIELDS, "*"]),
        "op": st.sampled_from(list(OPS)),
        "threshold": st.sampled_from([0.0, 1.0, 2.5]),
        "kind": st.sampled_from(["value", "value", "no_data", "window"]),
        "cooldown_s": st.sampled_from([0, 60]),
    }
)


def _rule_row(i: int, spec: dict[str, object]) -> RuleRow:
    kind = spec.pop("kind")
    if kind == "no_data":
        spec["no_data_s"] = 60
    elif kind == "window":
        spec.update(aggregate="avg", window_s=60)
    return RuleRow(i + 1, 1, 1, "farm", f"r{i}", json.dumps(spec), 0)


def _model(
    rules: list[Rule],
    states: dict[tuple[int, int], StateRow],
    keys: list[SeriesKey],
    ids: list[int],
    rows: list[tuple[int, int, float]],  # (key index, time, value)
) -> set[tuple[int, int, bool | None, float]]:
    newest: dict[int, tuple[int, int, float]] = {}
    for at, (k, t, v) in enumerate(rows):
        if k not in newest or (t, at) >= newest[k][:2]:
            newest[k] = (t, at, v)
    found = set()
    for k, (_, _, v) in newest.items():
        if ids[k] < 0:
            continue
        for rule in rules:
            if not rule.matches(keys[k].source, keys[k].field):
                continue
            known = states.get((rule.id, ids[k]))
            state = "ok" if known is None else known.state
            breaking: bool | None
            if rule.no_data_s is not None:
                if state not in ("firing", "pending"):
                    continue
                breaking = False
            elif rule.aggregate is not None:
                breaking = None
            else:
                breaking = rule.breaks(v)
                if state == "firing" if breaking else state in ("ok", "resolved"):
                    continue
                fired = None if known is None else known.fired_us
                cooling = fired is not None and NOW - fired < rule.cooldown_s * US
                if breaking and state != "pending" and cooling:
                    continue
            found.add((rule.id, ids[k], breaking, v))
    return found


@settings(max_examples=200, deadline=None)
@given(
    specs=st.lists(rule_specs, min_size=1, max_size=6),
    state_draws=st.lists(  # a state (or none) for every (rule, series) pair
        st.one_of(
            st.none(),
            st.tuples(
                st.sampled_from(STATE_NAMES),
                st.sampled_from([None, NOW - 10 * US, NOW - 600 * US]),
            ),
        ),
        min_size=36,
        max_size=36,
    ),
    rows=st.lists(
        st.tuples(st.integers(0, 5), st.integers(0, 3), st.sampled_from([0.0, 1.0, 2.5, 9.0])),
        min_size=1,
        max_size=30,
    ),
    unresolved=st.sets(st.integers(0, 5), max_size=2),
    batches=st.integers(1, 3),
)
def test_the_arrays_pick_what_the_model_picks(
    specs: list[dict[str, object]],
    state_draws: list[tuple[str, int | None] | None],
    rows: list[tuple[int, int, float]],
    unresolved: set[int],
    batches: int,
) -> None:
    index = RuleIndex.build([rule_of(_rule_row(i, dict(s))) for i, s in enumerate(specs)], [])
    rules = list(index.rules.values())
    keys = [SeriesKey("farm", s, f) for s in SOURCES for f in FIELDS]
    ids = [-1 if k in unresolved else 100 + k for k in range(len(keys))]
    states = {}
    for at, drawn in enumerate(state_draws):
        rule_id, series_id = 1 + at // 6, 100 + at % 6
        if drawn is not None and rule_id <= len(specs):
            states[(rule_id, series_id)] = StateRow(rule_id, series_id, drawn[0], 0, None, drawn[1])
    watch = Watch(index, dict(states))
    used = np.array([k for k, _, _ in rows], np.int32)
    times = np.array([t for _, t, _ in rows], np.int64)
    values = np.array([v for _, _, v in rows], np.float64)
    for _ in range(batches):  # the first matches the series; the next find them known
        found = watch.candidates(1, keys, np.array(ids, np.int64), used, times, values, NOW)
        got = {(c.rule.id, c.series_id, c.breaking, c.value) for c in found}
        assert got == _model(rules, states, keys, ids, rows)
    # A transition remembered changes what the next batch picks, as the model says.
    for state in list(states.values())[:2]:
        moved = StateRow(state.rule_id, state.series_id, "firing", NOW, 1.0, NOW)
        watch.remember(moved)
        states[(moved.rule_id, moved.series_id)] = moved
    found = watch.candidates(1, keys, np.array(ids, np.int64), used, times, values, NOW)
    got = {(c.rule.id, c.series_id, c.breaking, c.value) for c in found}
    assert got == _model(rules, states, keys, ids, rows)
