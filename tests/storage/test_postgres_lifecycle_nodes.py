"""Retention and deletes with two real Sensorbase nodes (uvicorn) on one PostgreSQL database:
a delete through one node is gone from the other at once; both nodes run the retention job
(every 0.2 s here) and the cluster's one lease makes each expired point summarised once."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from sensorbase.settings import Settings
from sensorbase.storage.postgres.store import PostgresStore
from sensorbase.times import format_us, now_us
from tests.live import LiveServer, live_server
from tests.pg import temporary_database

HOUR = 3_600_000_000
DAY = 24 * HOUR


@pytest.fixture(scope="module")
def two_nodes(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[LiveServer, LiveServer, dict[str, str], str]]:
    root = tmp_path_factory.mktemp("lifecycle-nodes")
    for name in ("a", "b"):
        (root / name).mkdir()
    env = {"SENSORBASE_RATE_LIMIT": "", "SENSORBASE_RETENTION_EVERY_S": "0.2"}
    with temporary_database() as url:
        env["SENSORBASE_DATABASE_URL"] = url
        with live_server(root / "a" / "data", **env) as a:
            assert a.key is not None, a.log.read_text()
            with live_server(root / "b" / "data", **env) as b:
                yield a, b, {"Authorization": f"Bearer {a.key}"}, url


def test_a_delete_through_one_node_is_gone_from_the_other(
    two_nodes: tuple[LiveServer, LiveServer, dict[str, str], str],
) -> None:
    a, b, headers, _ = two_nodes
    assert httpx.post(f"{a.url}/v1/buckets", json={"key": "d"}, headers=headers).status_code == 201
    now = now_us()
    pts = [
        {"source": "s", "fields": {"v": float(i)}, "time": format_us(now - i * HOUR)}
        for i in range(10)
    ]
    assert (
        httpx.post(
            f"{b.url}/v1/write", json={"bucket": "d", "points": pts}, headers=headers
        ).status_code
        == 200
    )
    gone = httpx.delete(
        f"{a.url}/v1/points",
        params={"bucket": "d", "start": format_us(now - 4 * HOUR), "end": format_us(now + 1)},
        headers=headers,
    )
    assert gone.status_code == 200, gone.text
    seen = httpx.get(f"{b.url}/v1/query", params={"bucket": "d"}, headers=headers).json()
    assert [p["value"] for p in seen["series"][0]["points"]] == [9.0, 8.0, 7.0, 6.0, 5.0]


def test_both_nodes_run_retention_and_each_point_is_summarised_once(
    two_nodes: tuple[LiveServer, LiveServer, dict[str, str], str],
) -> None:
    a, b, headers, _ = two_nodes
    made = httpx.post(
        f"{b.url}/v1/buckets",
        json={"key": "r", "retention": "1d", "keep_summaries": True},
        headers=headers,
    )
    assert made.status_code == 201, made.text
    now = now_us()
    times = [
        now - 3 * DAY + i * 60_000_000 for i in range(0, 2 * 24 * 60)
    ]  # 2 days, a minute apart
    for part in range(0, len(times), 1000):
        pts = [
            {"source": f"s{i % 3}", "fields": {"v": 1.0}, "time": format_us(t)}
            for i, t in enumerate(times[part : part + 1000], part)
        ]
        node = a if part % 2000 else b
        reply = httpx.post(
            f"{node.url}/v1/write", json={"bucket": "r", "points": pts}, headers=headers
        )
        assert reply.status_code == 200, reply.text
    params = {
        "bucket": "r", "mode": "aggregate", "aggregate": "count",
        "start": format_us(now - 4 * DAY), "end": format_us(now),
    }  # fmt: skip
    deadline = time.monotonic() + 30
    while True:  # until both nodes' jobs have expired everything (each point before now - 1d)
        series = httpx.get(f"{a.url}/v1/query", params=params, headers=headers).json()["series"]
        raw = httpx.get(
            f"{b.url}/v1/query", params={"bucket": "r", "mode": "latest"}, headers=headers
        )
        if all("summaries_until" in s for s in series) and not any(
            s["points"] for s in raw.json()["series"]
        ):
            break
        assert time.monotonic() < deadline, series
        time.sleep(0.2)
    time.sleep(0.5)  # a few more passes of both nodes change nothing
    for node in (a, b):
        series = httpx.get(f"{node.url}/v1/query", params=params, headers=headers).json()["series"]
        assert sum(s["aggregates"]["count"] for s in series) == len(times)


def test_the_retention_lease_is_held_by_one_node_at_a_time(
    two_nodes: tuple[LiveServer, LiveServer, dict[str, str], str], tmp_path: Path
) -> None:
    *_, url = two_nodes
    one, other = (PostgresStore(url, Settings(data_dir=tmp_path)) for _ in range(2))
    deadline = time.monotonic() + 10
    while True:  # (the nodes' own passes hold it now and then)
        with one.retention_lease() as held:
            if held:
                with other.retention_lease() as also:
                    assert not also
                break
        assert time.monotonic() < deadline
        time.sleep(0.05)
