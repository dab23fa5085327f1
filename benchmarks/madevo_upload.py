"""Madevo /api/v1 upload and import of a large CSV: the server's memory above idle, and its CPU.

A real `sensorbase serve` (SQLite, one process) in a temporary directory; a user signs in, a
CSV of `--mb` MB (34-byte rows: time, device, temperature, zone) is generated on the fly and
streamed as multipart/form-data to `POST /api/v1/secure/datasource/upload`; with `--import`,
`PUT /api/v1/secure/datasource` then imports it and the progress is polled until done. The
server's resident memory (VmRSS of /proc/<pid>/status) is sampled every 20 ms; the figures
are its peak above idle per phase, and the server's CPU seconds (utime + stime).

    .venv/bin/python benchmarks/madevo_upload.py --mb 100 --import   # the suite's claim, larger
    .venv/bin/python benchmarks/madevo_upload.py --mb 1024           # the issue's 1 GiB upload
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

KEY = re.compile(r"^    (sb_k[0-9a-f]+_[A-Za-z0-9_-]+)$", re.MULTILINE)
ROW = b"2025-01-01 10:00:00,D1,21.5,north\n"
TICK = os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


class Sampler:
    """The peak RSS of a process while a phase runs."""

    def __init__(self, pid: int) -> None:
        self.pid, self.peak, self._stop = pid, 0.0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, rss_mb(self.pid))

    def __enter__(self) -> Sampler:
        self.peak = rss_mb(self.pid)
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


def rows_of(mb: int) -> Iterator[bytes]:
    """A CSV of about `mb` MB in 1 MiB chunks, rows one second apart across 8 devices."""
    yield b"time,device,temperature,zone\n"
    per_chunk = (1024 * 1024) // len(ROW)
    start = 1_735_689_600
    n = 0
    for _ in range(mb):
        lines = []
        for _ in range(per_chunk):
            stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(start + n // 8))
            lines.append(f"{stamp},D{n % 8},{20 + n % 100 / 10},north\n")
            n += 1
        yield "".join(lines).encode()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mb", type=int, default=100, help="size of the CSV in MiB")
    parser.add_argument("--import", dest="do_import", action="store_true", help="import it too")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        log = Path(tmp) / "serve.log"
        env = {**os.environ, "SENSORBASE_RATE_LIMIT": "", "SENSORBASE_BODY_TIMEOUT_S": "0"}
        with log.open("wb") as sink:
            server = subprocess.Popen(
                [sys.executable, "-m", "sensorbase.cli", "serve", "--port", str(port),
                 "--data-dir", f"{tmp}/data", "--no-access-log"],
                stdout=sink, stderr=sink, env=env,
            )  # fmt: skip
        url = f"http://127.0.0.1:{port}"
        try:
            figures = run(url, server.pid, log, args.mb, args.do_import)
        finally:
            server.send_signal(signal.SIGINT)
            server.wait(30)
    print(json.dumps(figures, indent=2))


def run(url: str, pid: int, log: Path, mb: int, do_import: bool) -> dict[str, object]:
    for _ in range(600):
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            time.sleep(0.1)
    admin = KEY.findall(log.read_text())[0]
    body = {"email": "bench@example.com", "password": "correct horse", "role": "admin"}
    httpx.post(f"{url}/v1/users", json=body, headers={"Authorization": f"Bearer {admin}"})
    reply = httpx.post(f"{url}/api/v1/login", json=body)
    headers = {"Authorization": f"Bearer {reply.json()['token']}"}
    httpx.get(f"{url}/api/v1/secure/datasources", headers=headers)  # warm the routes up
    time.sleep(0.5)
    idle = rss_mb(pid)
    boundary = "bench-boundary"

    def multipart() -> Iterator[bytes]:
        yield (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.csv"'
            "\r\nContent-Type: text/csv\r\n\r\n"
        ).encode()
        yield from rows_of(mb)
        yield f"\r\n--{boundary}--\r\n".encode()

    cpu0, t0 = cpu_s(pid), time.monotonic()
    with Sampler(pid) as upload:
        reply = httpx.post(
            f"{url}/api/v1/secure/datasource/upload",
            content=multipart(),
            headers={**headers, "Content-Type": f"multipart/form-data; boundary={boundary}"},
            timeout=None,
        )
    assert reply.status_code == 200, reply.text
    uploaded = reply.json()
    figures: dict[str, object] = {
        "bytes": uploaded["size"],
        "idle_rss_mb": round(idle, 1),
        "upload_peak_rss_above_idle_mb": round(upload.peak - idle, 1),
        "upload_wall_s": round(time.monotonic() - t0, 2),
        "upload_server_cpu_s": round(cpu_s(pid) - cpu0, 2),
    }
    if not do_import:
        return figures
    create = {
        "upload_id": uploaded["upload_id"], "name": "bench", "timefield": "time",
        "metafield": "device", "timeformat": "%Y-%m-%d %H:%M:%S",
    }  # fmt: skip
    cpu0, t0 = cpu_s(pid), time.monotonic()
    with Sampler(pid) as imported:
        reply = httpx.put(f"{url}/api/v1/secure/datasource", json=create, headers=headers)
        source = reply.json()["data"]["id"]
        while True:
            time.sleep(0.5)
            found = httpx.get(f"{url}/api/v1/secure/datasource?id={source}", headers=headers)
            progress = found.json()["data"]["import"]
            if progress["status"] not in ("queued", "running"):
                break
    wall = time.monotonic() - t0
    figures.update(
        import_status=progress["status"],
        rows_inserted=progress["rows_inserted"],
        rows_skipped=progress["rows_skipped"],
        import_peak_rss_above_idle_mb=round(imported.peak - idle, 1),
        import_wall_s=round(wall, 1),
        import_server_cpu_s=round(cpu_s(pid) - cpu0, 1),
        import_rows_per_cpu_s=round(progress["rows_inserted"] / max(cpu_s(pid) - cpu0, 1e-9)),
    )
    return figures


if __name__ == "__main__":
    main()
