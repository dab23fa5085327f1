"""The client through a server restart, rate limits (429 with Retry-After), and a client killed
with `kill -9` whose buffer a new client replays: every point stored exactly once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from sensorbase.client import Client, Point, RetryPolicy, TransportError
from tests import live as live_module
from tests.client.conftest import Live, server_key
from tests.live import Server, free_port, live_server, start_server

BASE = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)


def make_bucket(url: str, key: str, name: str) -> None:
    reply = httpx.post(
        f"{url}/v1/buckets", json={"key": name}, headers={"Authorization": f"Bearer {key}"}
    )
    assert reply.status_code == 201, reply.text


def restart(data_dir: Path, port: str, monkeypatch: pytest.MonkeyPatch) -> Server:
    """The server again on the port its clients know."""
    monkeypatch.setattr(live_module, "free_port", lambda: int(port))
    return start_server(data_dir)


def times_stored(url: str, key: str, bucket: str) -> list[float]:
    with Client(url, key=key, bucket=bucket) as sb:
        return [r.value for r in sb.query(source="gw", field="n", start=BASE, limit=10_000)]


@pytest.mark.slow(5)
def test_writes_go_on_through_a_server_restart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = start_server(tmp_path)
    key = server_key(server)
    make_bucket(server.url, key, "farm")
    port = server.url.rsplit(":", 1)[1]
    sb = Client(server.url, key=key, bucket="farm", batch_size=50, flush_interval_s=0.1,
                retry=RetryPolicy(base_delay_s=0.05, max_delay_s=0.5))  # fmt: skip
    try:
        sb.write([Point("gw", "n", float(i), BASE + timedelta(seconds=i)) for i in range(100)])
        sb.flush()
        server.stop()
        # Down: written points wait, and a direct request fails once its tries are spent.
        sb.write([Point("gw", "n", float(i), BASE + timedelta(seconds=i)) for i in range(100, 300)])
        with pytest.raises(TransportError):
            sb.query(source="gw", last="1d")
        assert sb.pending() == 200
        server = restart(tmp_path, port, monkeypatch)
        sb.flush(timeout_s=60)
    finally:
        sb.close()
    assert times_stored(server.url, key, "farm") == [float(i) for i in range(300)]
    server.stop()


def test_a_rate_limited_client_waits_as_told_and_loses_nothing(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with live_server(data, SENSORBASE_RATE_LIMIT="2/second") as server:
        assert server.key
        make_bucket(server.url, server.key, "farm")
        statuses: list[int] = []
        sb = Client(server.url, key=server.key, bucket="farm", batch_size=10,
                    retry=RetryPolicy(attempts=50))  # fmt: skip
        sb._http.event_hooks["response"].append(lambda r: statuses.append(r.status_code))
        with sb:
            sb.write([Point("gw", "n", float(i), BASE + timedelta(seconds=i)) for i in range(60)])
            sb.flush(timeout_s=60)
        assert 429 in statuses  # the limit was met, and waited out
        assert statuses.count(200) == 6
        assert times_stored(server.url, server.key, "farm") == [float(i) for i in range(60)]


WRITER = """
import sys
from datetime import datetime, timedelta
from sensorbase.client import Client, Point
base = datetime.fromisoformat(sys.argv[4])
sb = Client(sys.argv[1], key=sys.argv[2], bucket=sys.argv[3], buffer_path=sys.argv[5],
            batch_size=100, flush_interval_s=0.05)
for i in range(1_000_000):
    sb.write(Point("gw", "n", float(i), base + timedelta(seconds=i)))
    print(i, flush=True)  # committed to the buffer file
"""


@pytest.mark.parametrize("server_up", [True, False], ids=["sending", "offline"])
def test_the_buffer_survives_kill_9_and_replays_each_point_once(
    live: Live, tmp_path: Path, server_up: bool
) -> None:
    """A gateway writing into its buffer is killed mid-stream, while batches leave or while
    the server cannot be reached (nothing listens at its address); a new client on the same
    file sends what is left, in order."""
    bucket = live.bucket()
    url = live.url if server_up else f"http://127.0.0.1:{free_port()}"
    buffer = tmp_path / "gateway.sqlite"
    writer = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(WRITER), url, live.key, bucket, BASE.isoformat(),
         str(buffer)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert writer.stdout is not None
    last = -1
    for line in writer.stdout:
        if int(line) == 600:
            os.kill(writer.pid, signal.SIGKILL)
            break
    writer.wait()
    # On a busy machine the writer runs ahead of this reader: what it printed before the
    # kill still waits in the pipe, and the last of it is the last point it committed.
    last = 600
    for line in writer.stdout:
        last = int(line)
    writer.stdout.close()
    assert writer.returncode == -signal.SIGKILL
    with Client(live.url, key=live.key, bucket=bucket, buffer_path=buffer) as sb:
        left = sb.pending()
        sb.flush(timeout_s=60)
        assert sb.pending() == 0
    stored = times_stored(live.url, live.key, bucket)
    # Every point write() took is stored once, in its place; the killed process may have
    # committed one more to the buffer between its last print and the kill.
    assert stored[: last + 1] == [float(i) for i in range(last + 1)]
    assert len(stored) in (last + 1, last + 2)
    if server_up:
        assert len(stored) > left  # some had left before the kill
    else:
        assert left == len(stored)  # all of it waited in the file
