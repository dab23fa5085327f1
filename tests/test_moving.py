"""`sensorbase dump` and `sensorbase load`: a whole installation moved SQLite -> PostgreSQL ->
SQLite through real servers, real files and a real PostgreSQL database. Each end is read over
HTTP: the same series with the same counts and sums, positions and meta kept, and a key and
a password made before the move still work after it."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from sensorbase.cli import app
from tests.live import KEY_PATTERN, Server, start_server
from tests.pg import temporary_database

runner = CliRunner()


def run(*args: str, ok: bool = True) -> Any:
    result = runner.invoke(
        app, list(args), env={"SENSORBASE_DATABASE_URL": None, "SENSORBASE_DATA_DIR": None}
    )
    assert (result.exit_code == 0) == ok, f"{args}: {result.stdout}\n{result.stderr}"
    return result


def api(server: Server, key: str) -> httpx.Client:
    return httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {key}"})


def contents(server: Server, key: str) -> dict[str, Any]:
    """Per series: count, sum, first and last; and the first points with their extras."""
    with api(server, key) as client:
        reply = client.get(
            "/v1/query",
            params={"bucket": "farm", "aggregate": ["count", "sum", "first", "last"]},
        )
        assert reply.status_code == 200, reply.text
        found: dict[str, Any] = {
            f"{s['source']}/{s['field']}": s["aggregates"] for s in reply.json()["series"]
        }
        raw = client.get("/v1/query", params={"bucket": "farm", "source": "gps", "limit": 3})
        found["gps points"] = raw.json()["series"]
        buckets = client.get("/v1/buckets").json()
        found["buckets"] = sorted(b["key"] for b in buckets["buckets"])
        # Alert rules with their states, webhooks (docs/alerts.md).
        found["alerts"] = client.get("/v1/alerts").json()
        found["webhooks"] = client.get("/v1/webhooks").json()
    return found


def fill(server: Server, admin: str) -> tuple[str, dict[str, Any]]:
    """A bucket of two sources (one with positions and meta), a user, a group, a data key."""
    with api(server, admin) as client:
        for body in ({"key": "farm", "meta": {"site": "north"}}, {"key": "empty"}):
            client.post("/v1/buckets", json=body).raise_for_status()
        lines = [
            {"source": "barn", "field": f, "time": t, "value": t * k + 0.25}
            for t in range(1, 2001)
            for k, f in ((1, "temperature"), (2, "humidity"))
        ] + [
            {"source": "gps", "field": "speed", "time": t, "value": t / 3,
             "latitude": 48.5 + t / 1000, "longitude": 2.25, "meta": {"fix": t % 3}}
            for t in range(1, 301)
        ]  # fmt: skip
        body = "\n".join(json.dumps(line) for line in lines)
        reply = client.post(
            "/v1/write",
            content=body,
            params={"bucket": "farm", "precision": "s"},
            headers={"Content-Type": "application/x-ndjson"},
        )
        assert reply.status_code == 200, reply.text
        minted = client.post(
            "/v1/keys", json={"name": "field unit", "scopes": ["data:read", "data:write"]}
        )
        minted.raise_for_status()
        client.post(
            "/v1/users",
            json={"email": "ops@example.com", "password": "a long passphrase", "role": "reader"},
        ).raise_for_status()
        client.post("/v1/groups", json={"name": "yard", "sources": ["barn", "gps"]})
        hook = {"url": "http://127.0.0.1:9/nobody", "events": ["alert.triggered"]}
        client.post("/v1/webhooks", json=hook).raise_for_status()
        rule = {"bucket": "farm", "name": "hot", "source": "barn", "field": "temperature",
                "op": ">", "threshold": 1000}  # fmt: skip
        client.post("/v1/alerts", json=rule).raise_for_status()
        late = {"source": "barn", "field": "temperature", "value": 5000.0}  # fires
        client.post("/v1/write", json={"points": [late]}, params={"bucket": "farm"})
        deadline = time.monotonic() + 10
        while client.get("/v1/alerts").json()["alerts"][0]["states"] == []:
            assert time.monotonic() < deadline
            time.sleep(0.05)
    key = minted.json()["key"]
    return key, contents(server, key)


def signs_in(server: Server) -> bool:
    reply = httpx.post(
        f"{server.url}/restapi/login",
        json={"email": "ops@example.com", "password": "a long passphrase"},
    )
    return reply.status_code == 200


@pytest.mark.slow(9)
def test_sqlite_to_postgres_and_back(tmp_path: Path) -> None:
    for name in ("one", "two", "three"):
        (tmp_path / name).mkdir()
    first = start_server(tmp_path / "one")
    try:
        admin = KEY_PATTERN.findall(first.stderr())[0]
        key, before = fill(first, admin)
        one = tmp_path / "one.sbdump"
        # Taken while the server runs (one snapshot).
        done = json.loads(
            run("--json", "dump", str(one), "--data-dir", str(tmp_path / "one" / "data")).stdout
        )
    finally:
        first.stop()
    assert done["points"] == 4301 and done["tables"]["api_keys"] == 2
    assert "refresh_tokens" not in done["tables"]
    assert before["barn/temperature"]["count"] == 2001

    with temporary_database() as url:
        run("load", str(one), "--database-url", url)
        # A store that holds anything is refused, and keeps what it held.
        refused = run("load", str(one), "--database-url", url, ok=False)
        assert "not empty" in refused.stderr and "orgs: 1" in refused.stderr
        pg = start_server(tmp_path / "two", "--database-url", url)
        try:
            assert not KEY_PATTERN.findall(pg.stderr())  # no new first start
            assert contents(pg, key) == before
            assert contents(pg, admin) == before
            assert signs_in(pg)
            with api(pg, key) as client:  # ids go on after the moved ones
                reply = client.post(
                    "/v1/write",
                    json={"points": [{"source": "new", "field": "x", "time": 5, "value": 1}]},
                    params={"bucket": "farm", "precision": "s"},
                )
                assert reply.status_code == 200, reply.text
        finally:
            pg.stop()
        two = tmp_path / "two.sbdump"
        run("dump", str(two), "--database-url", url)

    back = tmp_path / "three"
    run("load", str(two), "--data-dir", str(back / "data"))
    sqlite = start_server(back)
    try:
        after = contents(sqlite, key)
        assert signs_in(sqlite)
    finally:
        sqlite.stop()
    assert after.pop("new/x") == {"count": 1, "sum": 1.0, "first": 1.0, "last": 1.0}
    assert after == before


def test_load_refusals(tmp_path: Path) -> None:
    missing = run("load", str(tmp_path / "none.sbdump"), "--data-dir", str(tmp_path), ok=False)
    assert "no dump file" in missing.stderr
    junk = tmp_path / "junk.sbdump"
    junk.write_bytes(b"x" * 2048)
    refused = run("load", str(junk), "--data-dir", str(tmp_path / "d"), ok=False)
    assert "cannot read" in refused.stderr or "not a `sensorbase dump`" in refused.stderr
    existing = tmp_path / "exists.sbdump"
    existing.write_text("")
    run("dump", str(existing), "--data-dir", str(tmp_path / "d"), ok=False)
    assert existing.read_text() == ""


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_dump_names_the_table_a_store_lacks(tmp_path: Path, backend: str) -> None:
    """A dump of a newer schema (a table or a column this version lacks) is refused by name,
    and the store stays empty."""
    import tarfile

    source = tmp_path / "src"
    run("dump", str(tmp_path / "a.sbdump"), "--data-dir", str(source))
    with tarfile.open(tmp_path / "a.sbdump") as tar:
        manifest = json.load(tar.extractfile("manifest.json"))  # type: ignore[arg-type]
        members = {m.name: tar.extractfile(m).read() for m in tar if m.isfile()}  # type: ignore[union-attr]
    manifest["tables"][0]["columns"].append("colour")
    members["manifest.json"] = json.dumps(manifest).encode()
    with tarfile.open(tmp_path / "b.sbdump", "w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))

    def load(*where: str) -> str:
        return str(run("load", str(tmp_path / "b.sbdump"), *where, ok=False).stderr)

    if backend == "sqlite":
        said = load("--data-dir", str(tmp_path / "target"))
        assert "colour" in said
        run("load", str(tmp_path / "a.sbdump"), "--data-dir", str(tmp_path / "target"))
    else:
        with temporary_database() as url:
            assert "colour" in load("--database-url", url)
            run("load", str(tmp_path / "a.sbdump"), "--database-url", url)


def test_a_column_and_a_table_a_later_schema_adds_travel(tmp_path: Path) -> None:
    """What another version adds to the catalog (a column of buckets, a table of rules
    referring to buckets) travels with no change to dump or load, SQLite to PostgreSQL; so do a
    bucket's retention and the summaries expired points left (a table without rowid on
    SQLite), there and back."""
    import sqlite3

    import psycopg

    source = tmp_path / "src"
    run("dump", str(tmp_path / "empty.sbdump"), "--data-dir", str(source))  # makes the schema
    with sqlite3.connect(source / "sensorbase.db") as db:
        db.execute("ALTER TABLE buckets ADD COLUMN retention_s INTEGER")
        db.execute("INSERT INTO orgs (key, name, created_us) VALUES ('o', 'O', 1)")
        db.execute(
            "INSERT INTO buckets (org_id, key, name, created_us, retention_s) "
            "VALUES (1, 'b', 'B', 1, 7776000)"
        )
        db.execute(
            "CREATE TABLE future_rules (id INTEGER PRIMARY KEY AUTOINCREMENT, "
            "bucket_id INTEGER NOT NULL REFERENCES buckets(id) ON DELETE CASCADE, "
            "above REAL, enabled INTEGER NOT NULL)"
        )
        db.execute("INSERT INTO future_rules (bucket_id, above, enabled) VALUES (1, 30.5, 1)")
        # What the retention job leaves (docs/lifecycle.md) is data: it travels too.
        db.execute("UPDATE buckets SET retention_us = 86400000000, keep_summaries = 1")
        db.executemany(
            "INSERT INTO point_summaries VALUES (7, ?, ?, 2, 1.5, 2.5, 4.0, 1.5, 2.5)",
            [(t, t + 10) for t in (300, 100)],
        )
    db.close()
    run("dump", str(tmp_path / "a.sbdump"), "--data-dir", str(source))
    with temporary_database() as url:
        with psycopg.connect(url, autocommit=True) as pg:
            pg.execute("ALTER TABLE buckets ADD COLUMN retention_s BIGINT")
            pg.execute(
                "CREATE TABLE future_rules (id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,"
                " "
                "bucket_id BIGINT NOT NULL REFERENCES buckets(id) ON DELETE CASCADE, "
                "above DOUBLE PRECISION, enabled BOOLEAN NOT NULL)"
            )
        run("load", str(tmp_path / "a.sbdump"), "--database-url", url)
        with psycopg.connect(url, autocommit=True) as pg:
            assert pg.execute("SELECT key, retention_s FROM buckets").fetchall() == [("b", 7776000)]
            assert pg.execute("SELECT bucket_id, above, enabled FROM future_rules").fetchall() == [
                (1, 30.5, True)
            ]
            # The next rule gets a new id, after the moved one.
            made = pg.execute(
                "INSERT INTO future_rules (bucket_id, enabled) VALUES (1, false) RETURNING id"
            ).fetchone()
            assert made == (2,)
            assert pg.execute("SELECT retention_us, keep_summaries FROM buckets").fetchall() == [
                (86400000000, True)
            ]
            summaries = "SELECT * FROM point_summaries ORDER BY start_us"
            moved = pg.execute(summaries).fetchall()
        assert moved == [(7, t, t + 10, 2, 1.5, 2.5, 4.0, 1.5, 2.5) for t in (100, 300)]
        run("dump", str(tmp_path / "b.sbdump"), "--database-url", url)
    back = tmp_path / "back"
    run("dump", str(tmp_path / "empty-back.sbdump"), "--data-dir", str(back))
    with sqlite3.connect(back / "sensorbase.db") as db:
        db.execute("ALTER TABLE buckets ADD COLUMN retention_s INTEGER")
        db.execute(
            "CREATE TABLE future_rules (id INTEGER PRIMARY KEY AUTOINCREMENT, bucket_id INTEGER, "
            "above REAL, enabled INTEGER NOT NULL)"
        )
    db.close()
    run("load", str(tmp_path / "b.sbdump"), "--data-dir", str(back))
    with sqlite3.connect(back / "sensorbase.db") as db:
        assert db.execute(summaries).fetchall() == moved
        assert db.execute("SELECT keep_summaries FROM buckets").fetchall() == [(1,)]
    db.close()
