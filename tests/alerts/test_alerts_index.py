"""A change of a rule or webhook on this node is applied by itself (alerts/engine.py
`changed_here`): after any sequence of creates, updates and deletes through the HTTP API, with
writes and evaluations between them, the engine's index, its Watch's arrays and the states it
knows equal what a full reload builds from the database (shown the same series), on every
backend (Hypothesis). A change another node made meanwhile is not missed."""

from __future__ import annotations

import itertools
from typing import Any

import httpx
import numpy as np
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from sensorbase.alerts.engine import ALERTS_VERSION, Engine
from sensorbase.alerts.rules import Rule
from sensorbase.alerts.watch import _COLUMNS
from sensorbase.model import SeriesKey
from sensorbase.services import Services
from sensorbase.storage.base import WriteTx
from sensorbase.times import now_us
from tests.conftest import Org

SOURCES = ["s1", "s2", "s3"]
FIELDS = ["t", "h"]
rule_spec = st.fixed_dictionaries(
    {
        "source": st.sampled_from([*SOURCES, "s*", "s[12]"]),
        "field": st.sampled_from([*FIELDS, "*"]),
        "op": st.sampled_from([">", "<"]),
        "threshold": st.sampled_from([10.0, 100.0]),
        "cooldown_s": st.sampled_from([0, 60]),
        "enabled": st.booleans(),
    }
)
operation = st.one_of(
    st.tuples(st.just("rule"), st.integers(0, 3), rule_spec),
    st.tuples(st.just("drop"), st.integers(0, 3)),
    st.tuples(
        st.just("hook"),
        st.integers(0, 1),
        st.lists(st.sampled_from(["data.received", "alert.triggered"]), min_size=1, unique=True),
    ),
    st.tuples(st.just("unhook"), st.integers(0, 1)),
    st.tuples(
        st.just("write"),
        st.sampled_from(SOURCES),
        st.lists(st.tuples(st.sampled_from(FIELDS), st.sampled_from([0.0, 50.0])), min_size=1),
    ),
    st.just(("evaluate",)),
)
_buckets = itertools.count()


@hypothesis_settings(
    max_examples=5,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(operations=st.lists(operation, min_size=1, max_size=8))
async def test_changes_applied_one_by_one_equal_a_full_reload(
    client: httpx.AsyncClient, org: Org, services: Services, operations: list[tuple[Any, ...]]
) -> None:
    bucket = f"b{next(_buckets)}"
    made = await client.post("/v1/buckets", json={"key": bucket}, headers=org.headers)
    assert made.status_code == 201, made.text
    engine = services.alert_engine
    # Every series known to the Watch first (a write learns its series only where rules are).
    body = {"bucket": bucket, "key": f"{bucket}-all", "name": "all", "source": "*", "field": "*"}
    reply = await client.post("/v1/alerts", json={**body, "threshold": 1000}, headers=org.headers)
    assert reply.status_code == 201, reply.text
    for source in SOURCES:
        points = [{"field": f, "value": 0.0} for f in FIELDS]
        body = {"bucket": bucket, "source": source, "points": points}
        reply = await client.post("/v1/write", json=body, headers=org.headers)
        assert reply.status_code in (200, 204), reply.text
    rules: set[int] = set()
    hooks: set[int] = set()
    for op in operations:
        if op[0] == "rule":
            _, slot, spec = op
            key = f"{bucket}-r{slot}"
            if slot in rules:
                reply = await client.patch(f"/v1/alerts/{key}", json=spec, headers=org.headers)
                assert reply.status_code == 200, reply.text
            else:
                body = {"bucket": bucket, "key": key, "name": "r", **spec}
                reply = await client.post("/v1/alerts", json=body, headers=org.headers)
                assert reply.status_code == 201, reply.text
                rules.add(slot)
        elif op[0] == "drop":
            reply = await client.delete(f"/v1/alerts/{bucket}-r{op[1]}", headers=org.headers)
            assert reply.status_code == (204 if op[1] in rules else 404), reply.text
            rules.discard(op[1])
        elif op[0] == "hook":
            _, slot, events = op
            key = f"{bucket}-w{slot}"
            if slot in hooks:
                path = f"/v1/webhooks/{key}"
                reply = await client.patch(path, json={"events": events}, headers=org.headers)
                assert reply.status_code == 200, reply.text
            else:
                body = {"key": key, "url": "http://127.0.0.1:9/hook", "events": events}
                reply = await client.post("/v1/webhooks", json=body, headers=org.headers)
                assert reply.status_code == 201, reply.text
                hooks.add(slot)
        elif op[0] == "unhook":
            reply = await client.delete(f"/v1/webhooks/{bucket}-w{op[1]}", headers=org.headers)
            assert reply.status_code == (204 if op[1] in hooks else 404), reply.text
            hooks.discard(op[1])
        elif op[0] == "write":
            _, source, points = op
            body = {
                "bucket": bucket,
                "source": source,
                "points": [{"field": f, "value": v} for f, v in points],
            }
            reply = await client.post("/v1/write", json=body, headers=org.headers)
            assert reply.status_code in (200, 204), reply.text
        else:  # transitions (states) this node makes and remembers
            await engine.evaluate_now(list(engine.index.rules.values()))
        _same_as_reloaded(services, org)


async def test_a_change_another_node_made_meanwhile_is_loaded_too(
    client: httpx.AsyncClient, org: Org, services: Services
) -> None:
    async def create(key: str) -> None:
        body = {"bucket": org.bucket, "key": key, "name": "r", "source": "s1", "field": "t"}
        reply = await client.post("/v1/alerts", json=body, headers=org.headers)
        assert reply.status_code == 201, reply.text

    def elsewhere(tx: WriteTx) -> None:  # what another node's change commits
        found = tx.get_org(org.key)
        assert found is not None
        bucket = tx.get_bucket(found.id, org.bucket)
        assert bucket is not None
        rule = Rule(0, found.id, bucket.id, bucket.key, "elsewhere", "r", "s2", "t")
        tx.create_alert_rule(found.id, bucket.id, rule.key, rule.spec(), rule.timer, now_us())
        tx.swap_setting(ALERTS_VERSION, "another-node")

    await create("here-1")
    await services.committer.run(elsewhere)
    await create("here-2")  # sees the version it replaces is not the one this node loaded
    engine = services.alert_engine
    assert {r.key for r in engine.index.rules.values()} == {"here-1", "elsewhere", "here-2"}
    _same_as_reloaded(services, org)


def _same_as_reloaded(services: Services, org: Org) -> None:
    engine = services.alert_engine
    fresh = Engine(services.store, services.committer, services.settings)
    fresh.load()
    assert engine.index == fresh.index
    watch, other = engine.watch, fresh.watch
    # The fresh Watch is shown the series this one knows (each learnt at its first write).
    reader = services.store.reader()
    found = reader.get_org(org.key)
    assert found is not None
    names = {s.id: SeriesKey(s.bucket, s.source, s.field) for s in reader.list_series(found.id)}
    ids = watch.known
    if len(ids):
        keys = [names[i] for i in ids.tolist()]
        used = np.arange(len(keys), dtype=np.int32)
        zeros = np.zeros(len(keys))
        other.candidates(found.id, keys, ids, used, zeros.astype(np.int64), zeros, now_us())
    assert np.array_equal(watch.known, other.known)
    for name in _COLUMNS:
        mine, theirs = getattr(watch, name), getattr(other, name)
        assert len(mine) == len(theirs) and list(mine) == list(theirs), name
    assert watch._states == other._states
