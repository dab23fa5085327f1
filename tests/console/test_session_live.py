"""Console sessions on the real server (`sensorbase serve`): behind a trusted proxy that says
https the cookie is Secure, and the key a person signs in with appears in no log line."""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from tests.live import KEY_PATTERN, start_server


def test_secure_behind_a_trusted_proxy_and_no_key_in_the_logs(tmp_path: Path) -> None:
    server = start_server(tmp_path, "--access-log", "--forwarded-allow-ips", "127.0.0.1")
    try:
        [key] = KEY_PATTERN.findall(server.stderr())
        # The first start's banner shows the key, on purpose: the log after it must not.
        banner_end = f"export SENSORBASE_KEY={key}"
        deadline = time.monotonic() + 30
        while banner_end not in server.stderr():
            assert time.monotonic() < deadline, server.stderr()
            time.sleep(0.1)
        shown = server.stderr().index(banner_end) + len(banner_end)
        with httpx.Client(base_url=server.url) as browser:
            proxied = {"X-Forwarded-Proto": "https"}
            reply = browser.post("/console/api/session", json={"key": key}, headers=proxied)
            assert reply.status_code == 200, reply.text
            flags = {p.strip().lower() for p in reply.headers["set-cookie"].split(";")[1:]}
            assert {"secure", "httponly", "samesite=strict", "path=/"} <= flags

            plain = browser.post("/console/api/session", json={"key": key})
            assert "secure" not in plain.headers["set-cookie"].lower()
            assert browser.get("/v1/buckets").status_code == 200  # by the cookie
            wrong = browser.post("/console/api/session", json={"key": key[:-2] + "xx"})
            assert wrong.status_code == 401
            browser.delete("/console/api/session")
        # The access log is on: wait for its line of the last request (written after the reply).
        deadline = time.monotonic() + 30
        while "DELETE /console/api/session" not in server.stderr()[shown:]:
            assert time.monotonic() < deadline, server.stderr()[shown:]
            time.sleep(0.1)
    finally:
        server.stop()
    log = server.stderr()
    secret = key.split("_", 2)[2]  # sb_<id>_<secret>: the secret may hold "_" itself
    assert key not in log[shown:] and secret not in log[shown:]
