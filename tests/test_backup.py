"""`sensorbase backup` and `sensorbase restore` of the embedded store, taken while a real server
(two worker processes) goes on acknowledging writes: the copy holds every write acknowledged
before the backup began, whole writes only, and no gap."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from sensorbase.cli import app
from tests.live import KEY_PATTERN, Server, start_server
from tests.pg import temporary_database

runner = CliRunner()
PER_WRITE = 50  # points per request: request i holds the times i*50 .. i*50+49


def run(*args: str, ok: bool = True) -> Any:
    result = runner.invoke(app, list(args), env={"SENSORBASE_DATABASE_URL": None})
    if ok:
        assert result.exit_code == 0, f"{args}: {result.stdout}\n{result.stderr}"
    else:
        assert result.exit_code == 1, f"{args}: {result.exit_code} {result.stdout}"
    return result


class Writer(threading.Thread):
    """Writes request after request to the server until stopped; counts the acknowledged."""

    def __init__(self, url: str, key: str) -> None:
        super().__init__(daemon=True)
        self.client = httpx.Client(
            base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=30
        )
        self.acked = 0
        self.stopping = threading.Event()
        self.first_acks = threading.Event()

    def run(self) -> None:
        with self.client:
            self._write()

    def _write(self) -> None:
        i = 0
        while not self.stopping.is_set():
            points = [
                {"source": "s", "field": "v", "time": i * PER_WRITE + j, "value": i}
                for j in range(PER_WRITE)
            ]
            reply = self.client.post(
                "/v1/write",
                json={"points": points},
                params={"bucket": "b", "precision": "s"},
            )
            assert reply.status_code == 200, reply.text
            i += 1
            self.acked = i
            if i == 20:
                self.first_acks.set()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[Server, str]]:
    started = start_server(tmp_path, "--workers", "2")
    key = KEY_PATTERN.findall(started.stderr())[0]
    httpx.post(
        f"{started.url}/v1/buckets",
        json={"key": "b"},
        headers={"Authorization": f"Bearer {key}"},
    ).raise_for_status()
    yield started, key
    started.stop()


@pytest.mark.slow(12)
def test_backup_while_writing_then_restore(server: tuple[Server, str], tmp_path: Path) -> None:
    live, key = server
    data_dir = tmp_path / "data"
    writer = Writer(live.url, key)
    writer.start()
    try:
        assert writer.first_acks.wait(30)
        acked_before = writer.acked
        copy = tmp_path / "copy.db"
        result = run("--json", "backup", str(copy), "--data-dir", str(data_dir), "--verify")
        assert '"verified": true' in result.stdout
        with sqlite3.connect(copy) as opened:  # one file, no WAL beside it
            assert opened.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
        opened.close()
        # Writes went on during and after the backup.
        acked_during = writer.acked
        while writer.acked < acked_during + 5 and writer.is_alive():
            writer.join(0.05)
    finally:
        writer.stopping.set()
        writer.join(30)
    assert writer.acked >= acked_during + 5, live.stderr()

    # A store in use is never replaced, with or without --force.
    refused = run("restore", str(copy), "--data-dir", str(data_dir), "--force", ok=False)
    assert "in use" in refused.stderr
    # Nor an existing file without --force, once its server stopped.
    live.stop()
    refused = run("restore", str(copy), "--data-dir", str(data_dir), ok=False)
    assert "exists" in refused.stderr and "--force" in refused.stderr
    run("restore", str(copy), "--data-dir", str(data_dir), "--force")

    # The restored store, served: every write acknowledged before the backup, whole, no gap.
    again = start_server(tmp_path)
    try:
        reply = httpx.get(
            f"{again.url}/v1/query",
            params={"bucket": "b", "aggregate": ["count", "max", "min", "sum"]},
            headers={"Authorization": f"Bearer {key}"},
        )
        assert reply.status_code == 200, reply.text
        got = reply.json()["series"][0]["aggregates"]
    finally:
        again.stop()
    count = int(got["count"])
    assert count % PER_WRITE == 0  # whole writes only
    writes = count // PER_WRITE
    assert acked_before <= writes <= writer.acked
    assert got["max"] == writes - 1 and got["min"] == 0  # no gap: writes 0 .. n-1
    assert got["sum"] == PER_WRITE * writes * (writes - 1) / 2


def test_backup_refusals(tmp_path: Path) -> None:
    missing = run("backup", str(tmp_path / "x.db"), "--data-dir", str(tmp_path / "none"), ok=False)
    assert "no Sensorbase store" in missing.stderr
    (tmp_path / "d0").mkdir()
    (tmp_path / "d0" / "sensorbase.db").write_bytes(b"")
    nowhere = run("backup", str(tmp_path / "no" / "x.db"), "--data-dir", str(tmp_path / "d0"),
                  ok=False)  # fmt: skip
    assert "no directory" in nowhere.stderr
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not a database" * 100)
    refused = run("restore", str(junk), "--data-dir", str(tmp_path / "d"), ok=False)
    assert "not a Sensorbase store" in refused.stderr
    other = tmp_path / "other.db"
    sqlite3.connect(other).execute("CREATE TABLE t (x)").connection.commit()
    refused = run("restore", str(other), "--data-dir", str(tmp_path / "d"), ok=False)
    assert "not a Sensorbase store" in refused.stderr
    assert not (tmp_path / "d" / "sensorbase.db").exists()
    pg = runner.invoke(
        app, ["backup", str(tmp_path / "y.db")], env={"SENSORBASE_DATABASE_URL": "postgresql://x/y"}
    )
    assert pg.exit_code == 1 and "pg_dump" in pg.stderr


@pytest.mark.slow(9)
def test_postgresql_pg_dump_and_pg_restore_procedure(tmp_path: Path) -> None:
    """docs/deploy.md's procedure, as written there: pg_dump --format=custom of the live
    database, pg_restore into a new empty one, a server on it; the points and keys are
    there."""
    if not (shutil.which("pg_dump") and shutil.which("pg_restore")):
        pytest.skip("pg_dump and pg_restore are not installed (apt-get install postgresql-client)")
    archive = tmp_path / "sensorbase.pgdump"
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with temporary_database() as url:
        live = start_server(tmp_path / "a", "--database-url", url)
        try:
            key = KEY_PATTERN.findall(live.stderr())[0]
            headers = {"Authorization": f"Bearer {key}"}
            httpx.post(f"{live.url}/v1/buckets", json={"key": "b"}, headers=headers)
            points = [{"source": "s", "field": "v", "time": t, "value": t} for t in range(1, 501)]
            reply = httpx.post(
                f"{live.url}/v1/write",
                json={"points": points},
                params={"bucket": "b", "precision": "s"},
                headers=headers,
            )
            assert reply.status_code == 200, reply.text
            # While the server runs: pg_dump reads one snapshot.
            subprocess.run(
                ["pg_dump", "--format=custom", f"--file={archive}", url],
                check=True, capture_output=True,
            )  # fmt: skip
        finally:
            live.stop()
    with temporary_database(migrated=False) as empty:
        subprocess.run(
            ["pg_restore", "--no-owner", "--exit-on-error", f"--dbname={empty}", str(archive)],
            check=True, capture_output=True,
        )  # fmt: skip
        again = start_server(tmp_path / "b", "--database-url", empty)
        try:
            assert not KEY_PATTERN.findall(again.stderr())  # the same installation, no new start
            got = httpx.get(
                f"{again.url}/v1/query",
                params={"bucket": "b", "aggregate": ["count", "sum"]},
                headers=headers,
            )
            assert got.status_code == 200, got.text
            assert got.json()["series"][0]["aggregates"] == {"count": 500, "sum": 125250.0}
        finally:
            again.stop()
