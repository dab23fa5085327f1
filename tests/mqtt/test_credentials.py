"""Device credentials: keys are the broker's clients, kept in step by Sensorbase through the
dynamic-security plugin; the broker's rules keep each key inside its organisation (and bucket)."""

from __future__ import annotations

import threading
from typing import Any

from tests.mqtt.conftest import Sensorbase, device, wait_for

NOT_AUTHORIZED = 135  # MQTT 5's reason code, in a PUBACK or a SUBACK


def _org(sensorbase: Sensorbase, key: str) -> None:
    with sensorbase.http() as client:
        assert client.post("/v1/orgs", json={"key": key}).status_code == 201
        admin = client.post(f"/v1/orgs/{key}/keys", json={"name": "a", "scopes": ["admin"]})
        assert admin.status_code == 201
    with sensorbase.http(admin.json()["key"]) as client:
        assert client.post("/v1/buckets", json={"key": "farm"}).status_code == 201


def test_a_key_publishes_only_under_its_organisation(sensorbase: Sensorbase) -> None:
    _org(sensorbase, "other")
    theirs = sensorbase.key(["data:write"], org="other")
    ours = device(sensorbase.broker, sensorbase.key(["data:write"]))
    refused = ours.publish("sensorbase/other/farm/intruder/t", "1.5")
    assert refused.value == NOT_AUTHORIZED
    # Nor may it subscribe to the other organisation's topics or its refusals.
    granted: list[Any] = []
    got = threading.Event()

    def subscribed(*args: Any) -> None:
        granted.extend(args[3])
        got.set()

    ours.client.on_subscribe = subscribed
    ours.client.subscribe([("sensorbase/other/#", 1), ("sensorbase/other/$errors", 1)])
    assert got.wait(5)
    assert [g.value for g in granted] == [NOT_AUTHORIZED, NOT_AUTHORIZED]
    # The other organisation's own key writes there; what is stored is its point alone.
    own = device(sensorbase.broker, theirs)
    assert not own.publish("sensorbase/other/farm/dev/t", "2.5").is_failure
    with sensorbase.http() as client:
        admin = client.post("/v1/orgs/other/keys", json={"name": "r", "scopes": ["data:read"]})
    reader = admin.json()["key"]
    found = wait_for(lambda: sensorbase.points("farm", reader), lambda p: "dev/t" in p)
    assert list(found) == ["dev/t"]
    ours.close()
    own.close()


def test_a_bucket_limited_key_publishes_only_in_its_bucket(sensorbase: Sensorbase) -> None:
    with sensorbase.http() as client:
        assert client.post("/v1/buckets", json={"key": "barn"}).status_code == 201
    limited = device(sensorbase.broker, sensorbase.key(["data:write"], bucket="barn"))
    assert limited.publish("sensorbase/default/farm/dev/t", "1.5").value == NOT_AUTHORIZED
    assert not limited.publish("sensorbase/default/barn/dev/t", "2.5").is_failure
    found = wait_for(lambda: sensorbase.points("barn"), lambda p: "dev/t" in p)
    assert [p["value"] for p in found["dev/t"]] == [2.5]
    assert sensorbase.points("farm") == {}
    limited.close()


def test_revoking_a_key_disconnects_its_device_at_once(sensorbase: Sensorbase) -> None:
    key = sensorbase.key(["data:write"])
    dev = device(sensorbase.broker, key)
    with sensorbase.http() as client:
        assert client.delete(f"/v1/keys/{key.split('_')[1]}").status_code == 204
    # The revocation's reply comes after the broker deleted the client, which it disconnects.
    assert dev.disconnected.wait(1)
    dev.close()
    again = device(sensorbase.broker, key)
    assert again.refused and again.refused[0].value == NOT_AUTHORIZED


def test_a_key_revoked_while_the_broker_was_down_is_removed_when_it_is_back(
    sensorbase: Sensorbase,
) -> None:
    key = sensorbase.key(["data:write"])
    kept = sensorbase.key(["data:write"])
    sensorbase.broker.stop()
    with sensorbase.http() as client:
        assert client.delete(f"/v1/keys/{key.split('_')[1]}").status_code == 204
    sensorbase.broker.start()

    def refused() -> bool:
        dev = device(sensorbase.broker, key)
        dev.close()
        return bool(dev.refused)

    wait_for(refused, timeout_s=15)  # Sensorbase reconnects, then removes the stale client
    still = device(sensorbase.broker, kept)
    assert still.refused == []
    still.close()


def test_deleting_an_organisation_or_a_bucket_disconnects_its_devices(
    sensorbase: Sensorbase,
) -> None:
    _org(sensorbase, "other")
    theirs = device(sensorbase.broker, sensorbase.key(["data:write"], org="other"))
    with sensorbase.http() as client:
        assert client.post("/v1/buckets", json={"key": "barn"}).status_code == 201
    limited_key = sensorbase.key(["data:write"], bucket="barn")
    limited = device(sensorbase.broker, limited_key)
    ours = device(sensorbase.broker, sensorbase.key(["data:write"]))
    with sensorbase.http() as client:
        assert client.delete("/v1/buckets/barn").status_code == 204
        assert limited.disconnected.wait(1)  # the key limited to it went with it
        assert client.delete("/v1/orgs/other").status_code == 204
        assert theirs.disconnected.wait(1)
    assert not ours.disconnected.is_set()  # the organisation's own key stays
    assert not ours.publish("sensorbase/default/farm/dev/t", "1.5").is_failure
    again = device(sensorbase.broker, limited_key)
    assert again.refused and again.refused[0].value == NOT_AUTHORIZED
    for dev in (theirs, limited, ours, again):
        dev.close()
