"""The OpenAPI document and the server agree: schemathesis runs every check over every operation
of `/openapi.json`, against a real `sensorbase serve` on each backend, and must find nothing.

Both directions: a request the document calls valid is taken (positive_data_acceptance), one it
calls invalid is refused with a 4xx (negative_data_rejection), and every reply is documented
(status, media type, headers, body schema), never a 5xx. The configuration, with its few
exceptions and their reasons, is tests/schemathesis.toml; docs/native-api.md lists them.

The fixtures the routes name are made first, so that generated requests reach past 404: a
bucket, a source (a dakkio data source), a Databoom device, a Datacooee input in a group (an
asset), a Madevo data source, a user. The server's time window is opened to the years 1 to 9999,
because no OpenAPI document can say "not more than seven days past the server's clock": every
RFC 3339 date-time is then a time the server takes.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path

import httpx
import pytest

from tests.live import KEY, free_port
from tests.pg import temporary_database

CONFIG = Path(__file__).parent.parent / "schemathesis.toml"
BUCKET = "conformance"
DAKKIO_SOURCE = "507f1f77bcf86cd799439012"  # also the doc's own example id
# The data source dakkio's update routes change (their schema changes refuse writes to it: no
# other route writes to this one).
DAKKIO_CHANGED = "507f1f77bcf86cd799439013"
DEVICE = "6541469"  # Databoom's sample device token
INPUT = "senconformance"  # a Datacooee input: one numeric field, `value`
DATASOURCE = "67890"  # Madevo's sample data source id
USER = "conformance@example.com"
WINDOW = {  # every RFC 3339 date-time, years 1 to 9999 with any offset
    "SENSORBASE_MIN_TIME": "0001-01-01T00:00:00+23:59",
    "SENSORBASE_MAX_FUTURE_S": str(300 * 10**9),
}


@contextmanager
def serve(data_dir: Path, env: dict[str, str]) -> Iterator[tuple[str, str]]:
    """`sensorbase serve` on a free port: its URL and first-start admin key."""
    port = free_port()
    log = data_dir.parent / f"serve-{port}.log"
    # schemathesis sends wrong keys to every operation in bursts: no 429 for them here
    quiet = {"SENSORBASE_RATE_LIMIT": "", "SENSORBASE_WRONG_KEYS_PER_ADDRESS": "1000000"}
    environ = {**os.environ, **quiet, **WINDOW, **env}
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "sensorbase.cli", "serve", "--port", str(port),
             "--data-dir", str(data_dir), "--no-access-log"],
            stdout=sink, stderr=sink, env=environ,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"the server did not start:\n{log.read_text()}")
            time.sleep(0.1)
        found = KEY.search(log.read_text())
        assert found, log.read_text()
        yield url, found.group(1)
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def fixtures(url: str, key: str) -> dict[str, str]:
    """What the routes name, made through the native API; the values for the ${...} of
    tests/schemathesis.toml."""
    auth = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=url, headers=auth, timeout=30) as admin:

        def made(path: str, body: dict[str, object]) -> dict[str, object]:
            reply = admin.post(path, json=body)
            assert reply.status_code == 201, f"POST {path}: {reply.status_code} {reply.text}"
            return dict(reply.json())

        for bucket in (BUCKET, DATASOURCE):
            made("/v1/buckets", {"key": bucket})
        for source in (DAKKIO_SOURCE, DAKKIO_CHANGED, DEVICE):
            made(f"/v1/buckets/{BUCKET}/sources", {"key": source})
        made(f"/v1/buckets/{BUCKET}/sources", {"key": INPUT, "schema": {"value": {}}})
        group = made("/v1/groups", {"name": "Boiler room", "sources": [INPUT]})
        made("/v1/users", {"email": USER, "password": "conformance-password"})
    assert group["id"] == 1, "tests/schemathesis.toml names the asset by its id, 1"
    key_id, secret = key.removeprefix("sb_").split("_", 1)
    return {"SB_KEY": key, "SB_KEY_ID": key_id, "SB_KEY_SECRET": secret, "SB_ORG": "default"}


# Three runs of the one configuration: the DELETE routes apart and last, so that they delete
# nothing the other routes need while those run.
RUNS = {
    "every route but the DELETEs": ["--exclude-method", "DELETE"],
    "sequences of calls (stateful: POST, then GET or DELETE what it made)": [
        "--phases",
        "stateful",
    ],
    "the DELETE routes": ["--include-method", "DELETE", "--phases", "examples,coverage,fuzzing"],
}

# The SQLite run generates 8 examples an operation in the fuzzing phase; the PostgreSQL run,
# which looks for what the backend alone refuses (its data errors, its NUL bytes), 4: the suite
# must stay fast on two cores (over 100 operations), and the coverage phase's boundary values,
# which find most disagreements, are all kept. `schemathesis.toml`'s 15 are for a run by hand.
EXAMPLES = {"sqlite": ["--max-examples", "8"], "postgres": ["--max-examples", "4"]}


def schemathesis(
    url: str, env: dict[str, str], flags: list[str]
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "schemathesis.cli", "--config-file", str(CONFIG), "run",
         f"{url}/openapi.json", "--no-color", *flags],
        env={**os.environ, **env}, capture_output=True, text=True, timeout=600,
    )  # fmt: skip


@pytest.mark.slow(85)
@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_the_server_and_its_openapi_document_agree(tmp_path: Path, backend: str) -> None:
    database = temporary_database() if backend == "postgres" else nullcontext(None)
    with database as database_url:
        env = {"SENSORBASE_DATABASE_URL": database_url} if database_url else {}
        with serve(tmp_path / "data", env) as (url, key):
            values = fixtures(url, key)
            extra = EXAMPLES[backend]
            runs = {
                what: schemathesis(url, values, [*flags, *extra]) for what, flags in RUNS.items()
            }
    failed = {what: run for what, run in runs.items() if run.returncode != 0}
    reports = "\n\n".join(
        f"--- {what}:\n{run.stdout}\n{run.stderr}" for what, run in failed.items()
    )
    assert not failed, f"schemathesis found disagreements:\n{reports}"
