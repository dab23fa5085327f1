"""A burst of messages folded into one write: every good message stored once, a bad one among
them refused alone with its reason (and none of its points stored), each acknowledged; on both
stores."""

from __future__ import annotations

import json
import re
import threading
from typing import Any

from tests.mqtt.conftest import Sensorbase, device, wait_for

T0 = 1_795_254_000  # seconds (SENSORBASE_MQTT_TIME_PRECISION=s)
FAR_FUTURE = T0 + 10 * 365 * 86_400  # past the server's max_future_s


def _metric(sensorbase: Sensorbase, name: str, label: str) -> float:
    with sensorbase.http() as client:
        text = client.get("/metrics").text
    found = re.search(rf'^sensorbase_mqtt_{name}_total\{{\w+="{label}"\}} (\S+)$', text, re.M)
    return float(found.group(1)) if found else 0.0


def test_a_bad_message_in_a_burst_is_refused_alone(sensorbase_on_both: Sensorbase) -> None:
    sensorbase = sensorbase_on_both
    key = sensorbase.key(["data:write"])
    watcher = device(sensorbase.broker, key)
    heard: list[dict[str, Any]] = []
    subscribed = threading.Event()
    watcher.client.on_message = lambda _c, _u, m: heard.append(json.loads(m.payload))
    watcher.client.on_subscribe = lambda *_: subscribed.set()
    watcher.client.subscribe("sensorbase/default/$errors", qos=1)
    assert subscribed.wait(5)
    dev = device(sensorbase.broker, key, inflight=1000)
    messages = 300
    bad = 150
    infos = []
    for n in range(messages):
        points = [{"field": "v", "value": float(n), "time": T0 + n}]
        points.append({"field": "w", "value": -float(n), "time": T0 + n})
        if n == bad:  # one good point and one out of the time window: the message is refused
            points[1]["time"] = FAR_FUTURE
        # Published without waiting: the broker hands them over in bursts.
        infos.append(dev.client.publish(f"sensorbase/default/farm/d{n % 3}", json.dumps(points), 1))
    for info in infos:
        info.wait_for_publish(10)
    assert all(not dev.acks[i.mid].is_failure for i in infos)  # every one acknowledged
    # (stored at the bridge's pace: on a busy two-core machine 300 messages took over 10 s)
    stored = wait_for(
        lambda: _metric(sensorbase, "messages", "stored"), lambda s: s >= 299, timeout_s=60
    )
    assert stored == messages - 1
    assert _metric(sensorbase, "messages", "refused") == 1
    # Folded: fewer writes than messages (the bad one was written again, alone).
    assert _metric(sensorbase, "writes", "folded") >= 1
    found = sensorbase.points("farm")
    for d in range(3):
        mine = [n for n in range(messages) if n % 3 == d and n != bad]
        assert [p["value"] for p in found[f"d{d}/v"]] == [float(n) for n in mine]
        assert [p["value"] for p in found[f"d{d}/w"]] == [-float(n) for n in mine]
    with sensorbase.http() as client:
        (refusal,) = client.get("/v1/mqtt/errors").json()["errors"]
    assert refusal["topic"] == f"sensorbase/default/farm/d{bad % 3}"
    assert [(e["index"], e["field"]) for e in refusal["errors"]] == [(1, "time")]
    # ...and published on the organisation's error topic, once.
    wait_for(lambda: heard)
    assert [(h["topic"], h["errors"]) for h in heard] == [(refusal["topic"], refusal["errors"])]
    watcher.close()
    dev.close()
