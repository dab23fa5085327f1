"""The compiled splitter of a whole plain request (server/_request.c) gives, for every request it
takes, what the httptools parser gives uvicorn's protocol (method, target, headers as the
protocol keeps them, body, keep-alive), and takes nothing the parser refuses, reads otherwise
or reads as more or less than one whole request; a lane request it takes is answered without
the parser, as the parser's path answers it."""

from __future__ import annotations

import asyncio
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httptools
import pytest
import uvicorn
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from uvicorn.server import ServerState

from sensorbase.app import wire
from sensorbase.server import protocol
from sensorbase.server.protocol import LANE_BODY_BYTES, protocol_for
from sensorbase.settings import Settings
from tests.dialects.native.test_columns import BUILDABLE
from tests.server.test_protocol import Recorder

split = protocol.split_request
needs_module = pytest.mark.skipif(split is None, reason="server/_request.c is not built")


def test_the_compiled_module_is_built() -> None:
    if split is None and (BUILDABLE or os.environ.get("SENSORBASE_REQUIRE_COMPILED") == "1"):
        pytest.fail("server/_request.c was not built: pip install -e .")


@dataclass
class Parsed:
    """What uvicorn's httptools protocol gathers of the requests in some bytes."""

    url: bytes = b""
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    body: bytes = b""
    begun: int = 0
    complete: int = 0
    parser: Any = None
    keep_alive: bool | None = None  # as the protocol's _take_lane reads it

    def on_message_begin(self) -> None:
        self.begun += 1

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:  # as uvicorn's on_header keeps it
        self.headers.append((name.lower(), value.rstrip(b" \t")))

    def on_headers_complete(self) -> None:
        parser = self.parser
        self.keep_alive = parser.get_http_version() != "1.0" and parser.should_keep_alive()

    def on_body(self, body: bytes) -> None:
        self.body += body

    def on_message_complete(self) -> None:
        self.complete += 1


def parsed(data: bytes) -> tuple[Parsed, httptools.HttpRequestParser | None]:
    """The parser's reading of `data`, and the parser (None: it refused the bytes)."""
    found = Parsed()
    parser = found.parser = httptools.HttpRequestParser(found)
    try:
        parser.feed_data(data)
    except (httptools.HttpParserError, httptools.HttpParserUpgrade):
        return found, None
    return found, parser


def check(data: bytes, max_body: int = LANE_BODY_BYTES) -> bool:
    """split agrees with the parser on `data`; whether it took it."""
    assert split is not None
    taken = split(data, max_body)
    if taken is None:
        return False
    method, url, headers, body, keep_alive = taken
    found, parser = parsed(data)
    assert parser is not None, data  # the parser reads it too
    assert (found.begun, found.complete) == (1, 1), data  # one whole request, nothing after
    assert parser.get_method() == method
    assert parser.get_http_version() == "1.1"
    assert not parser.should_upgrade()
    assert (found.url, found.headers, found.body) == (url, headers, body)
    assert keep_alive == found.keep_alive
    names = [name for name, _ in headers]
    assert names.count(b"content-length") <= 1 and len(body) <= max_body
    assert not {b"transfer-encoding", b"expect", b"upgrade"} & set(names)
    return True


WRITE = (
    b"POST /v1/write?bucket=single&precision=s HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n"
    b"Authorization: Bearer sb_k1_secret\r\nContent-Type: application/json\r\n"
    b'Content-Length: 66\r\n\r\n[{"source":"s0001","field":"value","time":1577836801,"value":1.5}]'
)


@needs_module
def test_the_benchmark_s_write_and_a_query_are_taken() -> None:
    assert check(WRITE)
    assert check(b"GET /v1/query?bucket=b HTTP/1.1\r\nHost: x\r\n\r\n")
    assert check(b"POST /v1/write HTTP/1.1\r\nconnection: Close\r\ncontent-length: 0\r\n\r\n")
    method, url, headers, body, keep_alive = split(WRITE, 100)  # type: ignore[misc]
    assert (method, url, body[:2], keep_alive) == (b"POST", WRITE.split()[1], b"[{", True)
    assert headers[1] == (b"authorization", b"Bearer sb_k1_secret")


@needs_module
@pytest.mark.parametrize(
    "data",
    [
        WRITE[:-1],  # the body not all here
        WRITE[:40],  # nor the head
        WRITE + WRITE,  # pipelined
        WRITE + b"\r\n",  # bytes after the body
        WRITE.replace(b"HTTP/1.1", b"HTTP/1.0"),
        WRITE.replace(b"Host: ", b"Host:\r\n "),  # obs-fold
        WRITE.replace(b"\r\nHost", b"\nHost"),  # a bare LF
        WRITE.replace(b"Content-Length: 66", b"Content-Length: 66\r\nContent-Length: 66"),
        WRITE.replace(b"Content-Length: 66", b"Transfer-Encoding: chunked"),
        WRITE.replace(b"Host: 127", b"Expect: 100-continue\r\nHost: 127"),
        WRITE.replace(b"Host: 127", b"Connection: upgrade\r\nUpgrade: h2c\r\nHost: 127"),
        WRITE.replace(b"Host: 127", b"Proxy-Connection: close\r\nHost: 127"),
        WRITE.replace(b"Host: 127.0.0.1:8080", "Host: é".encode()),
        WRITE.replace(b"Host: 127.0.0.1:8080", b"Host: \x01"),
        WRITE.replace(b"Host: 127.0.0.1:8080", b"Host:"),  # an empty value
        WRITE.replace(b"/v1/write", b"/v1/write#x"),
        WRITE.replace(b"/v1/write", b"http://h/v1/write"),
        WRITE.replace(b"POST", b"post"),
        WRITE.replace(b"Content-Length: 66", b"Content-Length: 0x3d"),
        WRITE.replace(b"Content-Length: 66", b"Content-Length: 1" + b"0" * 18),
        b"",
        b"\r\n" + WRITE,
    ],
)
def test_requests_left_to_the_parser(data: bytes) -> None:
    assert not check(data)


@needs_module
def test_a_body_past_the_limit_is_left_to_the_parser() -> None:
    assert check(WRITE, 66) and not check(WRITE, 65)


TOKEN = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
VISIBLE = st.characters(min_codepoint=0x21, max_codepoint=0x7E)
OWS = st.sampled_from(["", "", " ", "\t", "  ", " \t"])


@st.composite
def requests(draw: st.DrawFn) -> bytes:
    """Requests of the plain form and near it: any method, target, header names, values and
    spacing, a Content-Length right or wrong (or none), a Connection header or not."""
    method = draw(st.sampled_from(["GET", "POST", "PATCH", "PUT", "DELETE", "HEAD", "OPTIONS"]))
    target = "/" + draw(st.text(VISIBLE, max_size=30))
    body = draw(st.binary(max_size=40))
    headers = [
        (draw(st.text(TOKEN, min_size=1, max_size=12)), draw(st.text(VISIBLE, max_size=12)))
        for _ in range(draw(st.integers(0, 4)))
    ]
    length = draw(st.sampled_from([str(len(body)), str(len(body)), "0", str(len(body) + 1), None]))
    if length is not None:
        headers.insert(draw(st.integers(0, len(headers))), ("Content-Length", length))
    if draw(st.booleans()):
        value = draw(st.sampled_from(["close", "keep-alive", "Close", "KEEP-ALIVE", "upgrade"]))
        headers.insert(draw(st.integers(0, len(headers))), ("Connection", value))
    head = f"{method} {target} HTTP/1.1\r\n" + "".join(
        f"{name}:{draw(OWS)}{value}{draw(OWS)}\r\n" for name, value in headers
    )
    return head.encode() + b"\r\n" + body


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """A request with bytes changed, inserted, removed or cut off."""
    data = bytearray(draw(st.one_of(requests(), st.just(WRITE))))
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, len(data)))
        byte = draw(
            st.one_of(st.sampled_from(b" \t\r\n:/?#\x00\x7f\x80\xffAz0"), st.integers(0, 255))
        )
        action = draw(st.sampled_from(["set", "insert", "delete", "cut"]))
        if action == "insert":
            data.insert(at, byte)
        elif at < len(data):
            if action == "set":
                data[at] = byte
            elif action == "delete":
                del data[at]
            else:
                del data[at:]
    return bytes(data)


@needs_module
@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(requests())
def test_plain_requests(data: bytes) -> None:
    check(data)


@needs_module
@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(mutated(), st.binary(max_size=80)))
def test_mutations_and_garbage(data: bytes) -> None:
    check(data)


# --- a lane request taken whole, against the parser's path --------------------------------


class CountingParser:
    """The connection's httptools parser, its feeds counted."""

    def __init__(self, parser: Any) -> None:
        self.parser, self.fed = parser, 0

    def feed_data(self, data: bytes) -> None:
        self.fed += 1
        self.parser.feed_data(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.parser, name)


async def test_a_lane_request_taken_whole_is_answered_as_the_parser_answers_it(
    tmp_path: Path,
) -> None:
    """Each request sent whole (split) and in two reads (the parser): the same replies, byte
    for byte but the Date header, on a real store at durability=full."""
    settings_ = Settings(data_dir=tmp_path / "data", rate_limit="", log_level="warning")
    wiring = wire(settings_)
    svc = wiring.services
    key = svc.start()
    try:
        assert key is not None
        who = svc.keys.verify(key.key_id, key.secret)
        await svc.catalog.buckets.create(who, "b", "b")
        config = uvicorn.Config(wiring.app, http=protocol_for(wiring), log_level="warning")
        config.load()
        cls = protocol_for(wiring)
        state = ServerState()
        auth = f"Authorization: Bearer {key.token}\r\n"

        def write(
            body: bytes, *extra: str, target: str = "/v1/write?bucket=b&precision=s"
        ) -> bytes:
            head = f"POST {target} HTTP/1.1\r\nHost: x\r\n" + "".join(extra)
            return (head + f"Content-Length: {len(body)}\r\n\r\n").encode() + body

        requests_ = [
            write(b'[{"source":"s","field":"t","time":1577836801,"value":1.5}]', auth),
            write(b'[{"source":"s","field":"t","time":1577836802,"value":"x"}]', auth),
            write(b'[{"source":"s","field":"","time":1577836803,"value":1}]', auth),
            write(b'[{"source":"s","field":"t","time":1577836804,"value":1}]'),
            write(b"[]", auth, "Content-Type: text/plain\r\n"),
            write(b'[{"source":"s","field":"t","time":1,"value":1}]', auth, target="/v1/write"),
            b"GET /v1/query?bucket=b&source=s&field=t HTTP/1.1\r\nHost: x\r\n" + auth.encode()
            + b"\r\n",
            write(b'[{"source":"s","field":"t","time":1577836805,"value":2}]', auth,
                  "Connection: close\r\n"),
        ]  # fmt: skip

        async def answered(data: bytes, pieces: int) -> tuple[bytes, int]:
            conn = cls(config=config, server_state=state, app_state={}, _loop=loop)
            sink = Recorder()
            conn.connection_made(sink)
            counting = CountingParser(conn.parser)
            conn.parser = counting  # type: ignore[assignment]
            cut = len(data) // 2
            for part in [data] if pieces == 1 else [data[:cut], data[cut:]]:
                conn.data_received(part)
            for _ in range(500):  # until the reply is whole
                await asyncio.sleep(0.01)
                head, _, body = sink.sent.partition(b"\r\n\r\n")
                length = re.search(rb"content-length: (\d+)", head)
                if length and len(body) >= int(length.group(1)):
                    break
            return sink.sent, counting.fed

        loop = asyncio.get_running_loop()
        statuses: list[int] = []
        for data in requests_:
            whole, fed_whole = await answered(data, 1)
            halves, fed_halves = await answered(data, 2)
            assert fed_whole == 0 and fed_halves == 2, data  # split, then the parser
            statuses.append(int(whole.split(b" ", 2)[1]))

            def undated(reply: bytes) -> bytes:
                return b"\r\n".join(
                    line for line in reply.split(b"\r\n") if not line.startswith(b"date: ")
                )

            assert undated(whole) == undated(halves), (whole, halves)
        assert statuses == [200, 400, 400, 401, 415, 400, 200, 200]
    finally:
        svc.stop()
