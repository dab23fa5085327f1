"""Starting `sensorbase serve` (server/run.py, listener.py, logs.py), as a user does: the first
start's key shown once, in a banner; no key spent by a start that cannot listen."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.live import KEY_PATTERN, start_server


@pytest.mark.slow(8)
def test_serve_shows_the_bootstrap_key_once_prominently(tmp_path: Path) -> None:
    first = start_server(tmp_path)
    try:
        log = first.stderr()
        assert "Sensorbase first start" in log
        assert "This key is shown ONCE" in log
        [key] = KEY_PATTERN.findall(log)
        assert f"export SENSORBASE_KEY={key}" in log
        who = httpx.get(f"{first.url}/v1/whoami", headers={"Authorization": f"Bearer {key}"})
        assert who.json()["server_admin"] is True
    finally:
        first.stop()
    # The second start of the same data directory, with two workers, creates no other key.
    again = start_server(tmp_path, "--workers", "2")
    try:
        assert "first start" not in again.stderr()
        assert not KEY_PATTERN.findall(again.stderr())
        who = httpx.get(f"{again.url}/v1/whoami", headers={"Authorization": f"Bearer {key}"})
        assert who.status_code == 200
    finally:
        again.stop()


@pytest.mark.slow(6)
def test_a_first_start_on_a_busy_port_spends_no_key(tmp_path: Path) -> None:
    """Issue 19: the one-time key was printed, then the start died on the busy port."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        failed = subprocess.run(
            [sys.executable, "-m", "sensorbase.cli", "serve", "--port", str(port),
             "--data-dir", str(tmp_path / "data"), "--no-access-log"],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    assert failed.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in failed.stderr
    assert not KEY_PATTERN.findall(failed.stdout + failed.stderr)
    assert not (tmp_path / "data" / "sensorbase.db").exists()  # nothing made, nothing spent
    started = start_server(tmp_path)  # (the same data directory, a free port)
    try:
        [key] = KEY_PATTERN.findall(started.stderr())  # the first start's key, shown now
        who = httpx.get(f"{started.url}/v1/whoami", headers={"Authorization": f"Bearer {key}"})
        assert who.json()["server_admin"] is True
    finally:
        started.stop()
