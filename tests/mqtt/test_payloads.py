"""Every native payload shape, published by a real device (paho and mosquitto_pub) through a
real broker into a real `sensorbase serve`, then read back through the query API."""

from __future__ import annotations

import json
import subprocess

from tests.mqtt.conftest import Sensorbase, device, wait_for

T0 = 1_795_254_000  # 2026-11-21T09:40:00Z (seconds: SENSORBASE_MQTT_TIME_PRECISION=s)


def test_native_payload_shapes(sensorbase: Sensorbase) -> None:
    key = sensorbase.key(["data:write"])
    dev = device(sensorbase.broker, key)
    base = "sensorbase/default/farm"
    shapes = [
        (
            f"{base}/list",
            [
                {"field": "a", "value": 1.0, "time": T0},
                {"field": "a", "value": 2.0, "time": T0 + 1},
            ],
        ),
        (f"{base}/body", {"points": [{"field": "b", "value": 3.0, "time": T0}]}),
        (f"{base}/one", {"field": "c", "value": 4.0, "time": "2026-11-21T10:00:00Z"}),
        (f"{base}/multi", {"fields": {"d": 5.0, "e": 6.0}, "time": T0}),
        (f"{base}/plain", {"f": 7.0, "g": 8.0}),
        (f"{base}/topicfield/h", {"value": 9.0, "time": T0}),
        (f"{base}/topicfield/i", [{"value": 10.0, "time": T0}, {"value": 11.0, "time": T0 + 1}]),
    ]
    for topic, body in shapes:
        assert not dev.publish(topic, json.dumps(body)).is_failure
    dev.publish(f"{base}/bare/j", "12.5")
    # mosquitto_pub, as a shell script on a gateway would send it
    key_id = key.split("_")[1]
    subprocess.run(
        ["mosquitto_pub", "-p", str(sensorbase.broker.port), "-u", key_id, "-P", key,
         "-q", "1", "-t", f"{base}/shell/k", "-m", "13.5"],
        check=True,
    )  # fmt: skip
    dev.close()
    expected = {"list/a", "body/b", "one/c", "multi/d", "multi/e", "plain/f", "plain/g",
                "topicfield/h", "topicfield/i", "bare/j", "shell/k"}  # fmt: skip
    found = wait_for(lambda: sensorbase.points("farm"), lambda p: set(p) == expected)
    assert [p["value"] for p in found["list/a"]] == [1.0, 2.0]
    assert found["list/a"][0]["time"] == "2026-11-21T09:40:00.000000Z"
    assert [p["value"] for p in found["body/b"]] == [3.0]
    assert found["one/c"] == [{"time": "2026-11-21T10:00:00.000000Z", "value": 4.0}]
    assert (found["multi/d"][0]["value"], found["multi/e"][0]["value"]) == (5.0, 6.0)
    assert (found["plain/f"][0]["value"], found["plain/g"][0]["value"]) == (7.0, 8.0)
    assert [p["value"] for p in found["topicfield/h"]] == [9.0]
    assert [p["value"] for p in found["topicfield/i"]] == [10.0, 11.0]
    assert [p["value"] for p in found["bare/j"]] == [12.5]
    assert [p["value"] for p in found["shell/k"]] == [13.5]


def test_vendor_bodies_as_their_dialects_decode_them(sensorbase: Sensorbase) -> None:
    """A device moving from dakkio's or DiagRAMS's HTTP API keeps its payload."""
    with sensorbase.http() as client:
        made = client.post("/v1/buckets/farm/sources", json={"key": "boiler"})
        assert made.status_code == 201, made.text
    dev = device(sensorbase.broker, sensorbase.key(["data:write"]))
    one = {
        "bucketId": "farm",
        "dataSourceId": "boiler",
        "timestamp": "2026-11-21T10:00:00Z",
        "values": {"temperature": 22.5, "humidity": 65},
    }
    batch = {
        "bucketId": "farm",
        "dataPoints": [
            {
                "dataSourceId": "boiler",
                "timestamp": "2026-11-21T10:01:00Z",
                "values": {"temperature": 23.0},
            }
        ],
    }
    push = [{"sensorId": "7", "date": "2026-11-21T10:00:00.000Z", "value": 19.9, "valueName": "t"}]
    for topic, body in [
        ("sensorbase/default/farm/boiler/~dakkio", one),
        ("sensorbase/default/farm/boiler/~dakkio", batch),
        ("sensorbase/default/farm/gateway/~diagrams", push),
    ]:
        assert not dev.publish(topic, json.dumps(body)).is_failure
    # dakkio's own refusals: a bucketId other than the topic's, an unknown data source
    assert not dev.publish(
        "sensorbase/default/farm/boiler/~dakkio", json.dumps({**one, "bucketId": "barn"})
    ).is_failure
    assert not dev.publish(
        "sensorbase/default/farm/x/~dakkio", json.dumps({**one, "dataSourceId": "nope"})
    ).is_failure
    expected = {"boiler/temperature", "boiler/humidity", "7/t"}
    found = wait_for(lambda: sensorbase.points("farm"), lambda p: set(p) == expected)
    assert [p["value"] for p in found["boiler/temperature"]] == [22.5, 23.0]
    assert [p["value"] for p in found["7/t"]] == [19.9]
    with sensorbase.http() as client:
        errors = wait_for(
            lambda: client.get("/v1/mqtt/errors").json()["errors"], lambda e: len(e) == 2
        )
    reasons = sorted(json.dumps(e) for e in errors)
    assert any("bucketId" in r for r in reasons)
    assert any("nope" in r or "not found" in r for r in reasons)
    dev.close()


def test_databoom_datacooee_and_madevo_bodies(sensorbase: Sensorbase) -> None:
    """Each body as its vendor's HTTP API takes it, decoded by that dialect's own decoder."""
    with sensorbase.http() as client:
        for source in ("boiler", "sen42"):
            made = client.post("/v1/buckets/farm/sources", json={"key": source})
            assert made.status_code == 201, made.text
    dev = device(sensorbase.broker, sensorbase.key(["data:write"]))
    push = {  # Databoom: the device token is a source of the topic's bucket
        "device": "boiler",
        "date": "2026-11-21T10:00:00.000+0000",
        "signals": [{"name": "t", "value": 21.5}],
    }
    reading = {  # Datacooee: the topic's source level is the input
        "data": {
            "type": "SensorData",
            "id": "null",
            "attributes": {"value": "12.5", "timestamp": "2026-11-21T10:00:00.000Z"},
            "relationships": {"sensor": {"data": {"type": "Sensor", "id": "sen42"}}},
        }
    }
    insert = {  # Madevo: the data source is the topic's bucket
        "datasource_id": "farm",
        "data": [{"timestamp": "2026-11-21T10:00:00Z", "metric": "temperature", "value": 22.5}],
    }
    base = "sensorbase/default/farm"
    for topic, body in [
        (f"{base}/gw/~databoom", push),
        (f"{base}/sen42/~datacooee", reading),
        (f"{base}/gw/~madevo", insert),
        # their own refusals: an unknown device, another data source than the topic's bucket
        (f"{base}/gw/~databoom", {**push, "device": "nope"}),
        (f"{base}/gw/~madevo", {**insert, "datasource_id": "barn"}),
    ]:
        assert not dev.publish(topic, json.dumps(body)).is_failure
    dev.close()
    found = wait_for(lambda: sensorbase.points("farm"), lambda p: len(p) == 3)
    assert found["boiler/t"] == [{"time": "2026-11-21T10:00:00.000000Z", "value": 21.5}]
    assert [p["value"] for p in found["sen42/value"]] == [12.5]
    (madevo,) = [
        points for name, points in found.items() if name not in ("boiler/t", "sen42/value")
    ]
    assert madevo == [{"time": "2026-11-21T10:00:00.000000Z", "value": 22.5}]
    with sensorbase.http() as client:
        errors = wait_for(
            lambda: client.get("/v1/mqtt/errors").json()["errors"], lambda e: len(e) == 2
        )
    reasons = " ".join(json.dumps(e) for e in errors)
    assert "nope" in reasons and "datasource_id" in reasons
