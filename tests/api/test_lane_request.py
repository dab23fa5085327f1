"""The fast lane's Request reads headers and query parameters as Starlette's does."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.requests import Request

from sensorbase.dialects.base import LaneRequest


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
        b"source=ESP32%2D001&bucket=caf%C3%A9",  # escapes: Starlette's parsing
        b"source=a+b",
        b"a=1=2",
    ],
)
def test_query_parameters_match_starlette(query: bytes) -> None:
    lane = LaneRequest(_scope(query, []), _receive)
    starlette = Request(_scope(query, []), _receive)
    assert list(lane.query_params.multi_items()) == list(starlette.query_params.multi_items())
    for name in ("bucket", "source", "partial", "precision", "a", "missing"):
        assert lane.query_params.get(name) == starlette.query_params.get(name)
        assert (name in lane.query_params) == (name in starlette.query_params)


def test_headers_match_starlette() -> None:
    headers = [
        (b"content-type", b"application/json"),
        (b"x-repeated", b"first"),
        (b"x-repeated", b"second"),
        (b"authorization", b"Bearer sb_k1_secret"),
    ]
    lane = LaneRequest(_scope(b"", headers), _receive)
    starlette = Request(_scope(b"", headers), _receive)
    for name in ("Content-Type", "x-repeated", "AUTHORIZATION", "content-encoding"):
        assert lane.headers.get(name) == starlette.headers.get(name)
        assert (name in lane.headers) == (name in starlette.headers)
    assert lane.headers["x-repeated"] == starlette.headers["x-repeated"] == "first"
    assert lane.headers.getlist("x-repeated") == ["first", "second"]
    with pytest.raises(KeyError):
        lane.headers["content-encoding"]
