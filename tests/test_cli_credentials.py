"""Credentials through real processes: `sensorbase recover-key` mints a server administrator
key in the store of a running server (SQLite and PostgreSQL); `users update` and `users
password`; and wrong keys counted by the client address a trusted proxy forwards, alike on the
fast lane (answered from the parser: server/protocol.py) and on FastAPI's routes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from sensorbase.auth import failures
from tests import test_cli
from tests.live import KEY_PATTERN, Server, start_server
from tests.test_cli import Cli

# The fixtures of tests/test_cli.py: a live server in a subprocess and the CLI pointed at it.
server = test_cli.server
cli = test_cli.cli


def sensorbase(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sensorbase.cli", *args],
        capture_output=True,
        text=True,
        input=stdin,
        timeout=120,
    )


def whoami(url: str, key: str) -> httpx.Response:
    return httpx.get(f"{url}/v1/whoami", headers={"Authorization": f"Bearer {key}"})


# --- recover-key ---------------------------------------------------------------------------


def recover_while_serving(started: Server, *store: str) -> None:
    [first] = KEY_PATTERN.findall(started.stderr())
    org = {"key": "acme"}
    headers = {"Authorization": f"Bearer {first}"}
    assert httpx.post(f"{started.url}/v1/orgs", json=org, headers=headers).status_code == 201

    made = sensorbase("recover-key", *store)
    assert made.returncode == 0, made.stderr
    key = made.stdout.strip()
    assert KEY_PATTERN.fullmatch(f"    {key}") and key != first  # alone on stdout
    assert "shown once" in made.stderr
    who = whoami(started.url, key).json()  # the running server takes it at once
    assert who["server_admin"] is True and who["organisation"] == "default"
    assert who["scopes"] == ["admin"]
    assert "acme" in httpx.get(f"{started.url}/v1/orgs", headers=headers).text

    made = sensorbase("--json", "recover-key", *store, "--org", "acme", "--name", "lost it")
    assert made.returncode == 0, made.stderr
    reply = httpx.get(f"{started.url}/v1/keys", headers={"Authorization": f"Bearer {first}"})
    assert "lost it" not in reply.text  # another organisation's key
    assert whoami(started.url, json.loads(made.stdout)["key"]).json()["organisation"] == "acme"

    missing = sensorbase("recover-key", *store, "--org", "nowhere")
    assert missing.returncode == 1 and "organisation 'nowhere' not found" in missing.stderr
    assert "acme" in missing.stderr and "default" in missing.stderr  # what there is


@pytest.mark.slow(9)
def test_recover_key_mints_a_server_admin_key_while_a_server_runs(tmp_path: Path) -> None:
    started = start_server(tmp_path)
    try:
        recover_while_serving(started, "--data-dir", str(tmp_path / "data"))
    finally:
        started.stop()
    nothing = sensorbase("recover-key", "--data-dir", str(tmp_path / "empty"))
    assert nothing.returncode == 1 and "no Sensorbase store" in nothing.stderr
    assert not (tmp_path / "empty").exists()  # and none made


@pytest.mark.slow(7)
def test_recover_key_on_postgresql(tmp_path: Path) -> None:
    from tests.pg import temporary_database

    with temporary_database() as url:
        started = start_server(tmp_path, "--database-url", url)
        try:
            recover_while_serving(started, "--database-url", url)
        finally:
            started.stop()


# --- users update, users password ----------------------------------------------------------


def login(cli: Cli, email: str, password: str) -> httpx.Response:
    return httpx.post(f"{cli.url}/restapi/login", json={"email": email, "password": password})


def test_users_update_and_password(cli: Cli) -> None:
    cli("users", "create", "erin@example.com", "-r", "writer", "--password-stdin",
        input="first password\n")  # fmt: skip
    token = login(cli, "erin@example.com", "first password").json()["token"]
    changed = cli.json("users", "update", "erin@example.com", "--role", "reader")
    assert changed["role"] == "reader"
    assert "Error 401" in cli.fails("whoami", key=token)  # the change ended it
    assert "give --role" in cli("users", "update", "erin@example.com", ok=False).stderr

    cli("users", "update", "erin@example.com", "--password-stdin", input="second password\n")
    assert login(cli, "erin@example.com", "first password").status_code == 401
    token = login(cli, "erin@example.com", "second password").json()["token"]

    result = cli("users", "password", "--password-stdin", key=token,
                 input="second password\nthird password\n")  # fmt: skip
    fresh = result.stdout.strip()
    assert "second password" not in result.stdout and "third password" not in result.stdout
    assert cli.json("whoami", key=fresh)["scopes"] == ["data:read"]
    assert "Error 401" in cli.fails("whoami", key=token)
    assert login(cli, "erin@example.com", "third password").status_code == 200
    stderr = cli.fails("users", "password", "--password-stdin", key=fresh,
                       input="not it\nfourth password\n")  # fmt: skip
    assert "Error 401" in stderr
    stderr = cli.fails("users", "password", "--password-stdin", input="not it\nlong enough\n")
    assert "Error 403" in stderr  # (the default key is an admin key: no password)


# --- client addresses behind a proxy -------------------------------------------------------


def test_wrong_keys_count_by_the_forwarded_address_on_the_lane_and_on_routes(
    server: Server,
) -> None:
    """The server trusts its loopback proxy (uvicorn's default): the lane, answered from the
    HTTP parser, counts the X-Forwarded-For address as uvicorn gives it to FastAPI's routes."""
    wrong = {"Authorization": "Bearer sb_k0000000000000000_wrongwrongwrongwrong"}
    body = {"bucket": "b", "source": "s", "points": [{"field": "t", "value": 1}]}

    def lane(client: str) -> int:
        headers = {**wrong, "X-Forwarded-For": client}
        return httpx.post(f"{server.url}/v1/write", json=body, headers=headers).status_code

    def route(client: str) -> int:
        headers = {**wrong, "X-Forwarded-For": client}
        return httpx.get(f"{server.url}/v1/buckets", headers=headers).status_code

    statuses = [lane("203.0.113.7") for _ in range(failures.KEY_ADDRESS.free)]
    assert set(statuses) == {401}
    # One wrong key a second is forgiven: a burst this fast is blocked within a few more.
    for _ in range(100):
        if lane("203.0.113.7") == 429:
            break
    else:
        raise AssertionError("the lane never refused the flood")
    assert route("203.0.113.7") == 429  # one count, whichever way the request came in
    assert lane("203.0.113.8") == 401 and route("203.0.113.8") == 401


@pytest.mark.slow(5)
def test_an_untrusted_peer_cannot_choose_its_address(tmp_path: Path) -> None:
    started = start_server(tmp_path, "--forwarded-allow-ips", "192.0.2.1")
    wrong = {"Authorization": "Bearer sb_k0000000000000000_wrongwrongwrongwrong"}
    try:
        statuses = []
        for i in range(failures.KEY_ADDRESS.free + 100):  # each "from" another address
            headers = {**wrong, "X-Forwarded-For": f"198.51.100.{i % 250}"}
            statuses.append(httpx.get(f"{started.url}/v1/buckets", headers=headers).status_code)
            if statuses[-1] == 429:
                break
        assert statuses[-1] == 429  # all counted against the peer itself
    finally:
        started.stop()
