"""A fast lane reads headers and query parameters as Starlette's Request does."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.requests import Request

from sensorbase.dialects.lane import Call, query_params


async def _receive() -> dict[str, Any]:
    return {"type": "http.request", "body": b"", "more_body": False}


def _scope(query: bytes, headers: list[tuple[bytes, bytes]]) -> dict[str, Any]:
    return {"type": "http", "method": "POST", "path": "/v1/write", "query_string": query,
            "headers": headers}  # fmt: skip


@pytest.mark.parametrize(
    "query",
    [
        b"",
        b"bucket=farm&precision=s",
        b"bucket=a&bucket=b",  # the last wins a lookup
        b"partial&bucket=",  # blank values kept
        b"&&bucket=x&",
        b"source=ESP32%2D001&bucket=caf%C3%A9",  # escapes: parse_qsl
        b"source=a+b",
        b"a=1=2",
    ],
)
def test_query_parameters_match_starlette(query: bytes) -> None:
    ours = query_params(query)
    starlette = Request(_scope(query, []), _receive).query_params
    assert ours == dict(starlette.items())
    for name in ("bucket", "source", "partial", "precision", "a", "missing"):
        assert ours.get(name) == starlette.get(name)


def test_headers_match_starlette() -> None:
    headers = [
        (b"content-type", b"application/json"),
        (b"x-repeated", b"first"),
        (b"x-repeated", b"second"),
        (b"authorization", b"Bearer sb_k1_secret"),
    ]
    call = Call(headers, b"", services=None, receive=_receive)  # type: ignore[arg-type]
    starlette = Request(_scope(b"", headers), _receive).headers
    for name in ("content-type", "x-repeated", "authorization", "content-encoding"):
        assert call.header(name.encode()) == starlette.get(name)
