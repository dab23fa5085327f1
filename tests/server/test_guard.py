"""The guards of `sensorbase serve`'s HTTP protocol (server/guard.py), through a real server
and raw sockets: receive deadlines for headers and bodies (on the fast lane and on uvicorn's
path), and requests past SENSORBASE_MAX_IN_FLIGHT refused with 503. Deadlines are set to 1 s
here (2 s for bodies); a slow client sends a byte every 0.2 s, so the whole request would take
it tens of seconds: what is checked is that the server cut it off, not when."""

from __future__ import annotations

import asyncio
import json
import logging
import select
import socket
import time
from collections.abc import Iterator

import pytest

from sensorbase.server.guard import Gate
from sensorbase.server.protocol import GATHERED_BODY_BYTES, LANE_BODY_BYTES
from sensorbase.settings import Settings
from tests.live import KEY, Server, start_server

DEADLINE_S = 1
BODY_DEADLINE_S = 2  # time to see the app reading a streamed body before it is cut
BYTE_EVERY_S = 0.2
WAIT_S = 20  # for anything the server should do within a deadline or two


class Client:
    """One raw HTTP/1.1 connection (closed after the test, if not before)."""

    opened: list[Client] = []

    def __init__(self, server: Server) -> None:
        host, port = server.url.removeprefix("http://").split(":")
        self.sock = socket.create_connection((host, int(port)), timeout=WAIT_S)
        self.received = b""
        Client.opened.append(self)

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def reply(self) -> tuple[int, dict[str, str], bytes]:
        """The next reply (status, headers, body), framed by its Content-Length."""
        while True:
            head_end = self.received.find(b"\r\n\r\n")
            if head_end >= 0:
                lines = self.received[:head_end].decode("latin-1").split("\r\n")
                headers = {
                    name.lower(): value for name, value in (x.split(": ", 1) for x in lines[1:])
                }
                end = head_end + 4 + int(headers.get("content-length", "0"))
                if len(self.received) >= end:
                    body, self.received = self.received[head_end + 4 : end], self.received[end:]
                    return int(lines[0].split()[1]), headers, body
            chunk = self.sock.recv(65536)
            assert chunk, f"the connection closed; received {self.received!r}"
            self.received += chunk

    def closed_by_server(self) -> bool:
        """Whether the server closes the connection (cleanly) with nothing more to read."""
        try:
            while chunk := self.sock.recv(65536):
                self.received += chunk
        except TimeoutError:
            return False
        return self.received == b""

    def dribble(self, data: bytes) -> int:
        """Send `data` a byte every BYTE_EVERY_S until the server answers or closes; how many
        bytes went out."""
        for sent in range(len(data)):
            readable, _, _ = select.select([self.sock], [], [], BYTE_EVERY_S)
            if readable:
                return sent
            try:
                self.sock.send(data[sent : sent + 1])
            except (BrokenPipeError, ConnectionResetError):
                return sent
        return len(data)

    def close(self) -> None:
        self.sock.close()


@pytest.fixture(autouse=True)
def _close_clients() -> Iterator[None]:
    yield
    while Client.opened:
        Client.opened.pop().close()


def request(target: str, body: bytes = b"", *headers: str, method: str = "POST") -> bytes:
    head = [f"{method} {target} HTTP/1.1", "Host: sensorbase", *headers]
    if body and not any(h.lower().startswith("transfer-encoding") for h in headers):
        head.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def point(time_s: int) -> bytes:
    return json.dumps([{"source": "s", "field": "t", "time": time_s, "value": 1.5}]).encode()


def started(tmp_path_factory: pytest.TempPathFactory, name: str, **env: str) -> tuple[Server, str]:
    with pytest.MonkeyPatch.context() as patch:
        for variable, value in env.items():
            patch.setenv(variable, value)
        server = start_server(tmp_path_factory.mktemp(name))
    found = KEY.search(server.stderr())
    assert found, server.stderr()
    client = Client(server)
    auth = f"Authorization: Bearer {found.group(1)}"
    client.send(request("/v1/buckets", b'{"key": "guard"}', auth, "Content-Type: application/json"))
    assert client.reply()[0] == 201
    client.close()
    return server, auth


WRITE = "/v1/write?bucket=guard&precision=s"


# --- deadlines -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def timed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, str]]:
    """A server whose deadlines (headers, keep-alive; body) are 1 s (2 s), and its admin key."""
    server, auth = started(
        tmp_path_factory,
        "deadlines",
        SENSORBASE_HEADER_TIMEOUT_S=str(DEADLINE_S),
        SENSORBASE_BODY_TIMEOUT_S=str(BODY_DEADLINE_S),
        SENSORBASE_KEEP_ALIVE_TIMEOUT_S=str(DEADLINE_S),
    )
    yield server, auth
    server.stop()


def assert_cut_off_with_408(client: Client, sent: int, of: int, what: str) -> None:
    assert sent < of, "the server let the slow request finish"
    status, headers, body = client.reply()
    assert status == 408
    assert headers["connection"] == "close"
    assert headers["content-type"] == "application/problem+json"
    assert headers["x-content-type-options"] == "nosniff"
    problem = json.loads(body)
    assert problem["status"] == 408 and what in problem["detail"]
    assert client.closed_by_server()


@pytest.mark.parametrize("after_a_reply", [False, True], ids=["new connection", "keep-alive"])
def test_slow_headers_get_408_and_the_connection_closed(
    timed: tuple[Server, str], after_a_reply: bool
) -> None:
    server, auth = timed
    client = Client(server)
    if after_a_reply:  # the deadline starts again with the next request's first byte
        client.send(request("/healthz", method="GET"))
        assert client.reply()[0] == 200
    slow = request(WRITE, point(1), auth, *(f"X-Padding-{i}: {'x' * 20}" for i in range(10)))
    sent = client.dribble(slow[: slow.index(b"\r\n\r\n")])
    assert_cut_off_with_408(client, sent, slow.index(b"\r\n\r\n"), "headers")


def test_a_new_connection_that_sends_nothing_is_closed_quietly(timed: tuple[Server, str]) -> None:
    client = Client(timed[0])
    assert client.closed_by_server()  # and nothing was sent: no reply to a request never made


@pytest.mark.parametrize(
    "route",
    ["fast lane", "uvicorn's path, chunked", "uvicorn's path, streamed to the app"],
)
def test_a_slow_body_gets_408_and_the_app_sees_a_disconnect(
    timed: tuple[Server, str], route: str
) -> None:
    """A body the server gathers before the work starts (the lane's, a small one on uvicorn's
    path) is cut before any app code ran; a large one, streamed to the app (here: bucket
    creation), is cut while the app reads it, which then sees a disconnect and stores nothing."""
    server, auth = timed
    client = Client(server)
    if route == "fast lane":
        body = point(2)
        client.send(request(WRITE, body, auth, "Content-Type: application/json")[: -len(body)])
        slow = body
    elif route == "uvicorn's path, chunked":
        body = f"{len(point(3)):x}\r\n".encode() + point(3) + b"\r\n0\r\n\r\n"
        client.send(request(WRITE, body, auth, "Transfer-Encoding: chunked")[: -len(body)])
        slow = body
    else:
        slow = json.dumps({"key": "never"}).encode()
        body = b" " * (GATHERED_BODY_BYTES + 10) + slow  # whitespace, then the JSON
        client.send(
            request("/v1/buckets", body, auth, "Content-Type: application/json")[: -len(slow)]
        )
        wait_in_flight(server, 1)  # the app has begun, and reads the body as it comes
    sent = client.dribble(slow)
    assert_cut_off_with_408(client, sent, len(slow), "body")

    wait_in_flight(server, 0)  # the app, if it was reading, saw the disconnect and ended
    check = Client(server)  # the server goes on serving; the cut-off request did nothing
    check.send(request("/v1/buckets/never", b"", auth, method="GET"))
    assert check.reply()[0] == 404
    check.close()


def test_requests_in_pieces_within_the_deadlines_are_answered(timed: tuple[Server, str]) -> None:
    server, auth = timed
    client = Client(server)
    for i in range(2):
        whole = request(WRITE, point(10 + i), auth, "Content-Type: application/json")
        for start in range(0, len(whole), 60):  # a slow but steady client
            client.send(whole[start : start + 60])
            time.sleep(0.05)
        status, _, body = client.reply()
        assert status == 200 and json.loads(body)["written"] == 1
        time.sleep(DEADLINE_S / 4)  # idle, shorter than the keep-alive timeout
    client.close()


def test_an_idle_keep_alive_connection_is_closed(timed: tuple[Server, str]) -> None:
    client = Client(timed[0])
    client.send(request("/healthz", method="GET"))
    assert client.reply()[0] == 200
    assert client.closed_by_server()


async def test_deadlines_and_the_bound_can_be_turned_off() -> None:
    settings = Settings(header_timeout_s=0, body_timeout_s=0, max_in_flight=0)
    gate = Gate(asyncio.get_running_loop(), [], [], settings, 0.0, logging.getLogger())
    assert gate.in_flight == 0 and gate.max_in_flight > 1 << 60


# --- work in flight ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bounded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, str]]:
    """A server working on at most 2 requests at once, and its admin key."""
    server, auth = started(tmp_path_factory, "bounded", SENSORBASE_MAX_IN_FLIGHT="2")
    yield server, auth
    server.stop()


def hold(server: Server, auth: str, count: int, start: int) -> list[tuple[Client, bytes]]:
    """`count` requests in flight: each with a body larger than the server gathers before it
    starts the work (the app then reads the rest), not all sent (the rest to be sent later)."""
    held = []
    for i in range(count):
        client = Client(server)
        body = b"[" + b" " * GATHERED_BODY_BYTES + point(start + i)[1:]
        whole = request(WRITE, body, auth, "Content-Type: application/json")
        client.send(whole[:-5])
        held.append((client, whole[-5:]))
    wait_in_flight(server, count)
    return held


def wait_in_flight(server: Server, count: int) -> None:
    """Until the server has `count` requests in flight (the scrape asking is not counted)."""
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        probe = Client(server)
        probe.send(request("/metrics", method="GET"))
        status, _, body = probe.reply()
        probe.close()
        assert status == 200
        if f"sensorbase_http_in_flight {count}.0" in body.decode():
            return
        time.sleep(0.05)
    raise AssertionError(f"the server never had {count} requests in flight")


def release(held: list[tuple[Client, bytes]]) -> None:
    for client, rest in held:
        client.send(rest)
        status, _, body = client.reply()
        assert status == 200 and json.loads(body)["written"] == 1, body
        client.close()


def assert_refused(status: int, headers: dict[str, str], body: bytes) -> None:
    assert status == 503
    assert headers["retry-after"] == "1"
    assert headers["content-type"] == "application/problem+json"
    assert headers["x-content-type-options"] == "nosniff"
    problem = json.loads(body)
    assert problem["status"] == 503 and problem["type"].endswith("/unavailable")
    assert problem["title"] and problem["detail"]


def test_requests_past_max_in_flight_get_503_and_the_rest_succeed(
    bounded: tuple[Server, str],
) -> None:
    server, auth = bounded
    held = hold(server, auth, 2, start=100)
    refused = [Client(server) for _ in range(6)]
    for i, client in enumerate(refused):
        client.send(request(WRITE, point(200 + i), auth, "Content-Type: application/json"))
    for client in refused:
        assert_refused(*client.reply())
    probe = Client(server)  # never refused: a liveness probe failing under load gets restarts
    probe.send(request("/healthz", method="GET"))
    assert probe.reply()[0] == 200
    release(held)
    for client in refused:  # the same connections, kept open, are served once there is room
        client.send(request(WRITE, point(300), auth, "Content-Type: application/json"))
        status, _, body = client.reply()
        assert status == 200 and json.loads(body)["written"] == 1
        client.close()


def test_requests_whose_body_is_coming_hold_no_place(bounded: tuple[Server, str]) -> None:
    """A slow client holds a connection (until the body deadline), not a place in flight: 4
    of them, against a bound of 2, keep no one else out."""
    server, auth = bounded
    slow = []
    for i in range(4):
        client = Client(server)
        if i % 2:  # uvicorn's path
            body = json.dumps({"key": f"slow{i}"}).encode()
            client.send(request("/v1/buckets", body, auth, "Content-Type: application/json")[:-3])
        else:  # the fast lane
            client.send(request(WRITE, point(900 + i), auth, "Content-Type: application/json")[:-3])
        slow.append(client)
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:  # until the server has read their headers
        probe = Client(server)
        probe.send(request("/metrics", method="GET"))
        if 'sensorbase_http_connections{state="body"} 4.0' in probe.reply()[2].decode():
            break
        time.sleep(0.05)
    else:
        raise AssertionError("the server never saw the 4 slow bodies begin")
    wait_in_flight(server, 0)  # and none of them is in flight
    client = Client(server)
    client.send(request(WRITE, point(950), auth, "Content-Type: application/json"))
    assert client.reply()[0] == 200


def test_a_refused_request_s_body_is_read_not_reset(bounded: tuple[Server, str]) -> None:
    server, auth = bounded
    held = hold(server, auth, 2, start=400)
    large = b"[" + b" " * (LANE_BODY_BYTES + 10) + b"]"
    kept, closing = Client(server), Client(server)
    kept.send(request(WRITE, large, auth, "Content-Type: application/json")[: -len(large)])
    closing.send(
        request(WRITE, large, auth, "Content-Type: application/json", "Connection: close")[
            : -len(large)
        ]
    )
    for client in (kept, closing):
        assert_refused(*client.reply())  # answered at once, before the body
        client.send(large)  # which the server then reads (a reset would fail this send)
    assert closing.closed_by_server()  # once the body is read, and cleanly
    release(held)
    kept.send(request(WRITE, point(500), auth, "Content-Type: application/json"))
    assert kept.reply()[0] == 200  # the body was read to its end: the next request is whole
    kept.close()


def test_a_pipelined_request_is_refused_after_its_predecessor_s_reply(
    bounded: tuple[Server, str],
) -> None:
    server, auth = bounded
    held = hold(server, auth, 1, start=600)  # with the first request below, the server is full
    client = Client(server)
    create = request("/v1/buckets", b'{"key": "piped"}', auth, "Content-Type: application/json")
    client.send(create + request("/v1/buckets", b"", auth, method="GET"))
    assert client.reply()[0] == 201
    assert_refused(*client.reply())
    client.close()
    release(held)


def test_a_request_abandoned_mid_body_gives_its_place_back(bounded: tuple[Server, str]) -> None:
    server, auth = bounded
    for client, _ in hold(server, auth, 2, start=700):
        client.close()
    wait_in_flight(server, 0)
    client = Client(server)
    client.send(request(WRITE, point(800), auth, "Content-Type: application/json"))
    assert client.reply()[0] == 200
