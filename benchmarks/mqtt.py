"""MQTT ingest against HTTP batch ingest, side by side in one run.

Starts a Mosquitto broker of its own (a free port, the dynamic-security plugin) and one
`sensorbase serve` process (durability `full`) consuming from it, then measures:

- HTTP batch: POST /v1/write with 5,000 points per request, 4 concurrent writers (bench.py's
  batch scenario), and with 100 points per request;
- MQTT at QoS 1 with 100 points per message and with 1 point per message, 4 publisher
  processes (paho), each keeping up to 100 messages in flight.

An MQTT run ends when Sensorbase has committed every message (its /metrics count of stored
messages), i.e. when the last PUBACK could go out, not when the broker took them. Figures are
printed with the server process's CPU per point (user + system, its helper processes
excluded: the same for both); the ratio of MQTT (100 points per message) to HTTP batch ingest
is the issue's goal (>= 0.5x). The server trusts key lookups for `--key-cache-s` (its default,
1 s; the test fixtures' 0 makes every message look its organisation up).

    .venv/bin/python benchmarks/mqtt.py [--points 400000] [--single-messages 20000]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import re
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
from paho.mqtt import client as paho
from paho.mqtt.enums import CallbackAPIVersion

sys.path.insert(0, str(Path(__file__).parents[1]))
from tests.live import KEY_PATTERN, start_server
from tests.mqtt.mosquitto import Broker

T0 = 1_600_000_000
WRITERS = 4


def _points(writer: int, first: int, count: int) -> list[dict[str, Any]]:
    return [
        {"field": "v", "value": float(i), "time": T0 + writer * 10_000_000 + first + i}
        for i in range(count)
    ]


def http_run(url: str, key: str, bucket: str, total: int, per_request: int) -> float:
    per_writer = total // WRITERS
    bodies = [
        [
            json.dumps({"bucket": bucket, "source": f"w{w}", "points": _points(w, n, per_request)})
            for n in range(0, per_writer, per_request)
        ]
        for w in range(WRITERS)
    ]

    def write(w: int) -> None:
        headers = {"Authorization": f"Bearer {key}", "content-type": "application/json"}
        with httpx.Client(base_url=url, headers=headers, timeout=60) as client:
            for body in bodies[w]:
                reply = client.post("/v1/write", params={"precision": "s"}, content=body)
                assert reply.status_code == 200, reply.text

    started = time.perf_counter()
    with ThreadPoolExecutor(WRITERS) as pool:
        list(pool.map(write, range(WRITERS)))
    return (per_writer * WRITERS) / (time.perf_counter() - started)


def _publisher(port: int, key: str, topic: str, payloads: list[bytes], go: Any) -> None:
    client = paho.Client(CallbackAPIVersion.VERSION2, protocol=paho.MQTTv5)
    client.username_pw_set(key.split("_")[1], key)
    client.max_inflight_messages_set(100)
    client.max_queued_messages_set(0)
    acked = threading.Semaphore(0)
    client.on_publish = lambda *_: acked.release()
    client.connect("127.0.0.1", port)
    client.loop_start()
    go.wait()
    for payload in payloads:
        client.publish(topic, payload, qos=1)
    for _ in payloads:
        acked.acquire()
    client.disconnect()
    client.loop_stop()


def stored_messages(url: str) -> float:
    text = httpx.get(f"{url}/metrics", timeout=10).text
    if re.search(r'^sensorbase_mqtt_messages_total\{outcome="refused"\} [1-9]', text, re.M):
        raise SystemExit("Sensorbase refused messages: see GET /v1/mqtt/errors")
    found = re.search(r'^sensorbase_mqtt_messages_total\{outcome="stored"\} (\S+)$', text, re.M)
    return float(found.group(1)) if found else 0.0


def mqtt_run(url: str, port: int, key: str, bucket: str, total: int, per_message: int) -> float:
    per_writer = total // WRITERS
    messages = per_writer // per_message
    before = stored_messages(url)
    go = multiprocessing.get_context("fork").Event()
    processes = []
    for w in range(WRITERS):
        payloads = [
            json.dumps(_points(w + 10, n * per_message, per_message)).encode()
            for n in range(messages)
        ]
        topic = f"sensorbase/default/{bucket}/p{w}"
        process = multiprocessing.get_context("fork").Process(
            target=_publisher, args=(port, key, topic, payloads, go)
        )
        process.start()
        processes.append(process)
    time.sleep(1)  # every publisher connected
    started = time.perf_counter()
    go.set()
    goal = before + messages * WRITERS
    deadline = time.monotonic() + 600
    while (done := stored_messages(url)) < goal:
        if time.monotonic() > deadline:
            raise SystemExit(f"only {done - before:,.0f} of {goal - before:,.0f} messages stored")
        time.sleep(0.05)
    elapsed = time.perf_counter() - started
    for process in processes:
        process.join()
    return messages * WRITERS * per_message / elapsed


def cpu_s(pid: int) -> float:
    """CPU seconds (user + system) the process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--points", type=int, default=400_000, help="points per batch scenario")
    parser.add_argument("--single-messages", type=int, default=20_000, help="1-point messages")
    parser.add_argument("--key-cache-s", default="1", help="the server's SENSORBASE_KEY_CACHE_S")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="sb-mqtt-bench-") as tmp:
        home = Path(tmp)
        broker = Broker(home / "broker").start()
        env = broker.settings_env() | {"SENSORBASE_KEY_CACHE_S": args.key_cache_s}
        server = start_server(home, env=env)
        try:
            found = KEY_PATTERN.search(server.stderr())
            assert found is not None, server.stderr()
            admin = found.group(1)
            headers = {"Authorization": f"Bearer {admin}"}
            with httpx.Client(base_url=server.url, headers=headers) as client:
                for bucket in ("http", "http100", "mqtt", "mqtt1"):
                    assert client.post("/v1/buckets", json={"key": bucket}).status_code == 201
                made = client.post("/v1/keys", json={"name": "bench", "scopes": ["data:write"]})
                device_key = made.json()["key"]
            runs = {
                "http_batch_5000": lambda: http_run(server.url, admin, "http", args.points, 5000),
                "http_batch_100": lambda: http_run(server.url, admin, "http100", args.points, 100),
                "mqtt_qos1_100": lambda: mqtt_run(
                    server.url, broker.port, device_key, "mqtt", args.points, 100
                ),
                "mqtt_qos1_1": lambda: mqtt_run(
                    server.url, broker.port, device_key, "mqtt1", args.single_messages, 1
                ),
            }
            points = {
                "http_batch_5000": args.points,
                "http_batch_100": args.points,
                "mqtt_qos1_100": args.points,
                "mqtt_qos1_1": args.single_messages,
            }
            results, cpu = {}, {}
            for name, run in runs.items():
                before = cpu_s(server.process.pid)
                results[name] = run()
                cpu[name] = (cpu_s(server.process.pid) - before) / points[name] * 1e6
                print(
                    f"{name:>16}: {results[name]:>12,.0f} points/s,"
                    f" server CPU {cpu[name]:>7.1f} us/point",
                    flush=True,
                )
        finally:
            server.stop()
            broker.stop()
    ratio = results["mqtt_qos1_100"] / results["http_batch_5000"]
    print(f"MQTT (100 points/message) / HTTP batch (5,000 points/request): {ratio:.2f}x")
    ratio = results["mqtt_qos1_100"] / results["http_batch_100"]
    print(f"MQTT (100 points/message) / HTTP (100 points/request): {ratio:.2f}x")
    print(json.dumps({k: round(v) for k, v in results.items()}))
    print(json.dumps({f"{k}_cpu_us": round(v, 1) for k, v in cpu.items()}))


if __name__ == "__main__":
    main()
