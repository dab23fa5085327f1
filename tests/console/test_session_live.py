"""Console sessions on the real server (`sensorbase serve`): behind a trusted proxy that says
https the cookie is Secure, and the key a person signs in with appears in no log line."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.live import KEY_PATTERN, start_server


def test_secure_behind_a_trusted_proxy_and_no_key_in_the_logs(tmp_path: Path) -> None:
    server = start_server(tmp_path, "--access-log", "--forwarded-allow-ips", "127.0.0.1")
    try:
        [key] = KEY_PATTERN.findall(server.stderr())
        shown = len(server.stderr())  # (the first start's banner shows it once, on purpose)
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
    finally:
        server.stop()
    log = server.stderr()
    assert "/console/api/session" in log[shown:]  # the access log was on
    secret = key.rsplit("_", 1)[1]
    assert key not in log[shown:] and secret not in log[shown:]
