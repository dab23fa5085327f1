"""A bad message never stops the consumer: it is refused with its reason, published on the
organisation's error topic, listed by GET /v1/mqtt/errors and counted in /metrics."""

from __future__ import annotations

import json
import re
import threading
from typing import Any

from tests.mqtt.conftest import Sensorbase, device, wait_for


def _refused_count(sensorbase: Sensorbase) -> float:
    with sensorbase.http() as client:
        text = client.get("/metrics").text
    found = re.search(r'^sensorbase_mqtt_messages_total\{outcome="refused"\} (\S+)$', text, re.M)
    return float(found.group(1)) if found else 0.0


def test_a_bad_message_is_refused_with_its_reason(sensorbase: Sensorbase) -> None:
    key = sensorbase.key(["data:write"])
    watcher = device(sensorbase.broker, key)
    heard: list[dict[str, Any]] = []
    subscribed = threading.Event()
    watcher.client.on_message = lambda _c, _u, m: heard.append(json.loads(m.payload))
    watcher.client.on_subscribe = lambda *_: subscribed.set()
    watcher.client.subscribe("sensorbase/default/$errors", qos=1)
    assert subscribed.wait(5)
    dev = device(sensorbase.broker, key)
    bad = [
        ("sensorbase/default/farm/dev/t", "not json"),
        ("sensorbase/default/farm/dev1", "21.5"),  # a bare number without a field
        ("sensorbase/default/farm/dev2", '[{"field": "t", "value": "warm", "time": 1}]'),
        (
            "sensorbase/default/farm/dev3",
            '{"points": [{"bucket": "barn", "field": "t", "value": 1}]}',
        ),
        ("sensorbase/default/nobucket/dev/t", "1.5"),
        ("sensorbase/default/farm/dev/~nodialect", "{}"),
    ]
    for topic, payload in bad:
        assert not dev.publish(topic, payload).is_failure  # the broker took it
    assert not dev.publish("sensorbase/default/farm/dev/t", "3.5").is_failure
    found = wait_for(lambda: sensorbase.points("farm"), lambda p: "dev/t" in p)
    assert [p["value"] for p in found["dev/t"]] == [3.5]  # the consumer went on
    wait_for(lambda: heard, lambda h: len(h) == len(bad))
    # (Messages are written concurrently: their refusals come in any order.)
    by_topic = {h["topic"]: h["reason"] + " " + json.dumps(h["errors"]) for h in heard}
    reasons = [by_topic[topic] for topic, _ in bad]
    assert "JSON" in reasons[0] or "json" in reasons[0]
    assert "a bare number needs a field" in reasons[1]
    assert '"field": "value"' in reasons[2]
    assert "may not name another" in reasons[3]
    assert "nobucket" in reasons[4]
    assert "~nodialect" in reasons[5]
    with sensorbase.http() as client:
        listed = client.get("/v1/mqtt/errors").json()
    assert listed["enabled"] is True
    assert sorted(e["topic"] for e in listed["errors"]) == sorted(t for t, _ in bad)
    assert _refused_count(sensorbase) == len(bad)
    watcher.close()
    dev.close()


def test_the_error_list_is_the_organisations_own(sensorbase: Sensorbase) -> None:
    dev = device(sensorbase.broker, sensorbase.key(["data:write"]))
    assert not dev.publish("sensorbase/default/farm/dev", "oops").is_failure
    with sensorbase.http() as client:
        wait_for(lambda: client.get("/v1/mqtt/errors").json()["errors"])
        assert client.post("/v1/orgs", json={"key": "other"}).status_code == 201
        made = client.post("/v1/orgs/other/keys", json={"name": "r", "scopes": ["data:read"]})
    with sensorbase.http(made.json()["key"]) as client:
        assert client.get("/v1/mqtt/errors").json()["errors"] == []
    writer_only = sensorbase.key(["data:write"])
    with sensorbase.http(writer_only) as client:
        assert client.get("/v1/mqtt/errors").status_code == 403
    dev.close()


def test_an_archived_bucket_refuses_mqtt_writes_and_still_answers_reads(
    sensorbase: Sensorbase,
) -> None:
    dev = device(sensorbase.broker, sensorbase.key(["data:write"]))
    assert not dev.publish("sensorbase/default/farm/dev/t", "1.5").is_failure
    wait_for(lambda: sensorbase.points("farm"), lambda p: "dev/t" in p)
    with sensorbase.http() as client:
        reply = client.patch("/v1/buckets/farm", json={"status": "archived"})
        assert reply.status_code == 200, reply.text
    assert not dev.publish("sensorbase/default/farm/dev/t", "2.5").is_failure
    with sensorbase.http() as client:
        listed = wait_for(lambda: client.get("/v1/mqtt/errors").json()["errors"])
    [refusal] = listed
    assert refusal["topic"] == "sensorbase/default/farm/dev/t"
    assert "bucket 'farm' is archived" in refusal["reason"]
    assert [p["value"] for p in sensorbase.points("farm")["dev/t"]] == [1.5]
