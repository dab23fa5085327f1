"""Writes that may take long (a fleet's series created, points deleted, sources or buckets
deleted with their points) ask for their group commit to run off the event loop; on SQLite,
whose committer otherwise commits on the loop, it then runs on a thread, and the loop answers
other requests meanwhile. A write of series already known stays on the loop."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import httpx

from sensorbase.services import Services
from sensorbase.storage.base import WriteTx
from sensorbase.times import format_us, now_us

DAY = 86_400_000_000


async def test_long_writes_run_their_group_off_the_event_loop(
    client: httpx.AsyncClient, admin_key: str, services: Services
) -> None:
    loop_thread = threading.get_ident()
    phase = ["setup"]
    ran: list[tuple[str, bool, bool]] = []  # (phase, asked heavy, ran off the loop's thread)
    run = services.committer.run

    def spying(fn: Callable[[WriteTx], Any], points: int = 0, heavy: bool = False) -> Any:
        def job(tx: WriteTx) -> Any:
            ran.append((phase[0], heavy, threading.get_ident() != loop_thread))
            return fn(tx)

        return run(job, points, heavy=heavy)

    services.committer.run = spying  # type: ignore[method-assign]
    headers = {"Authorization": f"Bearer {admin_key}"}

    async def step(name: str, method: str, path: str, expected: int, **kw: Any) -> None:
        phase[0] = name
        answer = await client.request(method, path, headers=headers, **kw)
        assert answer.status_code == expected, answer.text

    await step("setup", "POST", "/v1/buckets", 201, json={"key": "fleet"})
    then = now_us() - DAY
    fleet = [
        {"source": f"s{i:02d}", "field": "v", "time": format_us(then), "value": i}
        for i in range(64)
    ]
    await step("create", "POST", "/v1/write?bucket=fleet", 200, json=fleet)
    one = [{"source": "s01", "field": "v", "time": format_us(then + 1), "value": 1}]
    await step("known", "POST", "/v1/write?bucket=fleet", 200, json=one)
    few = [{"source": f"new{i}", "field": "v", "time": format_us(then), "value": i} for i in (1, 2)]
    await step("few new", "POST", "/v1/write?bucket=fleet", 200, json=few)
    window = {"bucket": "fleet", "start": format_us(then - DAY), "end": format_us(then + DAY)}
    await step("delete points", "DELETE", "/v1/points", 200, params=window)
    await step("delete source", "DELETE", "/v1/buckets/fleet/sources/s02", 204)
    await step("delete bucket", "DELETE", "/v1/buckets/fleet", 204)

    heavy = {"create", "delete points", "delete source", "delete bucket"}
    seen = {name for name, _, _ in ran}
    assert heavy | {"known", "few new"} <= seen
    for name, asked, off_loop in ran:
        if name == "setup":
            continue
        assert asked == (name in heavy), name
        if services.committer.inline:  # (the threaded committer runs every group off it)
            assert off_loop == (name in heavy), name
