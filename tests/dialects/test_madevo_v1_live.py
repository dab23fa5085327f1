"""Madevo /api/v1 against a real `sensorbase serve` (its own protocol, uvicorn's WebSocket
upgrade): the stream of a room's inserts, its refusals, and an upload streamed to disk (the
server's peak memory barely moves while tens of MB arrive)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from tests.conftest import auth
from tests.live import KEY_PATTERN, Server, start_server

SECURE = "/api/v1/secure"
UPLOAD_MB = 32
ALLOWED_GROWTH_MB = 16  # the chunks in flight, not the file


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    started = start_server(tmp_path_factory.mktemp("madevo-v1"))
    yield started
    started.stop()


def sign_in(server: Server, email: str, org_admin: str | None = None) -> str:
    admin = org_admin or KEY_PATTERN.findall(server.stderr())[0]
    body = {"email": email, "password": "correct horse", "role": "admin"}
    reply = httpx.post(f"{server.url}/v1/users", json=body, headers=auth(admin))
    assert reply.status_code == 201, reply.text
    reply = httpx.post(
        f"{server.url}/api/v1/login", json={"email": email, "password": "correct horse"}
    )
    assert reply.status_code == 200, reply.text
    return str(reply.json()["token"])


def test_stream_pushes_inserted_rows(server: Server) -> None:
    token = sign_in(server, "ada@example.com")
    body = {"name": "greenhouse", "timefield": "ts", "metafield": "sensor"}
    reply = httpx.post(f"{server.url}{SECURE}/datasources/plain", json=body, headers=auth(token))
    assert reply.status_code == 200, reply.text
    room = reply.json()["data"]["id"]
    ws = server.url.replace("http://", "ws://")
    rows = [
        {"ts": "2025-01-01T10:00:00Z", "sensor": "S1", "temperature": "21.5"},
        {"ts": "", "sensor": "S1", "temperature": "22"},
    ]
    with connect(f"{ws}/api/v1/stream/{room}?token={token}", open_timeout=10) as stream:
        reply = httpx.patch(
            f"{server.url}{SECURE}/datasource/insert",
            json={"datasource_id": room, "data": rows},
            headers=auth(token),
        )
        assert reply.status_code == 200 and reply.json()["inserted_rows"] == 1, reply.text
        message = json.loads(stream.recv(timeout=10))
        assert message == {"datasource_id": room, "data": [rows[0]]}  # the skipped row is not

    # No token, a forged one, another organisation's user: the upgrade is refused.
    admin = KEY_PATTERN.findall(server.stderr())[0]
    reply = httpx.post(f"{server.url}/v1/orgs", json={"key": "globex"}, headers=auth(admin))
    assert reply.status_code == 201, reply.text
    reply = httpx.post(
        f"{server.url}/v1/orgs/globex/keys",
        json={"name": "admin", "scopes": ["admin"]},
        headers=auth(admin),
    )
    stranger = sign_in(server, "eve@example.com", reply.json()["key"])
    for query in ("", "?token=forged", f"?token={stranger}"):
        with pytest.raises(InvalidStatus) as refused:
            connect(f"{ws}/api/v1/stream/{room}{query}", open_timeout=10).close()
        assert refused.value.response.status_code == 403


def peak_rss_kb(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    line = next(line for line in status.splitlines() if line.startswith("VmHWM:"))
    return int(line.split()[1])


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads /proc")
def test_upload_is_streamed_to_disk(server: Server) -> None:
    token = sign_in(server, "bob@example.com")
    boundary = "madevo-upload-boundary"
    row = b"2025-01-01 10:00:00,D1,21.5,north\n" * 1024  # 34 KiB

    def body() -> Iterator[bytes]:
        yield (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.csv"'
            "\r\nContent-Type: text/csv\r\n\r\ntime,device,temperature,zone\n"
        ).encode()
        for _ in range(UPLOAD_MB * 1024 * 1024 // len(row)):
            yield row
        yield f"\r\n--{boundary}--\r\n".encode()

    before = peak_rss_kb(server.process.pid)
    reply = httpx.post(
        f"{server.url}{SECURE}/datasource/upload",
        content=body(),
        headers={**auth(token), "Content-Type": f"multipart/form-data; boundary={boundary}"},
        timeout=120,
    )
    assert reply.status_code == 200, reply.text
    size = reply.json()["size"]
    assert size > UPLOAD_MB * 1024 * 1024 * 0.99
    growth_mb = (peak_rss_kb(server.process.pid) - before) / 1024
    assert growth_mb < ALLOWED_GROWTH_MB, f"peak RSS grew {growth_mb:.0f} MB for {size} bytes"
    stored = list((Path(os.fspath(server.log)).parent / "data" / "madevo-uploads").rglob("file"))
    assert [p.stat().st_size for p in stored] == [size]
