"""A real Sensorbase server process on a free port, for tests that need one: `sensorbase serve`
(`start_server`: the CLI, the server's protocol, guards and workers), or the app under uvicorn's
own command (`live_server`: durability)."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

KEY = re.compile(r"(sb_k[0-9a-f]+_[A-Za-z0-9_-]+)")
# The key of the first start's banner (server/logs.py), alone on its line.
KEY_PATTERN = re.compile(r"^    (sb_k[0-9a-f]+_[A-Za-z0-9_-]+)$", re.MULTILINE)


@dataclass
class Server:
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def stderr(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def start_server(data_dir: Path, *extra: str, env: dict[str, str] | None = None) -> Server:
    """`python -m sensorbase.cli serve` on a free port, up and answering /healthz (`env`: more
    environment)."""
    port = free_port()
    log = data_dir / f"serve-{port}.log"
    # No key cache: deleting an organisation must lock its keys out on the very next request
    # (the server forgets a revoked key at once, but not yet the keys of a deleted org).
    env = {**os.environ, "SENSORBASE_RATE_LIMIT": "", "SENSORBASE_KEY_CACHE_S": "0", **(env or {})}
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "sensorbase.cli", "serve", "--port", str(port),
             "--data-dir", str(data_dir / "data"), "--no-access-log", *extra],
            stdout=sink,  # the access log, when a test turns it on
            stderr=sink,
            env=env,
        )  # fmt: skip
    server = Server(f"http://127.0.0.1:{port}", process, log)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the server exited:\n{server.stderr()}")
        try:
            if httpx.get(f"{server.url}/healthz", timeout=1).status_code == 200:
                return server
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    server.stop()
    raise AssertionError(f"the server did not answer within 60 s:\n{server.stderr()}")


@dataclass
class LiveServer:
    url: str
    key: str | None
    process: subprocess.Popen[bytes]
    log: Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def live_server(data_dir: Path, **env: str) -> Iterator[LiveServer]:
    port = free_port()
    log = data_dir.parent / f"server-{port}.log"
    environ = {**os.environ, "SENSORBASE_DATA_DIR": str(data_dir), **env}
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "sensorbase.app:create_app",
                "--factory",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--log-level",
                "warning",
            ],
            env=environ,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the server did not start:\n{log.read_text()}")
            time.sleep(0.05)
        found = KEY.search(log.read_text())
        yield LiveServer(url, found.group(1) if found else None, process, log)
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
