"""Delivery: a message the broker has is stored exactly once, whatever happens to Sensorbase
(SIGKILL mid-stream) or to the broker (a restart)."""

from __future__ import annotations

import json
import threading

from tests.mqtt.conftest import Sensorbase, device, wait_for

T0 = 1_795_254_000
POINTS_PER_MESSAGE = 5


def _message(publisher: int, n: int) -> str:
    """Message n of a publisher: points at distinct seconds, valued by their second."""
    first = T0 + (publisher * 100_000 + n) * POINTS_PER_MESSAGE
    return json.dumps(
        [
            {"field": "v", "value": float(t), "time": t}
            for t in range(first, first + POINTS_PER_MESSAGE)
        ]
    )


def _expected(publishers: int, messages: range) -> dict[str, list[float]]:
    return {
        f"dev{p}/v": [
            float(t)
            for n in messages
            for t in range(
                T0 + (p * 100_000 + n) * POINTS_PER_MESSAGE,
                T0 + (p * 100_000 + n + 1) * POINTS_PER_MESSAGE,
            )
        ]
        for p in range(publishers)
    }


def _values(sensorbase: Sensorbase) -> dict[str, list[float]]:
    return {k: [p["value"] for p in v] for k, v in sensorbase.points("farm").items()}


def test_sigkill_of_sensorbase_loses_and_doubles_nothing(sensorbase: Sensorbase) -> None:
    key = sensorbase.key(["data:write"])
    publishers, messages = 3, 300
    started = threading.Barrier(publishers + 1)
    failures: list[BaseException] = []

    def publish(p: int) -> None:
        try:
            dev = device(sensorbase.broker, key)
            started.wait()
            for n in range(messages):  # each waits for the broker's PUBACK: the broker has it
                dev.publish(f"sensorbase/default/farm/dev{p}", _message(p, n), timeout_s=10)
            dev.close()
        except BaseException as exc:  # (reported by the test's thread)
            failures.append(exc)

    threads = [threading.Thread(target=publish, args=(p,)) for p in range(publishers)]
    for t in threads:
        t.start()
    started.wait()
    # Killed while messages are being written and acknowledged, not before the first.
    wait_for(lambda: _values(sensorbase), lambda v: sum(map(len, v.values())) >= 200)
    sensorbase.server.process.kill()
    sensorbase.server.process.wait()
    sensorbase.restart()
    for t in threads:
        t.join()
    assert failures == []
    expected = _expected(publishers, range(messages))
    found = wait_for(lambda: _values(sensorbase), lambda v: v == expected, timeout_s=30)
    assert found == expected  # every point once, none lost


def test_broker_restart_sensorbase_reconnects_and_resumes(sensorbase: Sensorbase) -> None:
    key = sensorbase.key(["data:write"])
    dev = device(sensorbase.broker, key)
    for n in range(20):
        dev.publish("sensorbase/default/farm/dev0", _message(0, n))
    dev.close()
    wait_for(lambda: _values(sensorbase), lambda v: v == _expected(1, range(20)))
    sensorbase.broker.restart()
    # Published while Sensorbase is still away: the broker keeps them in its session.
    dev = device(sensorbase.broker, key)
    for n in range(20, 40):
        dev.publish("sensorbase/default/farm/dev0", _message(0, n))
    dev.close()
    wait_for(lambda: _values(sensorbase), lambda v: v == _expected(1, range(40)), timeout_s=20)
