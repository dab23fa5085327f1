#!/usr/bin/env python3
"""Alerts: what 1,000 rules cost batch ingest, and how soon a breaking point's webhook arrives.

  .venv/bin/python benchmarks/alerts.py                 # 1M fleet points, 3 runs each way
  .venv/bin/python benchmarks/alerts.py --points 3000000 --runs 3 --samples 200

1. Batch ingest (bench.py's: 4 writers of 5,000-point native requests over the 1,000-series
   fleet) on a fresh server without rules, and on a fresh server with 1,000 rules, one per
   fleet series (`value > 40`, which the fleet's 15..25 never breaks: what a rule costs a write
   that breaks nothing), runs alternated. Printed: points/s and the server's CPU microseconds
   per point (bench.py's `cpu_by_role`: the request path, helpers apart), and the ratio with
   rules / without (the goal: >= 0.8).
2. Acknowledgement to webhook receipt: on the server with the rules, `--samples` one-point
   writes, each breaking the rule of another series (`value = 50`), one at a time; a receiver
   on this machine notes when each delivery arrives. Printed: p50, p99 and max of receipt time
   minus the moment the write's reply was read.

3. The write path's own share, in process: the CPU time of `Engine.observe` (what a write
   does for alerts after its commit) for a 5,000-point fleet request of 250 series under the
   1,000 rules, none broken; per point. This is the whole of what rules add to a write that
   breaks nothing, measured without the noise of a server on a shared machine.

4. Rule changes, in process: the time to create the 1,000 rules of 1. through the native API
   (httpx on the ASGI app, the engine running, a fresh SQLite file or --database-url): wall
   and CPU seconds in all, and milliseconds per rule for the first and the last hundred (a
   change whose cost grew with the number of rules shows there). `--creates-only` runs just
   this. Then a full reload (what another node's change costs each node): a fresh engine's
   first load, and its second (the rules of unchanged rows kept).

Wall-clock figures on a shared 2-core machine move with other load; CPU per point moves less.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
import bench

RULES = 1000
THRESHOLD = 40.0


class Receipts:
    def __init__(self) -> None:
        self.at: dict[str, float] = {}  # source -> when its alert arrived
        self.lock = threading.Lock()
        self.event = threading.Event()

    def serve(self) -> tuple[ThreadingHTTPServer, str]:
        receipts = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                now = time.perf_counter()
                self.send_response(204)
                self.end_headers()
                event = json.loads(body)
                if event.get("event") == "alert.triggered":
                    with receipts.lock:
                        receipts.at.setdefault(event["series"]["source"], now)
                    receipts.event.set()

            def log_message(self, *args: object) -> None:
                pass

        server = ThreadingHTTPServer((bench.HOST, 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return server, f"http://{bench.HOST}:{server.server_address[1]}/hook"


def cpu_us_per_point(before: Any, after: Any, points: int) -> dict[str, float] | None:
    if before is None or after is None:
        return None
    out = {}
    for role in ("server", "helpers"):
        spent = sum(after[role].get(p, 0) - before[role].get(p, 0) for p in after[role])
        out[role] = spent / points * 1e6
    return out


def ingest_run(
    args: argparse.Namespace, bodies: list[list[bytes]], rules: bool, hook: str
) -> dict[str, Any]:
    server = bench.Server(args)
    server.start()
    try:
        bench.checked("POST", server, "/v1/buckets", {"key": "fleet"})
        bench.checked("POST", server, "/v1/buckets", {"key": "elsewhere"})
        if rules or args.same_setup:
            # --same-setup: the run "without" gets the rules too, in a bucket the fleet does
            # not write to: the same server history (1,001 commits, rules loaded), no match.
            bucket = "fleet" if rules else "elsewhere"
            bench.checked(
                "POST",
                server,
                "/v1/webhooks",
                {"url": hook, "events": ["alert.triggered"], "secret": "bench-secret"},
            )
            for s in range(RULES):
                bench.checked("POST", server, "/v1/alerts", {
                    "bucket": bucket, "name": f"hot {s}", "source": f"s{s:04d}",
                    "field": bench.FIELD, "op": ">", "threshold": THRESHOLD, "cooldown_s": 0,
                })  # fmt: skip
        before = server.cpu_by_role()
        result = bench.run_writers(server, bodies, "fleet")
        after = server.cpu_by_role()
        result["cpu_us_per_point"] = cpu_us_per_point(before, after, result["points"])
        cpu = result["cpu_us_per_point"] or {}
        print(f"{'with' if rules else 'without'} {RULES} rules: "
              f"{result['points_per_s']:,.0f} points/s, "
              f"server CPU {cpu.get('server', float('nan')):.2f} us/point "
              f"(helpers {cpu.get('helpers', float('nan')):.2f})", flush=True)  # fmt: skip
        if rules:
            result["latency_ms"] = latency(server, args.samples)
        return result
    finally:
        server.stop()
        server.cleanup()


RECEIPTS = Receipts()


def latency(server: bench.Server, samples: int) -> list[float]:
    found = []
    headers = {**server.headers, "Content-Type": "application/json"}
    t = int(time.time()) - samples  # now-ish: inside the accepted time window
    for k in range(samples):
        source = f"s{k % RULES:04d}"
        body = json.dumps([{"source": source, "field": bench.FIELD, "time": t + k, "value": 50.0}])
        with RECEIPTS.lock:
            RECEIPTS.at.pop(source, None)
        status, data = bench.request(
            "POST", server.base, "/v1/write?bucket=fleet&precision=s", body.encode(), headers
        )
        acked = time.perf_counter()
        if status != 200:
            raise RuntimeError(f"{status} {data[:300]!r}")
        deadline = acked + 10
        while time.perf_counter() < deadline:
            with RECEIPTS.lock:
                if source in RECEIPTS.at:
                    found.append((RECEIPTS.at[source] - acked) * 1000)
                    break
            RECEIPTS.event.wait(0.01)
            RECEIPTS.event.clear()
        else:
            raise RuntimeError(f"no webhook for {source} within 10 s")
    return found


def observe_cost(rounds: int = 500) -> float:
    """CPU microseconds per point of Engine.observe (3. above)."""
    import asyncio

    import numpy as np

    from sensorbase.alerts.engine import Engine
    from sensorbase.alerts.index import RuleIndex
    from sensorbase.alerts.rules import Rule
    from sensorbase.alerts.watch import Watch
    from sensorbase.auth.keys import Principal
    from sensorbase.model import SeriesKey
    from sensorbase.settings import Settings

    engine = Engine(None, None, Settings())  # type: ignore[arg-type]
    rules = [
        Rule(i + 1, 1, 1, "fleet", f"r{i}", "hot", f"s{i:04d}", bench.FIELD, ">", THRESHOLD)
        for i in range(RULES)
    ]
    engine.index = RuleIndex.build(rules, [])
    engine.watch = Watch(engine.index, {})
    engine._wake = asyncio.Event()
    keys = [SeriesKey("fleet", f"s{s:04d}", bench.FIELD) for s in range(0, RULES, 4)]
    ids = np.arange(len(keys), dtype=np.int64) + 1
    per = bench.BATCH // len(keys)
    used = np.tile(np.arange(len(keys), dtype=np.int32), per)
    times = np.repeat(np.arange(per, dtype=np.int64), len(keys))
    values = np.random.default_rng(1).uniform(15, 25, len(used))
    who = Principal("k", 1, ("admin",), None, False)
    started = time.process_time()
    for _ in range(rounds):
        engine.observe(who, keys, ids, used, times, values)
    return (time.process_time() - started) / rounds / len(used) * 1e6


def create_cost(database_url: str | None, rules: int = RULES) -> dict[str, float]:
    """Creating `rules` rules through the API, in process (4. above)."""
    import asyncio
    import tempfile

    import httpx

    from sensorbase.alerts.engine import Engine
    from sensorbase.api.app import build_app
    from sensorbase.services import Services
    from sensorbase.settings import Settings
    from sensorbase.storage import open_store

    async def run(services: Services, token: str) -> dict[str, float]:
        await services.start_background()
        app = build_app(services, manage_lifecycle=False)
        headers = {"Authorization": f"Bearer {token}"}
        transport = httpx.ASGITransport(app=app)
        try:
            async with httpx.AsyncClient(transport=transport, base_url="http://sb") as client:
                made = await client.post("/v1/buckets", json={"key": "fleet"}, headers=headers)
                assert made.status_code == 201, made.text
                each = []
                wall, cpu = time.perf_counter(), time.process_time()
                for s in range(rules):
                    started = time.perf_counter()
                    body = {"bucket": "fleet", "name": f"hot {s}", "source": f"s{s:04d}",
                            "field": bench.FIELD, "op": ">", "threshold": THRESHOLD}  # fmt: skip
                    reply = await client.post("/v1/alerts", json=body, headers=headers)
                    assert reply.status_code == 201, reply.text
                    each.append((time.perf_counter() - started) * 1000)
                wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            reloads = []  # another node's change: a fresh engine's first load, then again
            engine = Engine(services.store, services.committer, services.settings)
            for _ in range(2):
                started = time.process_time()
                engine.load()
                reloads.append((time.process_time() - started) * 1000)
        finally:
            await services.stop_background()
        tenth = max(1, rules // 10)
        return {
            f"creating {rules} rules (wall s)": round(wall, 2),
            f"creating {rules} rules (CPU s)": round(cpu, 2),
            "a rule among the first tenth (ms, median)": round(statistics.median(each[:tenth]), 2),
            "a rule among the last tenth (ms, median)": round(statistics.median(each[-tenth:]), 2),
            f"a full reload of {rules} rules, first (CPU ms)": round(reloads[0], 1),
            f"a full reload of {rules} rules, again (CPU ms)": round(reloads[1], 1),
        }

    with tempfile.TemporaryDirectory() as data_dir:
        settings = Settings(data_dir=Path(data_dir), rate_limit="1000000/second")
        if database_url:
            settings = settings.model_copy(update={"database_url": database_url})
        services = Services(settings, open_store(settings))
        key = services.start()
        assert key is not None, "a fresh database (bootstrap) is needed"
        try:
            return asyncio.run(run(services, key.token))
        finally:
            services.stop()


def _runs(results: list[dict[str, Any]]) -> list[tuple[int, float]]:
    return [
        (round(r["points_per_s"]), round((r["cpu_us_per_point"] or {}).get("server", 0), 3))
        for r in results
    ]


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--points", type=int, default=1_000_000, help="fleet points per ingest run")
    ap.add_argument("--runs", type=int, default=3, help="ingest runs each way (alternated)")
    ap.add_argument("--samples", type=int, default=100, help="ack-to-webhook samples")
    ap.add_argument("--database-url", default=None, help="PostgreSQL instead of SQLite")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument(
        "--same-setup",
        action="store_true",
        help="give the run without rules the same 1,000 rules in another bucket",
    )
    ap.add_argument(
        "--creates-only", action="store_true", help="only 4.: creating the rules in process"
    )
    args = ap.parse_args()
    if args.creates_only:
        print(json.dumps(create_cost(args.database_url), indent=2))
        return
    args.port = None
    args.admin_key = None
    _, hook = RECEIPTS.serve()
    print(f"building the workload ({args.points:,} fleet points x {args.runs} run(s))", flush=True)
    fleets = [bench.fleet_bodies(args.points, seed=r + 1) for r in range(args.runs)]
    runs: dict[bool, list[dict[str, Any]]] = {False: [], True: []}
    for r, bodies in enumerate(fleets):
        for rules in (False, True) if r % 2 == 0 else (True, False):
            print(f"run {r + 1}", end=" ", flush=True)
            runs[rules].append(ingest_run(args, bodies, rules, hook))
    without = statistics.median(r["points_per_s"] for r in runs[False])
    with_rules = statistics.median(r["points_per_s"] for r in runs[True])
    cpu_without = statistics.median(
        (r["cpu_us_per_point"] or {}).get("server", 0) for r in runs[False]
    )
    cpu_with = statistics.median((r["cpu_us_per_point"] or {}).get("server", 0) for r in runs[True])
    latencies = sorted(x for r in runs[True] for x in r["latency_ms"])
    summary = {
        "runs without rules (points/s, server CPU us/point)": _runs(runs[False]),
        f"runs with {RULES} rules (points/s, server CPU us/point)": _runs(runs[True]),
        "batch ingest without rules (points/s)": round(without),
        f"batch ingest with {RULES} rules (points/s)": round(with_rules),
        "ratio (with / without; goal >= 0.8)": round(with_rules / without, 3),
        "server CPU without rules (us/point)": round(cpu_without, 3),
        f"server CPU with {RULES} rules (us/point)": round(cpu_with, 3),
        "CPU ratio (without / with)": round(cpu_without / cpu_with, 3) if cpu_with else None,
        "ack -> webhook p50 (ms)": round(latencies[len(latencies) // 2], 1),
        "ack -> webhook p99 (ms)": round(
            latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))], 1
        ),
        "ack -> webhook max (ms)": round(latencies[-1], 1),
        "samples": len(latencies),
        f"Engine.observe with {RULES} rules, in process (CPU us/point)": round(observe_cost(), 3),
        **create_cost(args.database_url),
    }
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
