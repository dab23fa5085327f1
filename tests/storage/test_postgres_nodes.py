"""Two real Sensorbase server processes (uvicorn) on one PostgreSQL database, as behind a load
balancer: what one node acknowledges the other serves; a key revoked on one is refused by the
other within key_cache_s (1 s), and a user changed or deleted on one loses their tokens on the
other at once; one new sensor pushed to both at once is one series; killed database
connections answer 503 with Retry-After, never a false ack, and the nodes recover."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from sensorbase.times import parse_iso_us
from tests.live import LiveServer, live_server
from tests.pg import temporary_database

T0_S = 1_790_000_000  # 2026-09-21, seconds


@dataclass
class Nodes:
    a: LiveServer
    b: LiveServer
    database_url: str
    headers: dict[str, str]

    @property
    def both(self) -> tuple[LiveServer, LiveServer]:
        return self.a, self.b


@pytest.fixture(scope="module")
def nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Nodes]:
    root = tmp_path_factory.mktemp("nodes")
    for name in ("a", "b"):
        (root / name).mkdir()
    env = {"SENSORBASE_RATE_LIMIT": "", "SENSORBASE_KEY_CACHE_S": "1.0"}
    with temporary_database() as url:
        env["SENSORBASE_DATABASE_URL"] = url
        # The first node to start bootstraps (and logs the admin key once); the second joins.
        with live_server(root / "a" / "data", **env) as a:
            assert a.key is not None, a.log.read_text()
            with live_server(root / "b" / "data", **env) as b:
                assert b.key is None  # not bootstrapped twice
                headers = {"Authorization": f"Bearer {a.key}"}
                reply = httpx.post(f"{a.url}/v1/buckets", json={"key": "farm"}, headers=headers)
                assert reply.status_code == 201, reply.text
                yield Nodes(a, b, url, headers)


def write(node: LiveServer, headers: dict[str, str], body: Any) -> httpx.Response:
    return httpx.post(
        f"{node.url}/v1/write", params={"precision": "s"}, json=body, headers=headers, timeout=30
    )


def query(node: LiveServer, headers: dict[str, str], **params: Any) -> dict[str, Any]:
    reply = httpx.get(f"{node.url}/v1/query", params=params, headers=headers, timeout=30)
    assert reply.status_code == 200, reply.text
    return dict(reply.json())


def test_writes_through_both_nodes_are_read_through_either(nodes: Nodes) -> None:
    acked: dict[str, set[int]] = {"a": set(), "b": set()}
    failures: list[str] = []

    def writer(name: str, node: LiveServer) -> None:
        with httpx.Client(base_url=node.url, headers=nodes.headers, timeout=30) as client:
            for n in range(40):
                seconds = [T0_S + n * 10 + k for k in range(10)]
                body = {
                    "bucket": "farm",
                    "points": [
                        # A source of its own per node, and one both nodes write to.
                        {"source": f"only-{name}", "field": "v", "value": s, "time": s}
                        for s in seconds
                    ]
                    + [{"source": "shared", "field": name, "value": s, "time": s} for s in seconds],
                }
                reply = client.post("/v1/write", params={"precision": "s"}, json=body)
                if reply.status_code == 200:
                    acked[name].update(seconds)
                else:
                    failures.append(reply.text)

    threads = [
        threading.Thread(target=writer, args=(name, node))
        for name, node in (("a", nodes.a), ("b", nodes.b))
        for _ in range(2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    for node in nodes.both:
        for name in ("a", "b"):
            for source, field in ((f"only-{name}", "v"), ("shared", name)):
                found = query(
                    node, nodes.headers, bucket="farm", source=source, field=field, limit=10_000
                )
                [series] = found["series"]
                times = {parse_iso_us(p["time"]) // 1_000_000 for p in series["points"]}
                assert times == acked[name], (node.url, source, field)


def test_a_key_revoked_on_one_node_is_refused_by_the_other_within_a_second(
    nodes: Nodes,
) -> None:
    reply = httpx.post(
        f"{nodes.a.url}/v1/keys",
        json={"name": "reader", "scopes": ["data:read"]},
        headers=nodes.headers,
    )
    assert reply.status_code == 201, reply.text
    created = reply.json()
    mine = {"Authorization": f"Bearer {created['key']}"}
    for node in nodes.both:  # both nodes now hold it in their key cache
        assert httpx.get(f"{node.url}/v1/buckets", headers=mine).status_code == 200
    reply = httpx.delete(f"{nodes.a.url}/v1/keys/{created['id']}", headers=nodes.headers)
    assert reply.status_code == 204, reply.text
    revoked_at = time.monotonic()
    assert httpx.get(f"{nodes.a.url}/v1/buckets", headers=mine).status_code == 401
    while True:
        sent_after_s = time.monotonic() - revoked_at
        status = httpx.get(f"{nodes.b.url}/v1/buckets", headers=mine).status_code
        if status == 401:
            break
        assert status == 200
        # Only a request sent less than key_cache_s (1 s) after the revocation may pass.
        assert sent_after_s < 1.0, "the other node accepts a key revoked over a second ago"
        time.sleep(0.02)


def test_a_user_changed_or_deleted_on_one_node_loses_their_tokens_on_the_other_at_once(
    nodes: Nodes,
) -> None:
    body = {"email": "nodes@example.com", "password": "long enough", "role": "writer"}
    reply = httpx.post(f"{nodes.a.url}/v1/users", json=body, headers=nodes.headers)
    assert reply.status_code == 201, reply.text
    user_id = reply.json()["id"]

    def token_from_b() -> dict[str, str]:
        login = {"email": body["email"], "password": body["password"]}
        reply = httpx.post(f"{nodes.b.url}/restapi/login", json=login)
        assert reply.status_code == 200, reply.text
        return {"Authorization": f"Bearer {reply.json()['token']}"}

    for change in ({"role": "reader"}, {"password": "another one"}, None):
        mine = token_from_b()
        assert httpx.get(f"{nodes.b.url}/v1/whoami", headers=mine).status_code == 200
        if change is None:
            reply = httpx.delete(f"{nodes.a.url}/v1/users/{user_id}", headers=nodes.headers)
        else:
            reply = httpx.patch(f"{nodes.a.url}/v1/users/{user_id}", json=change,
                                headers=nodes.headers)  # fmt: skip
            body.update(change)
        assert reply.status_code in (200, 204), reply.text
        # Every use re-reads the user: no cache to wait out.
        assert httpx.get(f"{nodes.b.url}/v1/whoami", headers=mine).status_code == 401


def test_one_new_sensor_pushed_to_both_nodes_at_once_is_one_series(nodes: Nodes) -> None:
    for round_ in range(5):
        source = f"new-sensor-{round_}"
        body = {
            "bucket": "farm",
            "source": source,
            "points": [{"fields": {"t": 1.0, "h": 2.0}, "time": T0_S + round_}],
        }
        start = threading.Barrier(2)
        replies: list[httpx.Response] = []
        threads = [
            threading.Thread(target=push, args=(node, nodes.headers, body, start, replies))
            for node in nodes.both
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert [r.status_code for r in replies] == [200, 200], [r.text for r in replies]
        for node in nodes.both:
            reply = httpx.get(f"{node.url}/v1/buckets/farm/sources/{source}", headers=nodes.headers)
            assert reply.status_code == 200, reply.text
            found = query(node, nodes.headers, bucket="farm", source=source)
            assert sorted(s["field"] for s in found["series"]) == ["h", "t"]
        with psycopg.connect(nodes.database_url) as conn:
            row = conn.execute(
                "SELECT count(DISTINCT so.id), count(*) FROM sources so "
                "JOIN series se ON se.source_id = so.id WHERE so.key = %s",
                (source,),
            ).fetchone()
        assert row == (1, 2)


def test_new_sources_written_through_both_nodes_at_once_are_all_acknowledged(
    nodes: Nodes,
) -> None:
    """Each node's group commit joins many writes, each creating its source: two groups
    creating overlapping sources in different orders would deadlock (PostgreSQL aborting one,
    its writes answered 503). Nodes create catalog rows in turn, and a group that loses to
    another all the same runs again: every write is acknowledged, every point stored once."""
    sources = [f"fleet-{n:03d}" for n in range(120)]
    failures: list[str] = []
    acked: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(16)

    def writer(node: LiveServer, keys: list[str]) -> None:
        with httpx.Client(base_url=node.url, headers=nodes.headers, timeout=60) as client:
            start.wait()
            for key in keys:
                body = {
                    "bucket": "farm",
                    "source": key,
                    "points": [{"field": "v", "value": 1.0, "time": T0_S}],
                }
                reply = client.post("/v1/write", params={"precision": "s"}, json=body)
                with lock:
                    if reply.status_code == 200:
                        acked.append(key)
                    else:
                        failures.append(f"{reply.status_code} {reply.text}")

    threads = []
    for n in range(8):  # each thread a stride of the sources; the nodes in opposite orders
        part = sources[n::8]
        threads.append(threading.Thread(target=writer, args=(nodes.a, part)))
        threads.append(threading.Thread(target=writer, args=(nodes.b, part[::-1])))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures, failures[:5]
    assert sorted(acked) == sorted(sources * 2)
    # Prevented, not only cured: nodes create catalog rows in turn (postgres/tx.py _creating).
    for node in nodes.both:
        metrics = httpx.get(f"{node.url}/metrics", headers=nodes.headers).text
        assert "sensorbase_commit_contended_total 0.0" in metrics, metrics
    with psycopg.connect(nodes.database_url) as conn:
        row = conn.execute(
            "SELECT count(DISTINCT so.id), count(*) FROM sources so "
            "JOIN series se ON se.source_id = so.id WHERE so.key LIKE 'fleet-%%'"
        ).fetchone()
    assert row == (120, 120)
    found = query(nodes.b, nodes.headers, bucket="farm", field="v", limit=1000)
    fleet = [s for s in found["series"] if s["source"].startswith("fleet-")]
    assert len(fleet) == 120 and all(len(s["points"]) == 1 for s in fleet)


def push(
    node: LiveServer,
    headers: dict[str, str],
    body: dict[str, Any],
    start: threading.Barrier,
    replies: list[httpx.Response],
) -> None:
    start.wait()
    replies.append(write(node, headers, body))


def test_killed_connections_answer_503_then_the_nodes_recover(nodes: Nodes) -> None:
    body = {
        "bucket": "farm",
        "source": "fault",
        "points": [{"field": "v", "value": 1, "time": T0_S}],
    }
    replies: list[httpx.Response] = []
    with psycopg.connect(nodes.database_url) as blocker:
        # Hold the write of a new sensor inside the database while its connection is killed.
        blocker.execute("LOCK TABLE sources IN ACCESS EXCLUSIVE MODE")
        pending = threading.Thread(
            target=lambda: replies.append(write(nodes.a, nodes.headers, body))
        )
        pending.start()
        with psycopg.connect(nodes.database_url, autocommit=True) as admin:
            deadline = time.monotonic() + 10
            while not admin.execute(
                "SELECT 1 FROM pg_stat_activity WHERE datname = current_database() "
                "AND application_name = 'sensorbase-writer' AND wait_event_type = 'Lock'"
            ).fetchone():
                assert time.monotonic() < deadline, "the write never reached the database"
                time.sleep(0.02)
            killed = admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND application_name LIKE 'sensorbase%'"
            ).fetchall()
        assert len(killed) >= 2  # at least both nodes' writers
        pending.join(30)
        blocker.rollback()
    [reply] = replies
    assert reply.status_code == 503, reply.text
    assert reply.headers["Retry-After"] == "1"
    # Not acknowledged, not stored; and both nodes serve reads and writes again by themselves.
    for node in nodes.both:
        assert query(node, nodes.headers, bucket="farm")["series"] is not None
    for n, node in enumerate(nodes.both):
        again = {**body, "points": [{"field": "v", "value": 2, "time": T0_S + n}]}
        assert write(node, nodes.headers, again).status_code == 200
    for node in nodes.both:
        [series] = query(node, nodes.headers, bucket="farm", source="fault")["series"]
        assert [p["value"] for p in series["points"]] == [2.0, 2.0]


def test_the_second_node_did_not_bootstrap_again(nodes: Nodes, tmp_path: Path) -> None:
    reply = httpx.get(f"{nodes.b.url}/v1/orgs", headers=nodes.headers)
    assert reply.status_code == 200, reply.text
    assert [o["key"] for o in reply.json()["orgs"]] == ["default"]
