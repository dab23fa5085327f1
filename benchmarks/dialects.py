#!/usr/bin/env python3
"""One point a request through each dialect's ingest route: the server's CPU a request.

A device of each vendor's kind sends its readings one request at a time: the native write,
dakkio's `POST /api/data`, Databoom's push, Datacooee's upload and DiagRAMS's push, each in
its own body shape, sequentially on one connection to a fresh server (SQLite, durable
acknowledgements), `--requests` of each after 50 warm-ups. The figure is the server
process's CPU (utime + stime of its tree, without the storage's helpers: bench.Server's
cpu_by_role) divided by the requests: what a route's own path costs beside the native one.

    .venv/bin/python benchmarks/dialects.py [--requests 1000]
    PYTHONPATH=../other/src .venv/bin/python benchmarks/dialects.py   # a revision before
"""

from __future__ import annotations

import argparse
import http.client
import json
import time
from collections.abc import Callable

import bench

BASE_S = 1_780_000_000


def _iso(i: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(BASE_S + i)) + ".000Z"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=1000)
    args = parser.parse_args()
    server = bench.Server(
        argparse.Namespace(workers=1, database_url=None, port=None, admin_key=None, keep=False)
    )
    server.start()
    try:
        bench.checked("POST", server, "/v1/buckets", {"key": "ab"})
        sources = [
            {"source": s, "field": "temperature", "value": 1} for s in ("dev1", "6541469", "sen1")
        ]
        bench.checked("POST", server, "/v1/write?bucket=ab", sources)
        key = server.headers["Authorization"].split()[1]
        conn = http.client.HTTPConnection(bench.HOST, server.port, timeout=60)

        def run(
            name: str, path: str, headers: dict[str, str], body: Callable[[int], object]
        ) -> None:
            def send(i: int) -> None:
                conn.request("POST", path, json.dumps(body(i)).encode(), headers)
                reply = conn.getresponse()
                text = reply.read()
                if reply.status >= 300:
                    raise RuntimeError(f"{name}: {reply.status} {text[:300]!r}")

            for i in range(50):
                send(i)
            before = sum((server.cpu_by_role() or {}).get("server", {}).values())
            for i in range(50, 50 + args.requests):
                send(i)
            spent = sum((server.cpu_by_role() or {}).get("server", {}).values()) - before
            print(f"{name:10s} {spent / args.requests * 1e6:6.0f} us server CPU a request",
                  flush=True)  # fmt: skip

        bearer = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        run(
            "native",
            "/v1/write?bucket=ab&precision=s",
            bearer,
            lambda i: [{"source": "s", "field": "v", "value": i, "time": BASE_S + i}],
        )
        run(
            "dakkio",
            "/api/data",
            {"X-API-Key": key, "Content-Type": "application/json"},
            lambda i: {
                "bucketId": "ab",
                "dataSourceId": "dev1",
                "values": {"temperature": i},
                "timestamp": _iso(i),
            },
        )
        run(
            "databoom",
            "/v1/signals/push",
            bearer,
            lambda i: {
                "device": "6541469",
                "date": _iso(i),
                "signals": [{"name": "temperature", "value": i}],
            },
        )
        run(
            "datacooee",
            "/api/external/v1/inputs/sen1/inputdata/",
            {
                "organization-id": "default",
                "organization-api-key": key,
                "Content-Type": "application/vnd.api+json",
            },
            lambda i: {
                "data": {"type": "SensorData", "attributes": {"value": i, "timestamp": _iso(i)}}
            },
        )
        run("diagrams", "/v0/organisations/default/data/ab", bearer,
            lambda i: [{"sensorId": "d1", "date": _iso(i), "value": i}])  # fmt: skip
    finally:
        server.stop()
        server.cleanup()


if __name__ == "__main__":
    main()
