"""`AsyncClient` against a real server: queued writes, batching by count, typed refusals,
queries, and a buffer file replayed by the next client."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from sensorbase.client import (
    AsyncClient,
    FlushTimeout,
    Point,
    PointsRejected,
    Record,
    RequestRefused,
)
from tests.client.conftest import Live

BASE = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)


async def test_write_batch_flush_and_query(live: Live) -> None:
    bucket = live.bucket()
    async with AsyncClient(live.url, key=live.key, bucket=bucket, batch_size=100,
                           flush_interval_s=3600) as sb:  # fmt: skip
        await sb.write([Point("a", "t", float(i), BASE + timedelta(seconds=i)) for i in range(230)])
        for _ in range(400):  # the count sends two batches, the rest waits for flush()
            if sb.pending() == 30:
                break
            await asyncio.sleep(0.05)
        assert sb.pending() == 30
        await sb.flush()
        stored = await sb.query(source="a", start=BASE, limit=100)
        assert [r.value for r in stored] == [float(i) for i in range(230)]
        assert stored[-1] == Record(bucket, "a", "t", BASE + timedelta(seconds=229), 229.0)

        await sb.write({"source": "a", "field": "t", "value": "warm"})
        with pytest.raises(PointsRejected) as caught:
            await sb.flush()
        assert caught.value.errors[0].field == "value"
        with pytest.raises(RequestRefused) as refused:
            await sb.write_now([{"source": "a", "field": "t", "value": 1, "time": "noon"}])
        assert [(e.index, e.field) for e in refused.value.errors] == [(0, "time")]
        (latest,) = await sb.query(source="a", mode="latest")
        assert latest.value == 229.0


async def test_a_buffer_left_behind_is_sent_by_the_next_client(live: Live, tmp_path: Path) -> None:
    bucket = live.bucket()
    buffer = tmp_path / "buffer.sqlite"
    offline = AsyncClient("http://127.0.0.1:9", key=live.key, bucket=bucket, buffer_path=buffer)
    await offline.write([Point("b", "t", float(i), BASE + timedelta(seconds=i)) for i in range(50)])
    assert offline.pending() == 50
    with pytest.raises(FlushTimeout, match="still queued"):
        await offline.close(timeout_s=0.3)
    async with AsyncClient(live.url, key=live.key, bucket=bucket, buffer_path=buffer) as sb:
        assert sb.pending() == 50
        await sb.flush()
        assert len(await sb.query(source="b", start=BASE)) == 50
