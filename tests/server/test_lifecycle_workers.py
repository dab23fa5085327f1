"""`serve --workers 2` on one SQLite file: a delete through one worker is gone for every worker
(connections go to the workers in turn), and the workers' retention jobs, both running every
0.2 s here, summarise each expired point once (the lease beside the file)."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from sensorbase.times import format_us, now_us
from tests.live import KEY_PATTERN, start_server

HOUR = 3_600_000_000
DAY = 24 * HOUR


@pytest.mark.slow(6)
def test_deletes_and_retention_with_two_workers(tmp_path: Path) -> None:
    server = start_server(tmp_path, "--workers", "2", env={"SENSORBASE_RETENTION_EVERY_S": "0.2"})
    try:
        keys = KEY_PATTERN.findall(server.stderr())
        headers = {"Authorization": f"Bearer {keys[0]}"}
        now = now_us()
        for bucket in ("d", "r"):
            body = {
                "key": bucket,
                **({"retention": "1d", "keep_summaries": True} if bucket == "r" else {}),
            }
            assert (
                httpx.post(f"{server.url}/v1/buckets", json=body, headers=headers).status_code
                == 201
            )
            pts = [
                {
                    "source": f"s{i % 2}",
                    "fields": {"v": float(i)},
                    "time": format_us(now - 3 * DAY + i * 60_000_000),
                }
                for i in range(2000)
            ]
            reply = httpx.post(
                f"{server.url}/v1/write", json={"bucket": bucket, "points": pts}, headers=headers
            )
            assert reply.status_code == 200, reply.text
        gone = httpx.delete(
            f"{server.url}/v1/points",
            params={
                "bucket": "d",
                "source": "s0",
                "start": format_us(now - 4 * DAY),
                "end": format_us(now),
            },
            headers=headers,
        )
        assert gone.status_code == 200, gone.text
        for _ in range(6):  # new connections: each worker in turn
            with httpx.Client(base_url=server.url, headers=headers) as client:
                found = client.get("/v1/query", params={"bucket": "d", "limit": 5000}).json()
                assert [s["source"] for s in found["series"] if s["points"]] == ["s1"]
        params = {
            "bucket": "r",
            "mode": "aggregate",
            "aggregate": "count,sum",
            "start": format_us(now - 4 * DAY),
            "end": format_us(now),
        }
        deadline = time.monotonic() + 30
        while True:
            series = httpx.get(f"{server.url}/v1/query", params=params, headers=headers).json()[
                "series"
            ]
            if all("summaries_until" in s for s in series):
                break
            assert time.monotonic() < deadline, series
            time.sleep(0.2)
        time.sleep(0.5)
        for _ in range(4):
            with httpx.Client(base_url=server.url, headers=headers) as client:
                series = client.get("/v1/query", params=params).json()["series"]
                assert sum(s["aggregates"]["count"] for s in series) == 2000
                assert sum(s["aggregates"]["sum"] for s in series) == sum(range(2000))
    finally:
        server.stop()
