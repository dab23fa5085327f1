"""The peers of `bench.py --peer`: InfluxDB 1.x and VictoriaMetrics, both in one invocation.

Each peer is driven through the shared peer benchmark's own code (`../shared/bench/
influx_bench.py` and `victoria_bench.py`, imported at run time and never copied): its server
start (settings, data directory, loopback port), its line-protocol bodies, its writers, its
wrk script. What this adds is what those scripts do not all measure: the CPU the server
process itself used (utime + stime from /proc/<pid>/stat, as victoria_bench.py reads it) in
both ingest scenarios, per million points, and the load generator's own CPU beside it. Every
body is encoded before the clock starts; the writers then only send prebuilt bytes.

The queries are the ones each script times (InfluxDB: InfluxQL over the dense series;
VictoriaMetrics: min/max/avg/count_over_time over it, summed, and the newest 10,000 points by
/api/v1/export), and the disk figure is each one's own (InfluxDB once fully compacted,
VictoriaMetrics after force_merge).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
import urllib.parse
from collections.abc import Callable
from typing import Any

import common  # ../shared/bench, put on sys.path by bench.py

WRK_SINGLE = ["wrk", "-t2", "-c32"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def influx_aside(prefix: str) -> Any:
    """influx_bench, its influxd moved to a fresh directory and free loopback ports: on a
    shared machine another influxd may hold the script's fixed ones (its /ping would then
    answer for ours)."""
    import influx_bench as ib

    base, port = tempfile.mkdtemp(prefix=prefix), free_port()
    ib.CONF = (
        ib.CONF.replace(ib.BASE, base)
        .replace(f":{ib.PORT}", f":{port}")
        .replace(":18088", f":{free_port()}")
        .replace(":18082", f":{free_port()}")
    )
    ib.BASE, ib.PORT = base, port
    return ib


def victoria_aside(prefix: str) -> Any:
    """victoria_bench, its server moved to a fresh directory and a free loopback port (as
    `influx_aside`: another VictoriaMetrics may hold the script's fixed one)."""
    import victoria_bench as vb

    vb.BASE, vb.PORT = tempfile.mkdtemp(prefix=prefix), free_port()
    return vb


def victoria_version() -> str:
    said = subprocess.run(["victoria-metrics", "-version"], capture_output=True, text=True)
    package = ["dpkg-query", "-W", "-f", "${Version}", "victoria-metrics"]
    return (said.stdout + said.stderr).strip() or subprocess.run(
        package, capture_output=True, text=True
    ).stdout.strip()


def _started(server: Any, log: str) -> None:
    """Refuse to measure a peer whose own process is not the one running."""
    if server.poll() is not None:
        with open(log) as f:
            raise RuntimeError(f"the peer exited at start: {f.read()[-500:]}")


def process_cpu_s(pid: int) -> float:
    """utime + stime of one process (all its threads), seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _per_million(seconds: float, points: float) -> float:
    return seconds / (points / 1e6) if points else float("nan")


def _ingest(
    pid: int, write: Callable[[list[list[bytes]], str], dict[str, Any]], bodies: Any, db: str
) -> dict[str, Any]:
    """One batch ingest run of prebuilt bodies: the writers' figures, the server's CPU and the
    load generator's (this process: its writer threads) per million points."""
    server0, client0 = process_cpu_s(pid), time.process_time()
    out = write(bodies, db)
    server1, client1 = process_cpu_s(pid), time.process_time()
    out["server_cpu_s_per_million_points"] = _per_million(server1 - server0, out["points"])
    out["client_cpu_s_per_million_points"] = _per_million(client1 - client0, out["points"])
    return out


def _single(pid: int, url: str, lua: str, seconds: int, parse: Callable[[str], Any]) -> Any:
    """One wrk run of one-point writes: its figures and the server's CPU per million points
    (one point a request)."""
    server0 = process_cpu_s(pid)
    cmd = [*WRK_SINGLE, f"-d{seconds}s", "-s", lua, url]
    out = parse(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout)
    points = out["rps"] * seconds
    out["server_cpu_s_per_million_points"] = _per_million(process_cpu_s(pid) - server0, points)
    out["server_cpu_us_per_request"] = (process_cpu_s(pid) - server0) / max(1, points) * 1e6
    return out


def _timed(call: Callable[[], Any], n: int) -> tuple[list[float], Any]:
    xs, answer = [], None
    for i in range(n + 2):  # 2 warm-ups, as the peers' scripts do
        started = time.perf_counter()
        answer = call()
        if i >= 2:
            xs.append((time.perf_counter() - started) * 1000)
    return xs, answer


def _summary(result: dict[str, Any]) -> dict[str, Any]:
    ingest, single = result["ingest_fleet"]["runs"], result["single_point_writes"]["runs"]

    def med(xs: list[float]) -> float:
        return statistics.median(xs)

    result["ingest_fleet"]["points_per_s"] = common.summarize([x["points_per_s"] for x in ingest])
    result["ingest_fleet"]["server_cpu_s_per_million_points"] = med(
        [x["server_cpu_s_per_million_points"] for x in ingest]
    )
    result["ingest_fleet"]["client_cpu_s_per_million_points"] = med(
        [x["client_cpu_s_per_million_points"] for x in ingest]
    )
    result["single_point_writes"]["rps"] = common.summarize([x["rps"] for x in single])
    result["single_point_writes"]["server_cpu_s_per_million_points"] = med(
        [x["server_cpu_s_per_million_points"] for x in single]
    )
    return result


def run_influxdb(args: Any) -> dict[str, Any]:
    """InfluxDB 1.x as influx_bench.py starts it, every scenario, with CPU per million points."""
    ib = influx_aside("peer-influxdb-")
    server = ib.start_influxd()
    _started(server, os.path.join(ib.BASE, "influxd.log"))
    result: dict[str, Any] = {"name": "InfluxDB"}
    try:
        result["version"] = subprocess.run(
            ["influxd", "version"], capture_output=True, text=True
        ).stdout.strip()
        print(f"InfluxDB pid {server.pid}: {result['version']}", flush=True)
        runs = []
        for r in range(args.runs):
            db = f"ingest_r{r}"
            ib.q(f"CREATE DATABASE {db}")
            bodies = ib.build_fleet_bodies(args.points, seed=r + 1)
            out = _ingest(server.pid, ib.run_writers, bodies, db)
            out["db"] = db
            runs.append(out)
            print(f"InfluxDB batch ingest run {r}: {out}", flush=True)
            del bodies
            time.sleep(20)  # as influx_bench.py: the cache snapshot settles between runs
        result["ingest_fleet"] = {"runs": runs}
        ib.q("CREATE DATABASE big")
        result["ingest_big_series"] = ib.run_writers(ib.build_big_bodies(), "big")
        ib.q("CREATE DATABASE single")
        lua = os.path.join(ib.BASE, "single.lua")
        with open(lua, "w") as f:
            f.write(ib.WRK_LUA)
        url = f"http://{ib.HOST}:{ib.PORT}/write?db=single&precision=s"
        singles = []
        for r in range(args.runs):
            out = _single(server.pid, url, lua, args.wrk_seconds, ib.parse_wrk)
            singles.append(out)
            print(f"InfluxDB single-point run {r}: {out}", flush=True)
            time.sleep(5)
        result["single_point_writes"] = {"runs": singles}
        dbs = [x["db"] for x in runs] + ["big"]
        settled, waited = ib.wait_settled(dbs, max_wait=240)
        per_db = [ib.disk_report(x["db"], x["points"]) for x in runs]
        per_db.append(ib.disk_report("big", result["ingest_big_series"]["points"]))
        result["disk"] = {"fully_compacted": settled, "waited_s": waited, "per_db": per_db}
        stats = (
            "SELECT mean(value), min(value), max(value), count(value) FROM sensor WHERE id = 'big'"
        )
        latest = "SELECT value FROM sensor WHERE id = 'big' ORDER BY time DESC LIMIT 10000"
        xs, body = _timed(lambda: ib.q(stats, db="big"), args.queries)
        answer = body[:300].decode()
        result["query_agg_1M"] = {"sql": stats, "ms": common.summarize(xs), "response": answer}
        xs, body = _timed(lambda: ib.q(latest, db="big", extra="&epoch=ms"), args.queries)
        result["query_latest_10k"] = {"sql": latest, "ms": common.summarize(xs)}
    finally:
        server.terminate()
        server.wait(timeout=60)
        shutil.rmtree(ib.BASE, ignore_errors=True)
    return _summary(result)


def run_victoria(args: Any) -> dict[str, Any]:
    """VictoriaMetrics as victoria_bench.py starts it, every scenario, with CPU per million
    points (it acknowledges writes before they reach disk: its figures are not durable ones)."""
    import influx_bench as ib

    # influx_bench's writers talk to its module's HOST, PORT and req: pointed at
    # VictoriaMetrics for this peer, and back afterwards (as victoria_bench.py points them).
    vb = victoria_aside("peer-victoria-")
    saved = ib.HOST, ib.PORT, ib.req
    ib.HOST, ib.PORT, ib.req = vb.HOST, vb.PORT, vb.req
    server = vb.start()
    _started(server, os.path.join(vb.BASE, "vm.log"))
    result: dict[str, Any] = {"name": "VictoriaMetrics"}
    try:
        result["version"] = victoria_version()
        print(f"VictoriaMetrics pid {server.pid}: {result['version']}", flush=True)
        runs = []
        for r in range(args.runs):
            bodies = ib.build_fleet_bodies(args.points, seed=r + 1)
            out = _ingest(server.pid, ib.run_writers, bodies, f"ingest_r{r}")
            runs.append(out)
            print(f"VictoriaMetrics batch ingest run {r}: {out}", flush=True)
            del bodies
        result["ingest_fleet"] = {"runs": runs}
        result["ingest_big_series"] = ib.run_writers(ib.build_big_bodies(), "big")
        with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
            f.write(ib.WRK_LUA)
        url = f"http://{vb.HOST}:{vb.PORT}/write?db=single&precision=s"
        singles = []
        for r in range(args.runs):
            out = _single(server.pid, url, f.name, args.wrk_seconds, ib.parse_wrk)
            singles.append(out)
            print(f"VictoriaMetrics single-point run {r}: {out}", flush=True)
        os.unlink(f.name)
        result["single_point_writes"] = {"runs": singles}
        vb.req("GET", "/internal/force_flush")
        time.sleep(2)
        end = common.T0 + common.BIG_POINTS
        selector = 'sensor_value{id="big",db="big"}'

        def stats() -> list[str]:
            values = []
            for fn in ("min_over_time", "max_over_time", "avg_over_time", "count_over_time"):
                query = f"{fn}({selector}[{common.BIG_POINTS}s])"
                qs = urllib.parse.urlencode({"query": query, "time": end, "nocache": 1})
                answer = json.loads(vb.req("GET", f"/api/v1/query?{qs}"))
                values.append(answer["data"]["result"][0]["value"][1])
            return values

        def latest() -> bytes:
            qs = urllib.parse.urlencode({"match[]": selector, "start": end - 10000, "end": end})
            return bytes(vb.req("GET", f"/api/v1/export?{qs}"))

        xs, values = _timed(stats, args.queries)
        result["query_agg_1M"] = {"ms": common.summarize(xs), "response": values}
        xs, body = _timed(latest, args.queries)
        decoded, _ = _timed(lambda: [json.loads(line) for line in latest().splitlines()],
                            args.queries)  # fmt: skip
        result["query_latest_10k"] = {"ms": common.summarize(xs), "response_bytes": len(body),
                                      "ms_decoded": common.summarize(decoded)}  # fmt: skip
        vb.req("GET", "/internal/force_merge")
        time.sleep(20)  # as victoria_bench.py: the merge finishes in the background
        vb.req("GET", "/internal/force_flush")
        points = sum(x["points"] for x in runs) + result["ingest_big_series"]["points"]
        data = common.du_bytes(f"{vb.BASE}/data", allocated=True)
        result["disk"] = {"bytes": data, "points": points, "bytes_per_point": data / points}
    finally:
        server.terminate()
        server.wait(timeout=30)
        ib.HOST, ib.PORT, ib.req = saved
        shutil.rmtree(vb.BASE, ignore_errors=True)
    return _summary(result)


def headline(result: dict[str, Any]) -> dict[str, float]:
    """A peer's figures under bench.py's scenario names."""
    disk = result["disk"]
    if "bytes_per_point" in disk:
        bpp = disk["bytes_per_point"]
    else:  # InfluxDB: per database, after full compaction
        dbs = disk["per_db"]
        bpp = sum(d["data_dir_alloc_bytes"] for d in dbs) / sum(d["points"] for d in dbs)
    fleet = result["ingest_fleet"]
    return {
        "batch ingest (points/s)": fleet["points_per_s"]["median"],
        "batch ingest, server CPU (s per 1M points)": fleet["server_cpu_s_per_million_points"],
        "line-protocol batch ingest (points/s)": fleet["points_per_s"]["median"],
        "line-protocol batch ingest, server CPU (s per 1M points)": fleet[
            "server_cpu_s_per_million_points"
        ],
        "single-point ingest (requests/s)": result["single_point_writes"]["rps"]["median"],
        "single-point ingest, server CPU (s per 1M points)": result["single_point_writes"][
            "server_cpu_s_per_million_points"
        ],
        "stats over 1M points (ms)": result["query_agg_1M"]["ms"]["median"],
        "latest 10,000 points (ms)": result["query_latest_10k"]["ms"]["median"],
        "disk (bytes/point)": bpp,
    }
