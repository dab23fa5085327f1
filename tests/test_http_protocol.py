"""The protocol `sensorbase serve` gives uvicorn: a reply's writes go out as one."""

from __future__ import annotations

import asyncio
import re
import socket
from pathlib import Path

from sensorbase.cli.http_protocol import JoinedWrites
from tests.test_cli import start_server


class Recorder(asyncio.Transport):
    """What reaches the socket."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = self.aborted = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.writes.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closed or self.aborted

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = True

    def get_write_buffer_size(self) -> int:
        return 0


async def test_writes_of_one_loop_turn_go_out_as_one() -> None:
    sink = Recorder()
    joined = JoinedWrites(sink, asyncio.get_running_loop())
    joined.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n")
    joined.write(memoryview(b"{}"))
    assert sink.writes == []
    assert joined.get_write_buffer_size() == 40
    await asyncio.sleep(0)
    assert sink.writes == [b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}"]
    joined.write(b"next")
    await asyncio.sleep(0)
    assert sink.writes[1:] == [b"next"]


async def test_close_sends_what_was_written_and_abort_drops_it() -> None:
    sink = Recorder()
    joined = JoinedWrites(sink, asyncio.get_running_loop())
    joined.writelines([b"a", b"b"])
    joined.close()
    assert sink.writes == [b"ab"] and sink.closed
    await asyncio.sleep(0)  # the scheduled flush finds nothing left to send
    assert sink.writes == [b"ab"]

    other = Recorder()
    dropped = JoinedWrites(other, asyncio.get_running_loop())
    dropped.write(b"half a reply")
    dropped.abort()
    await asyncio.sleep(0)
    assert other.writes == [] and other.aborted


def test_pipelined_requests_get_whole_replies_in_order(tmp_path: Path) -> None:
    server = start_server(tmp_path)
    try:
        host, port = server.url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=10) as conn:
            request = f"GET /healthz HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()
            missing = f"GET /nowhere HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()
            conn.sendall(request + missing + request)
            received = b""
            while received.count(b"HTTP/1.1 ") < 3 or not received.endswith(b"}"):
                chunk = conn.recv(65536)
                assert chunk, received
                received += chunk
        statuses = re.findall(rb"HTTP/1\.1 (\d{3}) ", received)
        assert statuses == [b"200", b"404", b"200"]
        assert received.count(b'"status":"ok"') == 2
    finally:
        server.stop()
