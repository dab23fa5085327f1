"""An acknowledged write survives the sudden death of the server (SIGKILL mid-stream): every
point whose request got a 200 is in the store when it is opened again."""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import threading
import time
from pathlib import Path

import httpx
import pytest

from sensorbase.model import TimeRange
from sensorbase.settings import Settings
from sensorbase.storage.sqlite.store import SQLiteStore
from tests.live import live_server


@pytest.mark.slow(4)
def test_acknowledged_points_survive_sigkill(tmp_path: Path) -> None:
    data = tmp_path / "data"
    acked: list[int] = []
    lock = threading.Lock()
    with live_server(data, SENSORBASE_RATE_LIMIT="") as server:
        assert server.key is not None, server.log.read_text()
        headers = {"Authorization": f"Bearer {server.key}"}
        assert (
            httpx.post(f"{server.url}/v1/buckets", json={"key": "b"}, headers=headers).status_code
            == 201
        )
        stop = threading.Event()

        def writer(worker: int) -> None:
            with httpx.Client(base_url=server.url, headers=headers, timeout=5) as client:
                for n in range(100_000):
                    if stop.is_set():
                        return
                    second = worker * 1_000_000 + n
                    body = {
                        "bucket": "b",
                        "source": "dev",
                        "points": [
                            {"field": "v", "value": float(second), "time": 1_700_000_000 + second}
                        ],
                    }
                    try:
                        reply = client.post("/v1/write", params={"precision": "s"}, json=body)
                    except httpx.TransportError:
                        return
                    if reply.status_code == 200:
                        with lock:
                            acked.append(second)

        threads = [threading.Thread(target=writer, args=(w,)) for w in range(4)]
        for t in threads:
            t.start()
        while True:
            with lock:
                if len(acked) >= 300:
                    break
            threads[0].join(0.01)
        server.process.send_signal(signal.SIGKILL)
        server.process.wait()
        stop.set()
        for t in threads:
            t.join()

    [stored] = _stored_points(data).values()
    found = {int(t // 1_000_000) - 1_700_000_000 for t in stored}
    missing = set(acked) - found
    assert len(acked) >= 300
    assert missing == set()


def _stored_points(data: Path) -> dict[str, dict[int, float]]:
    """Every point of the first organisation, per field: {time_us: value}, from the database
    opened again as a restarted server would."""
    store = SQLiteStore(data / "sensorbase.db", Settings())
    store.open()
    try:
        reader = store.reader()
        found = {}
        for series in reader.list_series(1):
            points = reader.read_range(series.id, TimeRange(None, None), 100_000_000)
            found[series.field] = dict(
                zip(points.time_us.tolist(), points.value.tolist(), strict=True)
            )
        return found
    finally:
        store.close()


def _kill_tree(pid: int) -> None:
    """SIGKILL a process and its helpers (WAL sync, log folder) at once: the nearest a test
    comes to the machine losing power, short of losing the page cache."""
    children = Path(f"/proc/{pid}/task/{pid}/children")
    kids = [int(k) for k in children.read_text().split()] if children.exists() else []
    for target in [pid, *kids]:
        with contextlib.suppress(ProcessLookupError):  # ended on its own
            os.kill(target, signal.SIGKILL)


@pytest.mark.slow(8)
def test_acknowledged_batches_survive_sigkill_while_the_log_is_folded(tmp_path: Path) -> None:
    """Batches big enough that the write log is folded into chunks while they come; the server
    and its helpers are killed mid-stream (a fold may be running): every acknowledged point is
    there with its value, whether it was still in the log or already in a chunk."""
    data = tmp_path / "data"
    acked: list[tuple[int, int]] = []  # (writer, batch)
    lock = threading.Lock()
    series, per_batch = 50, 5_000
    with live_server(data, SENSORBASE_RATE_LIMIT="") as server:
        headers = {"Authorization": f"Bearer {server.key}"}
        reply = httpx.post(f"{server.url}/v1/buckets", json={"key": "b"}, headers=headers)
        assert reply.status_code == 201
        stop = threading.Event()

        def writer(worker: int) -> None:
            with httpx.Client(base_url=server.url, headers=headers, timeout=30) as client:
                for batch in range(10_000):
                    if stop.is_set():
                        return
                    first = (worker * 10_000 + batch) * per_batch // series
                    body = [
                        {
                            "source": "dev",
                            "field": f"v{k % series}",
                            "time": 1_700_000_000 + first + k // series,
                            "value": float(first + k // series) + k % series / 100,
                        }
                        for k in range(per_batch)
                    ]
                    try:
                        reply = client.post("/v1/write?bucket=b&precision=s", json=body)
                    except httpx.TransportError:
                        return
                    if reply.status_code == 200:
                        with lock:
                            acked.append((worker, batch))

        threads = [threading.Thread(target=writer, args=(w,)) for w in range(2)]
        for t in threads:
            t.start()
        db = sqlite3.connect(f"file:{data / 'sensorbase.db'}?mode=ro", uri=True)
        deadline = time.monotonic() + 120
        try:
            while not db.execute("SELECT count(*) FROM point_chunks").fetchone()[0]:
                assert time.monotonic() < deadline, "no fold within 120 s"
                time.sleep(0.1)
        finally:
            db.close()
        time.sleep(0.3)  # into the next fold's run-up, or into one
        _kill_tree(server.process.pid)
        server.process.wait()
        stop.set()
        for t in threads:
            t.join()

    found = {int(field[1:]): points for field, points in _stored_points(data).items()}
    assert len(acked) * per_batch > 500_000  # enough for a fold to have been due
    for worker, batch in acked:
        first = (worker * 10_000 + batch) * per_batch // series
        for k in range(series):
            for i in range(per_batch // series):
                time_us = (1_700_000_000 + first + i) * 1_000_000
                assert found[k].get(time_us) == float(first + i) + k / 100, (worker, batch, k, i)
