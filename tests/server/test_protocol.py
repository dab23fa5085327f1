"""The protocol `sensorbase serve` gives uvicorn: fast lanes answered from the parser, and a
reply's writes sent as one. The lane tests talk to a real `sensorbase serve` over raw sockets,
so that what is checked is the bytes a client gets."""

from __future__ import annotations

import asyncio
import gzip
import json
import re
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sensorbase.server.protocol import LANE_BODY_BYTES
from sensorbase.server.replies import JoinedWrites
from tests.live import KEY, Server, start_server


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

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"sockname": ("127.0.0.1", 8080), "peername": ("127.0.0.1", 40000)}.get(
            name, default
        )

    @property
    def sent(self) -> bytes:
        return b"".join(self.writes)


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


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, str]]:
    """A server (access log on), its admin key, and a bucket `lane`."""
    server = start_server(tmp_path_factory.mktemp("lane"), "--access-log")
    try:
        found = KEY.search(server.stderr())
        assert found, server.stderr()
        key = found.group(1)
        status, _, _ = exchange(server, [post("/v1/buckets", key, b'{"key": "lane"}')])[0]
        assert status == 201
        yield server, key
    finally:
        server.stop()


def post(target: str, key: str | None, body: bytes, *extra: str, version: str = "1.1") -> bytes:
    head = [f"POST {target} HTTP/{version}", "Host: sensorbase", "Content-Type: application/json"]
    if key:
        head.append(f"Authorization: Bearer {key}")
    if not any(h.lower().startswith("transfer-encoding") for h in extra):
        head.append(f"Content-Length: {len(body)}")
    return ("\r\n".join([*head, *extra]) + "\r\n\r\n").encode() + body


def exchange(server: Server, requests: list[bytes]) -> list[tuple[int, dict[str, str], bytes]]:
    """Send the requests back to back on one connection (pipelined); the replies."""
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as conn:
        conn.sendall(b"".join(requests))
        received, replies = b"", []
        while len(replies) < len(requests):
            head_end = received.find(b"\r\n\r\n")
            if head_end >= 0:
                lines = received[:head_end].decode("latin-1").split("\r\n")
                pairs = (line.split(": ", 1) for line in lines[1:])
                headers = {name.lower(): value for name, value in pairs}
                length = int(headers.get("content-length", "0"))  # (none on a 204)
                if len(received) >= head_end + 4 + length:
                    body = received[head_end + 4 : head_end + 4 + length]
                    replies.append((int(lines[0].split()[1]), headers, body))
                    received = received[head_end + 4 + length :]
                    continue
            chunk = conn.recv(65536)
            assert chunk, f"the connection closed after {len(replies)} replies"
            received += chunk
    return replies


def points(*values: float, start: int = 1_577_836_800) -> bytes:
    return json.dumps(
        [
            {"source": "s1", "field": "t", "time": start + i, "value": v}
            for i, v in enumerate(values)
        ]
    ).encode()


WRITE = "/v1/write?bucket=lane&precision=s"


def test_a_lane_reply_carries_the_route_s_headers_and_errors(served: tuple[Server, str]) -> None:
    server, key = served
    good, bad, anonymous = exchange(
        server,
        [
            post(WRITE, key, points(1.5)),
            post(WRITE, key, b'[{"source": "s1", "field": "t", "time": 1, "value": "x"}]'),
            post(WRITE, None, points(1.5)),
        ],
    )
    assert good[0] == 200 and json.loads(good[2]) == {"written": 1, "series": 1}
    assert good[1]["content-type"] == "application/json"
    assert {"date", "server"} <= good[1].keys()  # as uvicorn answers every other route
    assert bad[0] == 400 and bad[1]["content-type"] == "application/problem+json"
    assert json.loads(bad[2])["errors"][0]["field"] == "value"
    assert anonymous[0] == 401 and anonymous[1]["www-authenticate"] == "Bearer"
    log = server.stderr()
    assert re.search(r'"POST /v1/write\?bucket=lane&precision=s HTTP/1\.1" 200', log), log


def test_pipelined_lane_and_other_requests_answer_in_order(served: tuple[Server, str]) -> None:
    server, key = served
    health = b"GET /healthz HTTP/1.1\r\nHost: sensorbase\r\n\r\n"
    replies = exchange(
        server,
        [
            post(WRITE, key, points(1, start=1_577_900_000)),
            health,
            post(WRITE, key, b"[{"),
            post(WRITE, key, points(2, 3, start=1_577_900_001)),
            health,
        ],
    )
    assert [r[0] for r in replies] == [200, 200, 400, 200, 200]
    assert json.loads(replies[3][2]) == {"written": 2, "series": 1}


def test_http_1_0_and_connection_close_end_the_connection(served: tuple[Server, str]) -> None:
    server, key = served
    host, port = server.url.removeprefix("http://").split(":")
    for request in (
        post(WRITE, key, points(4, start=1_578_000_000), version="1.0"),
        post(WRITE, key, points(5, start=1_578_000_001), "Connection: close"),
    ):
        with socket.create_connection((host, int(port)), timeout=10) as conn:
            conn.sendall(request)
            received = b""
            while chunk := conn.recv(65536):  # until the server closes the connection
                received += chunk
        assert received.startswith(b"HTTP/1.1 200 OK\r\n")
        assert b"\r\nconnection: close\r\n" in received


def test_gzip_chunked_and_large_bodies(served: tuple[Server, str]) -> None:
    server, key = served
    many = points(*range(20_000), start=1_579_000_000)
    assert len(many) > LANE_BODY_BYTES  # taken by uvicorn's path, streamed and limited
    chunked = points(7, start=1_578_100_000)
    replies = exchange(
        server,
        [
            post(
                WRITE, key, gzip.compress(points(6, start=1_578_050_000)), "Content-Encoding: gzip"
            ),
            post(WRITE, key, many),
            post(
                WRITE,
                key,
                f"{len(chunked):x}\r\n".encode() + chunked + b"\r\n0\r\n\r\n",
                "Transfer-Encoding: chunked",
            ),
        ],
    )
    assert [json.loads(r[2])["written"] for r in replies] == [1, 20_000, 1]


def test_a_client_gone_before_its_reply_harms_no_one(served: tuple[Server, str]) -> None:
    server, key = served
    host, port = server.url.removeprefix("http://").split(":")
    for i in range(20):
        with socket.create_connection((host, int(port)), timeout=10) as conn:
            conn.sendall(post(WRITE, key, points(8, start=1_578_200_000 + i)))
    replies = exchange(server, [post(WRITE, key, points(9, start=1_578_300_000))])
    assert replies[0][0] == 200
    assert server.process.poll() is None


def test_a_query_is_answered_from_the_parser_without_a_body(served: tuple[Server, str]) -> None:
    """`GET /v1/query` is a lane too: no Content-Length (no body), pipelined behind a write it
    reads that write, and a bad parameter is the route's problem reply."""
    server, key = served
    query = "/v1/query?bucket=lane&source=s1&field=t&start=1580000000&mode=latest&limit=2"

    def get(target: str) -> bytes:
        head = [f"GET {target} HTTP/1.1", "Host: sensorbase", f"Authorization: Bearer {key}"]
        return ("\r\n".join(head) + "\r\n\r\n").encode()

    written, read, bad, csv, columns = exchange(
        server,
        [
            post(WRITE, key, points(10, 11, 12, start=1_580_000_000)),
            get(query),
            get(query.replace("limit=2", "limit=-2")),
            get(query + "&format=csv"),
            get(query + "&format=columns&epoch=ms"),
        ],
    )
    assert written[0] == 200
    assert read[0] == 200 and read[1]["content-type"] == "application/json"
    assert [p["value"] for p in json.loads(read[2])["series"][0]["points"]] == [12, 11]
    assert {"date", "server", "x-content-type-options"} <= read[1].keys()
    assert bad[0] == 400 and json.loads(bad[2])["errors"][0]["field"] == "limit"
    assert csv[0] == 200 and csv[1]["content-type"] == "text/csv; charset=utf-8"
    assert csv[2].decode().splitlines()[1:] == [
        "lane,s1,t,2020-01-26T00:53:22.000000Z,12.0",
        "lane,s1,t,2020-01-26T00:53:21.000000Z,11.0",
    ]
    assert columns[0] == 200 and json.loads(columns[2])["series"][0]["columns"] == {
        "time": [1_580_000_002_000, 1_580_000_001_000],
        "value": [12.0, 11.0],
    }
    log = server.stderr()
    assert re.search(r'"GET /v1/query\?bucket=lane&source=s1\S* HTTP/1\.1" 200', log), log


def test_line_protocol_writes_are_answered_from_the_parser(served: tuple[Server, str]) -> None:
    """InfluxDB's writes are lanes too: a 204 without a body, pipelined, and a partial write's
    400 in InfluxDB's shape, each with InfluxDB's headers."""
    server, key = served
    lines = b"weather,station=KX1 temperature=21.5 1580000100\n"
    bad = b"weather,station=KX1 temperature=x1 1580000101\n"

    def influx(target: str, body: bytes) -> bytes:
        head = [f"POST {target} HTTP/1.1", "Host: sensorbase", f"Authorization: Token {key}"]
        head.append(f"Content-Length: {len(body)}")
        return ("\r\n".join(head) + "\r\n\r\n").encode() + body

    one, two, partial = exchange(
        server,
        [
            influx("/write?db=lane&precision=s", lines),
            influx("/api/v2/write?bucket=lane&precision=s", lines),
            influx("/write?db=lane&precision=s", lines + bad),
        ],
    )
    assert one[0] == two[0] == 204 and one[2] == two[2] == b""
    assert one[1]["x-influxdb-version"] == "1.8.10" and "date" in one[1]
    assert partial[0] == 400 and b"partial write" in partial[2]
    assert "x-influxdb-error" in partial[1]
    log = server.stderr()
    assert re.search(r'"POST /api/v2/write\?bucket=lane&precision=s HTTP/1\.1" 204', log), log


def test_dakkio_writes_are_answered_from_the_parser(served: tuple[Server, str]) -> None:
    """dakkio's ingest routes are lanes: a 201 with dakkio's reply, pipelined, and its 404 for
    an unknown data source, in dakkio's shape."""
    server, key = served
    source = {"source": "esp32", "field": "t", "time": 1_580_000_200, "value": 1}
    body = json.dumps([source]).encode()

    def dakkio(target: str, point: dict[str, object]) -> bytes:
        data = json.dumps(point).encode()
        head = [f"POST {target} HTTP/1.1", "Host: sensorbase", f"X-API-Key: {key}",
                "Content-Type: application/json", f"Content-Length: {len(data)}"]  # fmt: skip
        return ("\r\n".join(head) + "\r\n\r\n").encode() + data

    point = {"bucketId": "lane", "dataSourceId": "esp32", "timestamp": "2020-01-26T00:56:41Z",
             "values": {"t": 21.5}}  # fmt: skip
    made, one, many, unknown = exchange(
        server,
        [
            post(WRITE, key, body),
            dakkio("/api/data", point),
            dakkio("/api/data/batch", {"bucketId": "lane", "dataPoints": [point, point]}),
            dakkio("/api/data", {**point, "dataSourceId": "nobody"}),
        ],
    )
    assert made[0] == 200
    assert one[0] == 201 and json.loads(one[2])["dataPoint"]["values"] == {"t": 21.5}
    assert many[0] == 201 and json.loads(many[2]) == {
        "message": "Batch ingested successfully",
        "count": 2,
    }
    assert unknown[0] == 404 and json.loads(unknown[2])["error"] == "Not Found"
    assert {"date", "x-content-type-options"} <= one[1].keys()
    log = server.stderr()
    assert re.search(r'"POST /api/data/batch HTTP/1\.1" 201', log), log


def test_a_lane_with_a_path_parameter_is_answered_from_the_parser(
    served: tuple[Server, str],
) -> None:
    """Datacooee's upload names its input in the path: the lane takes it from there."""
    server, key = served
    upload = (
        b'{"data": {"type": "SensorData", "attributes": {"value": "12.5", "timestamp": '
        b'"2020-10-13T14:02:39.489Z"}, "relationships": {"sensor": {"data": {"type": "Sensor",'
        b' "id": "sen1"}}}}}'
    )

    def datacooee(target: str) -> bytes:
        head = [f"POST {target} HTTP/1.1", "Host: sensorbase", "organization-id: default",
                f"organization-api-key: {key}", "Content-Type: application/vnd.api+json",
                f"Content-Length: {len(upload)}"]  # fmt: skip
        return ("\r\n".join(head) + "\r\n\r\n").encode() + upload

    made, stored, unknown = exchange(
        server,
        [
            post("/v1/buckets/lane/sources", key, b'{"key": "sen1"}'),
            datacooee("/api/external/v1/inputs/sen1/inputdata/"),
            datacooee("/api/external/v1/inputs/sen2/inputdata/"),
        ],
    )
    assert made[0] == 201, made
    assert stored[0] == 201 and stored[1]["content-type"] == "application/vnd.api+json"
    assert json.loads(stored[2])["data"]["attributes"]["value"] == "12.5"
    assert unknown[0] == 404
    log = server.stderr()
    assert re.search(r'"POST /api/external/v1/inputs/sen1/inputdata/ HTTP/1\.1" 201', log), log


async def test_the_writes_of_several_connections_go_out_after_the_turn() -> None:
    """One callback after the turn flushes every connection written to in it, each in the
    order of its writes; a write during that flush goes out after the next turn."""
    loop = asyncio.get_running_loop()
    sinks = [Recorder() for _ in range(3)]
    joined = [JoinedWrites(sink, loop) for sink in sinks]
    for i, each in enumerate(joined):
        each.write(b"%d-a" % i)
    joined[0].write(b"0-b")
    assert all(sink.writes == [] for sink in sinks)
    await asyncio.sleep(0)
    assert [sink.writes for sink in sinks] == [[b"0-a0-b"], [b"1-a"], [b"2-a"]]
    joined[2].write(b"2-c")
    joined[1].close()
    await asyncio.sleep(0)
    assert sinks[2].writes == [b"2-a", b"2-c"] and sinks[1].closed
    assert sinks[1].writes == [b"1-a"]
