"""One real `sensorbase serve` for the client's tests, and a fresh bucket for each test."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.live import KEY_PATTERN, Server, start_server

_numbers = itertools.count()


@dataclass
class Live:
    server: Server
    key: str

    @property
    def url(self) -> str:
        return self.server.url

    def bucket(self) -> str:
        """A new bucket of the first organisation."""
        name = f"b{next(_numbers)}"
        reply = httpx.post(
            f"{self.url}/v1/buckets",
            json={"key": name},
            headers={"Authorization": f"Bearer {self.key}"},
        )
        assert reply.status_code == 201, reply.text
        return name


def server_key(server: Server) -> str:
    found = KEY_PATTERN.search(server.stderr())
    assert found, server.stderr()
    return found.group(1)


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    server = start_server(Path(tmp_path_factory.mktemp("client-server")))
    try:
        yield Live(server, server_key(server))
    finally:
        server.stop()
