"""An acknowledged write survives the sudden death of the server (SIGKILL mid-stream): every
point whose request got a 200 is in the store when it is opened again."""

from __future__ import annotations

import signal
import threading
from pathlib import Path

import httpx

from sensorbase.model import TimeRange
from sensorbase.settings import Settings
from sensorbase.storage.sqlite import SQLiteStore
from tests.live import live_server


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

    store = SQLiteStore(data / "sensorbase.db", Settings())
    store.open()
    try:
        reader = store.reader()
        [series] = reader.list_series(1)
        stored = reader.read_range(series.id, TimeRange(None, None), 10_000_000)
        found = {int(t // 1_000_000) - 1_700_000_000 for t in stored.time_us.tolist()}
    finally:
        store.close()
    missing = set(acked) - found
    assert len(acked) >= 300
    assert missing == set()
