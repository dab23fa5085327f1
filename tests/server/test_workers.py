"""`sensorbase serve --workers N` (server/workers.py): connections handed to the workers in turn,
and a worker that dies replaced."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.live import free_port, start_server


@pytest.mark.slow(9)
def test_serve_workers_take_equal_shares_of_the_connections(tmp_path: Path) -> None:
    """The supervisor accepts and hands connections to the workers in turn: connections opened
    together (a gateway's, a benchmark's) split evenly, which the kernel's hash did only by
    luck; and another server on the same port is refused, not given half the traffic."""
    server = start_server(tmp_path, "--workers", "2")
    clients = [httpx.Client(base_url=server.url) for _ in range(24)]
    try:
        for client in clients:
            assert client.get("/healthz").status_code == 200
        port = int(server.url.rsplit(":", 1)[1])
        assert f"running on http://127.0.0.1:{port} with 2 workers" in server.stderr()
        held = _connections_by_process(server.process.pid, port)
        assert sorted(n for n in held.values() if n) == [12, 12], held
        other = subprocess.run(
            [sys.executable, "-m", "sensorbase.cli", "serve", "--port", str(port),
             "--data-dir", str(tmp_path / "other"), "--workers", "2"],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert other.returncode == 1
        assert f"cannot listen on 127.0.0.1:{port}" in other.stderr
    finally:
        for client in clients:
            client.close()
        server.stop()


@pytest.mark.slow(12)
def test_serve_workers_replace_a_worker_that_dies(tmp_path: Path) -> None:
    """A worker killed after start-up is replaced, and the connections that come after are
    served by the survivor and the replacement, in turn."""
    server = start_server(tmp_path, "--workers", "2")
    try:
        port = int(server.url.rsplit(":", 1)[1])
        with httpx.Client(base_url=server.url) as probe:
            assert probe.get("/healthz").status_code == 200
            [victim] = [pid for pid, n in _connections_by_process(server.process.pid, port).items()
                        if n]  # fmt: skip
        # (It has started: the supervisor hands connections only to started workers.)
        os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while server.stderr().count("Application startup complete") < 3:  # the replacement's
            assert time.monotonic() < deadline, server.stderr()
            time.sleep(0.1)
        assert "starting another" in server.stderr()
        clients = [httpx.Client(base_url=server.url) for _ in range(8)]
        try:
            for client in clients:
                assert client.get("/healthz").status_code == 200
            held = _connections_by_process(server.process.pid, port)
            assert victim not in held
            assert len([n for n in held.values() if n]) == 2, held
        finally:
            for client in clients:
                client.close()
    finally:
        server.stop()


def test_serve_workers_stop_when_a_worker_dies_during_its_start_up(tmp_path: Path) -> None:
    """A worker whose app cannot start (here: no database at the URL) stops the server with an
    error, instead of being replaced by one that would fail the same way, in a loop."""
    unreachable = f"postgresql://postgres@127.0.0.1:{free_port()}/nothing"
    env = {**os.environ, "SENSORBASE_DATABASE_URL": unreachable}
    ended = subprocess.run(
        [sys.executable, "-m", "sensorbase.cli", "serve", "--port", str(free_port()),
         "--data-dir", str(tmp_path / "data"), "--workers", "2"],
        capture_output=True, text=True, timeout=120, env=env,
    )  # fmt: skip
    assert ended.returncode == 1, ended.stderr
    assert "a worker exited during start-up" in ended.stderr
    assert "starting another" not in ended.stderr


def _connections_by_process(parent: int, port: int) -> dict[int, int]:
    """Established connections on local `port`, counted by the child of `parent` holding them."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "01":
                inodes.add(fields[9])
    children = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
    held = {}
    for pid in map(int, children):
        links = []
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            with contextlib.suppress(FileNotFoundError):  # closed meanwhile
                links.append(os.readlink(fd))
        held[pid] = sum(1 for link in links if link[len("socket:[") : -1] in inodes)
    return held
