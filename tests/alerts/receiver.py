"""A real webhook receiver for the tests: an HTTP server on a free port, in a thread, that
records what it is sent and fails the first `fail_first` deliveries with a 500."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from sensorbase.alerts.signing import (
    DELIVERY_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    verify,
)


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> dict[str, Any]:
        return dict(json.loads(self.body))

    def signed_by(self, secret: str) -> bool:
        return verify(
            secret,
            self.headers[TIMESTAMP_HEADER.lower()],
            self.body,
            self.headers[SIGNATURE_HEADER.lower()],
        )


@dataclass
class Receiver:
    url: str
    fail_first: int = 0
    attempts: list[Received] = field(default_factory=list)  # every request, failed ones too
    accepted: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def unique(self) -> dict[str, Received]:
        """Accepted deliveries by id: what a receiver that drops duplicates keeps."""
        with self.lock:
            return {r.headers[DELIVERY_HEADER.lower()]: r for r in self.accepted}

    def wait(self, count: int, timeout_s: float = 20.0) -> list[Received]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.accepted) >= count:
                    return list(self.accepted)
            time.sleep(0.02)
        raise AssertionError(f"{len(self.accepted)} deliveries accepted, {count} awaited")


@contextmanager
def receiver(fail_first: int = 0, port: int = 0) -> Iterator[Receiver]:
    state: Receiver

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            got = Received({k.lower(): v for k, v in self.headers.items()}, body)
            with state.lock:
                state.attempts.append(got)
                failing = len(state.attempts) <= state.fail_first
                if not failing:
                    state.accepted.append(got)
            self.send_response(500 if failing else 204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    state = Receiver(f"http://127.0.0.1:{server.server_address[1]}/hook", fail_first)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
