"""The `sensorbase` command against a real server: `sensorbase serve` runs in a subprocess on a
free port with a temporary data directory; its first-start banner gives the admin key; every
client command is then driven through typer's CliRunner and checked by what the server holds."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from sensorbase.cli import app, hoist_global_options
from tests.live import KEY_PATTERN, Server, free_port, start_server

runner = CliRunner()


@dataclass
class Cli:
    """The CLI pointed at the test server, with the bootstrap admin key by default."""

    url: str
    admin: str

    def __call__(
        self, *args: str, key: str | None = None, input: str | None = None, ok: bool = True
    ) -> Any:
        result = runner.invoke(
            app,
            ["--url", self.url, "--key", key or self.admin, *args],
            input=input,
            env={"SENSORBASE_URL": None, "SENSORBASE_KEY": None, "SENSORBASE_BUCKET": None},
            catch_exceptions=False,
        )
        if ok:
            assert result.exit_code == 0, f"{args}: {result.stdout}\n{result.stderr}"
        return result

    def json(self, *args: str, key: str | None = None, input: str | None = None) -> Any:
        return json.loads(self("--json", *args, key=key, input=input).stdout)

    def fails(self, *args: str, key: str | None = None, input: str | None = None) -> str:
        """The stderr of a command that must fail with exit status 1."""
        result = self(*args, key=key, input=input, ok=False)
        assert result.exit_code == 1, f"{args}: {result.exit_code}\n{result.stdout}"
        return str(result.stderr)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    started = start_server(tmp_path_factory.mktemp("cli-server"))
    yield started
    started.stop()


@pytest.fixture(scope="module")
def cli(server: Server) -> Cli:
    keys = KEY_PATTERN.findall(server.stderr())
    assert len(keys) == 1, server.stderr()
    return Cli(server.url, keys[0])


def points_of(reply: dict[str, Any]) -> dict[str, list[tuple[str, float]]]:
    return {s["field"]: [(p["time"], p["value"]) for p in s["points"]] for s in reply["series"]}


def count(cli: Cli, bucket: str, *args: str) -> int:
    reply = cli.json("query", "--bucket", bucket, "--aggregate", "count", *args)
    return sum(int(s["aggregates"]["count"]) for s in reply["series"])


# --- serve ---------------------------------------------------------------------------------


def test_serve_refuses_bad_settings_readably(tmp_path: Path) -> None:
    result = runner.invoke(app, ["serve", "--data-dir", str(tmp_path)], env={
        "SENSORBASE_DURABILITY": "sometimes"})  # fmt: skip
    assert result.exit_code == 1
    assert "invalid settings" in result.stderr
    assert "durability" in result.stderr


# --- administration ------------------------------------------------------------------------


def test_orgs_create_list_key_delete(cli: Cli) -> None:
    created = cli.json("orgs", "create", "initech", "--name", "Initech")
    assert created["key"] == "initech" and created["name"] == "Initech"
    assert "initech" in [o["key"] for o in cli.json("orgs", "list")["orgs"]]
    assert "Initech" in cli("orgs", "list").stdout

    result = cli("orgs", "key", "initech")
    org_admin = result.stdout.strip()
    assert org_admin.startswith("sb_") and "\n" not in org_admin
    assert "shown once" in result.stderr
    who = cli.json("whoami", key=org_admin)
    assert who["organisation"] == "initech" and who["scopes"] == ["admin"]
    assert who["server_admin"] is False
    assert "Forbidden" in cli.fails("orgs", "list", key=org_admin)

    assert "Conflict" in cli.fails("orgs", "create", "initech")
    cli("orgs", "delete", "initech", "--yes")
    assert "initech" not in [o["key"] for o in cli.json("orgs", "list")["orgs"]]
    assert "401" in cli.fails("whoami", key=org_admin)


def test_buckets_create_list_show_delete(cli: Cli) -> None:
    created = cli.json("buckets", "create", "greenhouse", "--description", "north wing",
                       "--meta", '{"site": "north"}')  # fmt: skip
    assert created["meta"] == {"site": "north"} and created["description"] == "north wing"
    listed = cli.json("buckets", "list")
    assert "greenhouse" in [b["key"] for b in listed["buckets"]]
    assert "greenhouse" in cli("buckets", "list").stdout
    shown = cli.json("buckets", "show", "greenhouse")
    assert shown["stats"] == {"sources": 0, "points": 0, "keys": 0}
    assert shown["status"] == "active"

    # Archived, it refuses writes (409, said readably) and still shows; active again, it writes.
    updated = cli.json("buckets", "update", "greenhouse", "--status", "archived", "--name", "GH")
    assert (updated["status"], updated["name"]) == ("archived", "GH")
    point = '[{"source": "s", "field": "f", "value": 1}]'
    stderr = cli.fails("write", "-b", "greenhouse", input=point)
    assert "409" in stderr and "archived" in stderr
    assert cli.json("buckets", "show", "greenhouse")["status"] == "archived"
    assert (
        "--status" in cli("buckets", "update", "greenhouse", "--status", "frozen", ok=False).stderr
    )
    cli("buckets", "update", "greenhouse", "--status", "active")
    assert "Wrote 1 point(s)" in cli("write", "-b", "greenhouse", input=point).stderr

    # Without --yes the command asks; "n" keeps the bucket.
    result = cli("buckets", "delete", "greenhouse", input="n\n", ok=False)
    assert result.exit_code == 1
    cli("buckets", "show", "greenhouse")
    cli("buckets", "delete", "greenhouse", input="y\n")
    stderr = cli.fails("buckets", "show", "greenhouse")
    assert "Error 404" in stderr and "greenhouse" in stderr
    assert "--meta" in cli("buckets", "create", "x", "--meta", "[1]", ok=False).stderr


def test_sources_with_declared_schemas(cli: Cli, tmp_path: Path) -> None:
    cli("buckets", "create", "plant")
    created = cli.json("sources", "create", "ESP32-001", "--bucket", "plant",
                       "--schema", "temperature:number:°C", "--schema", "status:string",
                       "--meta", '{"room": "lab"}')  # fmt: skip
    assert created["schema"] == {
        "temperature": {"type": "number", "unit": "°C", "description": None},
        "status": {"type": "string", "unit": None, "description": None},
    }
    schema_file = tmp_path / "schema.json"
    schema_file.write_text(json.dumps({"humidity": {"type": "number", "unit": "%"}}))
    cli("sources", "create", "ESP32-002", "-b", "plant", "--schema-file", str(schema_file))
    shown = cli.json("sources", "show", "ESP32-002", "-b", "plant")
    assert shown["schema"]["humidity"]["unit"] == "%"
    listed = cli("sources", "list", "-b", "plant").stdout
    assert "temperature:number:°C" in listed and "humidity:number:%" in listed

    # The server enforces the schema; the CLI shows its refusal.
    stderr = cli.fails("sources", "create", "bad", "-b", "plant", "--schema", "t:float")
    assert "Error 400" in stderr and "schema.t.type" in stderr

    cli("sources", "delete", "ESP32-002", "-b", "plant", "--yes")
    keys = [s["key"] for s in cli.json("sources", "list", "-b", "plant")["sources"]]
    assert keys == ["ESP32-001"]


def test_keys_create_use_list_revoke(cli: Cli) -> None:
    cli("buckets", "create", "vault")
    cli.json("write", "-b", "vault", "--source", "s1", input=json.dumps(
        [{"field": "t", "value": 1.0, "time": "2026-01-01T00:00:00Z"}]))  # fmt: skip
    result = cli("keys", "create", "--name", "reader", "--scope", "data:read", "-b", "vault")
    reader = result.stdout.strip()
    assert reader.startswith("sb_") and "shown once" in result.stderr
    key_id = reader.split("_")[1]

    assert count(cli, "vault") == 1
    assert points_of(cli.json("query", "-b", "vault", key=reader)) == {
        "t": [("2026-01-01T00:00:00.000000Z", 1.0)]
    }
    stderr = cli.fails("write", "-b", "vault", "--source", "s1", key=reader, input="[]")
    assert "Error 403" in stderr and "data:write" in stderr

    listed = {k["id"]: k for k in cli.json("keys", "list")["keys"]}
    assert listed[key_id]["scopes"] == ["data:read"] and listed[key_id]["bucket"] == "vault"
    assert listed[key_id]["revoked"] is None

    cli("keys", "revoke", key_id)
    stderr = cli.fails("query", "-b", "vault", key=reader)
    assert "Error 401" in stderr and "revoked" in stderr
    assert cli.json("keys", "list")["keys"][-1]["revoked"] is not None


def test_token_exchange_and_refresh(cli: Cli) -> None:
    access = cli("token").stdout.strip()
    assert access and not access.startswith("sb_")
    assert cli.json("whoami", key=access)["organisation"] == "default"

    pair = cli.json("token")
    assert pair["token_type"] == "bearer" and pair["refresh_token"]
    renewed = cli("token", "--refresh", pair["refresh_token"]).stdout.strip()
    assert cli.json("whoami", key=renewed)["server_admin"] is True

    key_id = cli.admin.split("_")[1]
    stderr = cli.fails("token", "--client-id", key_id, "--client-secret", "wrong")
    assert "Error 401" in stderr and "invalid_client" in stderr


# --- data ----------------------------------------------------------------------------------


def test_write_then_query_in_every_form(cli: Cli, tmp_path: Path) -> None:
    cli("buckets", "create", "farm")
    body = tmp_path / "points.json"
    body.write_text(json.dumps({"bucket": "farm", "points": [
        {"source": "ESP32-001", "field": "temperature", "value": 21.5,
         "time": "2026-11-21T10:00:00Z"},
        {"source": "ESP32-001", "fields": {"temperature": 21.7, "humidity": 40.2},
         "time": 1795255210, "latitude": 48.85, "longitude": 2.35, "meta": {"fw": "1.2"}},
    ]}))  # fmt: skip
    assert cli.json("write", str(body), "--precision", "s") == {"written": 3, "series": 2}
    # NDJSON from stdin, with the bucket and source as defaults
    lines = "\n".join(json.dumps({"field": "humidity", "value": v, "time": t}) for t, v in [
        ("2026-11-21T10:00:00Z", 41.0), ("2026-11-21T10:00:30+00:00", 42.0)])  # fmt: skip
    assert "Wrote 2 point(s)" in cli("write", "-b", "farm", "--source", "ESP32-001",
                                     input=lines).stderr  # fmt: skip

    reply = cli.json("query", "-b", "farm", "--source", "ESP32-001")
    assert points_of(reply) == {
        "humidity": [
            ("2026-11-21T10:00:00.000000Z", 41.0),
            ("2026-11-21T10:00:10.000000Z", 40.2),
            ("2026-11-21T10:00:30.000000Z", 42.0),
        ],
        "temperature": [
            ("2026-11-21T10:00:00.000000Z", 21.5),
            ("2026-11-21T10:00:10.000000Z", 21.7),
        ],
    }
    with_extras = reply["series"][0]["points"][1]
    assert with_extras["latitude"] == 48.85 and with_extras["meta"] == {"fw": "1.2"}

    rows = list(csv.reader(io.StringIO(cli("query", "-b", "farm", "-f", "temperature",
                                            "--format", "csv").stdout)))  # fmt: skip
    assert rows == [
        ["bucket", "source", "field", "time", "value"],
        ["farm", "ESP32-001", "temperature", "2026-11-21T10:00:00.000000Z", "21.5"],
        ["farm", "ESP32-001", "temperature", "2026-11-21T10:00:10.000000Z", "21.7"],
    ]
    latest = cli.json("query", "-b", "farm", "--mode", "latest", "-f", "humidity")
    assert points_of(latest) == {"humidity": [("2026-11-21T10:00:30.000000Z", 42.0)]}
    stats = cli.json("query", "-b", "farm", "-f", "humidity", "-a", "min", "-a", "max",
                     "-a", "count")  # fmt: skip
    assert stats["series"][0]["aggregates"] == {"min": 40.2, "max": 42.0, "count": 3}
    buckets = cli.json(
        "query",
        "-b",
        "farm",
        "-f",
        "humidity",
        "-a",
        "count",
        "--every",
        "20s",
        "--start",
        "2026-11-21T10:00:00Z",
        "--end",
        "2026-11-21T10:01:00Z",
    )
    assert [b["count"] for b in buckets["series"][0]["buckets"]] == [2, 1]
    window = ("--start", "2026-11-21T10:00:00Z", "--end", "2026-11-21T10:00:40Z")
    filled = cli.json("query", "-b", "farm", "-f", "humidity", "-a", "median", "--every", "10s",
                      "--fill", "linear", *window)  # fmt: skip
    assert [b["median"] for b in filled["series"][0]["buckets"]] == [
        41.0,
        40.2,
        pytest.approx(41.1),
        42.0,
    ]
    exact = cli.json("query", "-b", "farm", "-f", "humidity", "-a", "spread,integral",
                     "--integral-unit", "1m", *window)  # fmt: skip
    assert exact["series"][0]["aggregates"] == {
        "spread": pytest.approx(1.8),
        "integral": pytest.approx((406 + 822) / 60),
    }
    assert "fill" in cli.fails("query", "-b", "farm", "-a", "avg", "--fill", "previous")

    table = cli("query", "-b", "farm", "-f", "temperature").stdout
    assert "21.5" in table and "21.7" in table and "ESP32-001" in table
    page = cli("query", "-b", "farm", "-f", "humidity", "--limit", "1")
    assert "--cursor" in page.stderr
    cursor = page.stderr.split("--cursor ")[1].split()[0]
    rest = cli.json("query", "-b", "farm", "-f", "humidity", "--cursor", cursor)
    assert len(points_of(rest)["humidity"]) == 2


def test_bad_points_are_all_listed_and_nothing_is_stored(cli: Cli) -> None:
    cli("buckets", "create", "strict")
    bad = json.dumps({"bucket": "strict", "source": "s", "points": [
        {"field": "t", "time": "2026-01-01T00:00:00Z"},
        {"field": "t", "value": 1.0, "time": "2026-01-01T00:00:01Z"},
        {"field": "t", "value": 2.0, "time": "yesterday"},
    ]})  # fmt: skip
    stderr = cli.fails("write", input=bad)
    assert "Error 400" in stderr
    assert "item 0, field 'value': is required" in stderr
    assert "item 2, field 'time': 'yesterday' is not an ISO 8601 time" in stderr
    problem = json.loads(cli.fails("--json", "write", input=bad))
    assert problem["status"] == 400 and len(problem["errors"]) == 2
    assert cli.json("buckets", "show", "strict")["stats"]["points"] == 0

    # --partial stores the good points; points the server's checks refuse are listed
    future = json.dumps({"bucket": "strict", "source": "s", "points": [
        {"field": "t", "value": 1.0, "time": "2026-01-01T00:00:01Z"},
        {"field": "t", "value": 2.0, "time": "2999-01-01T00:00:00Z"},
    ]})  # fmt: skip
    partial = cli("write", "--partial", input=future)
    assert "Wrote 1 point(s)" in partial.stderr and "1 point(s) refused" in partial.stderr
    assert "item 1, field 'time'" in partial.stderr
    assert cli.json("buckets", "show", "strict")["stats"]["points"] == 1


def csv_text(header: list[str], rows: list[list[Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()


def test_import_csv_in_batches(cli: Cli, tmp_path: Path) -> None:
    cli("buckets", "create", "lab")
    start_s = 1_780_000_000
    rows = [
        [f"{start_s + 60 * i}", 20 + i % 10, 40 + i % 7 if i % 3 else ""] for i in range(12_000)
    ]
    wide = tmp_path / "wide.csv"
    wide.write_text(csv_text(["time", "temperature", "humidity"], rows))
    summary = cli.json("import", str(wide), "-b", "lab", "--source", "dev1", "--precision", "s")
    assert summary == {"rows": 12_000, "written": 20_000, "batches": 4, "rejected": []}
    assert count(cli, "lab", "-f", "temperature") == 12_000
    assert count(cli, "lab", "-f", "humidity") == 8_000
    last = cli.json("query", "-b", "lab", "--mode", "latest")
    newest = datetime.fromtimestamp(start_s + 60 * 11_999, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    assert points_of(last)["temperature"] == [(f"{newest}.000000Z", 29.0)]

    narrow = tmp_path / "narrow.csv"
    narrow.write_text(csv_text(["time", "value"], [
        ["2026-03-01T00:00:00Z", 1.5], ["2026-03-01T01:00:00+01:00", 2.5]]))  # fmt: skip
    assert "--field" in cli.fails("import", str(narrow), "-b", "lab", "--source", "dev2")
    result = cli("import", str(narrow), "-b", "lab", "--source", "dev2", "--field", "pressure")
    assert "Imported 2 point(s) from 2 row(s)" in result.stderr
    # The same instant twice: the second value replaced the first.
    assert points_of(cli.json("query", "-b", "lab", "--source", "dev2")) == {
        "pressure": [("2026-03-01T00:00:00.000000Z", 2.5)]
    }


def test_import_names_the_line_of_a_bad_cell(cli: Cli, tmp_path: Path) -> None:
    cli("buckets", "create", "bench")
    rows: list[list[Any]] = [
        [f"2026-04-01T00:{i // 60:02d}:{i % 60:02d}Z", i] for i in range(3_000)
    ]
    rows[2_500][1] = "n/a"  # line 2502: the header is line 1
    bad = tmp_path / "bad.csv"
    bad.write_text(csv_text(["time", "level"], rows))
    stderr = cli.fails("import", str(bad), "-b", "bench", "--source", "tank",
                       "--batch-size", "1000")  # fmt: skip
    assert "line 2502, column 'level': 'n/a' is not a number" in stderr
    assert "batch 3, lines 2002-3001" in stderr and "2000 point(s) of earlier batches" in stderr
    assert count(cli, "bench") == 2_000

    partial = cli.json("import", str(bad), "-b", "bench", "--source", "tank", "--partial")
    assert partial["written"] == 2_999
    assert partial["rejected"] == ["line 2502, column 'level': 'n/a' is not a number"]
    assert count(cli, "bench") == 2_999

    # What the server refuses is named by line too.
    rows[2_500][1] = 1.0
    rows[10][0] = "yesterday"
    bad.write_text(csv_text(["time", "level"], rows))
    cli("buckets", "create", "bench2")
    stderr = cli.fails("import", str(bad), "-b", "bench2", "--source", "tank")
    assert "line 12, column 'time': 'yesterday' is not an ISO 8601 time" in stderr
    assert "batch 1, lines 2-3001" in stderr
    assert cli.json("buckets", "show", "bench2")["stats"]["points"] == 0


def test_export_follows_every_page_and_round_trips(cli: Cli, tmp_path: Path) -> None:
    cli("buckets", "create", "source-bucket")
    points = [{"source": f"dev{i % 3}", "field": "t", "value": float(i),
               "time": 1_780_000_000_000 + i * 1000} for i in range(2_500)]  # fmt: skip
    cli("write", "-b", "source-bucket", "--precision", "ms", input=json.dumps(points))
    [extra] = [{"source": "dev0", "field": "gps", "value": 1.0, "time": "2026-06-01T00:00:00Z",
                "latitude": 1.5, "longitude": 2.5, "meta": {"fix": "3d"}}]  # fmt: skip
    cli("write", "-b", "source-bucket", input=json.dumps([extra]))

    exported = tmp_path / "all.csv"
    summary = cli.json("export", "-b", "source-bucket", "--page-size", "300",
                       "-o", str(exported))  # fmt: skip
    assert summary["points"] == 2_501 and summary["pages"] >= 9
    rows = list(csv.DictReader(io.StringIO(exported.read_text())))
    assert len(rows) == 2_501
    assert sorted(float(r["value"]) for r in rows if r["field"] == "t") == [
        float(i) for i in range(2_500)
    ]

    # CSV to stdout, and back in through `import` (its bucket/source/field columns)
    text = cli("export", "-b", "source-bucket", "-f", "t", "--source", "dev1").stdout
    cli("buckets", "create", "copy-csv")
    copy = tmp_path / "copy.csv"
    copy.write_text(text.replace(",source-bucket,", ",copy-csv,").replace(
        "\nsource-bucket,", "\ncopy-csv,"))  # fmt: skip
    assert cli.json("import", str(copy))["written"] == 833
    assert count(cli, "copy-csv") == 833

    # NDJSON keeps position and metadata, and is what `write` takes
    ndjson = tmp_path / "all.ndjson"
    cli("export", "-b", "source-bucket", "-o", str(ndjson), "--page-size", "1000")
    lines = [json.loads(line) for line in ndjson.read_text().splitlines()]
    assert len(lines) == 2_501
    gps = next(line for line in lines if line["field"] == "gps")
    assert gps["latitude"] == 1.5 and gps["meta"] == {"fix": "3d"}
    cli("buckets", "create", "copy-ndjson")
    moved = "\n".join(json.dumps({**line, "bucket": "copy-ndjson"}) for line in lines)
    written = cli.json("write", "--ndjson", input=moved)
    assert written["written"] == 2_501
    assert count(cli, "copy-ndjson") == 2_501


# --- errors and options --------------------------------------------------------------------


def test_errors_are_readable_with_a_nonzero_status(cli: Cli) -> None:
    unreachable = Cli(f"http://127.0.0.1:{free_port()}", cli.admin)
    stderr = unreachable.fails("buckets", "list")
    assert "cannot reach Sensorbase" in stderr and "sensorbase serve" in stderr

    result = runner.invoke(app, ["--url", cli.url, "buckets", "list"],
                           env={"SENSORBASE_KEY": None})  # fmt: skip
    assert result.exit_code == 1
    assert "Error 401" in result.stderr and "SENSORBASE_KEY" in result.stderr

    stderr = cli.fails("query", "--last", "soon", "--order", "sideways")
    assert "field 'last'" in stderr and "field 'order'" in stderr


def test_global_options_anywhere_on_the_line(cli: Cli) -> None:
    assert hoist_global_options(["buckets", "list", "--json", "--url=u", "--key", "k"]) == [
        "--json",
        "--url=u",
        "--key",
        "k",
        "buckets",
        "list",
    ]
    assert hoist_global_options(["write", "--", "--json"]) == ["write", "--", "--json"]
    reply = json.loads(cli("buckets", "list", "--json").stdout)
    assert "buckets" in reply
    assert runner.invoke(app, ["--version"]).stdout.startswith("sensorbase ")


def test_env_vars_configure_the_client(cli: Cli) -> None:
    cli("buckets", "create", "envbucket")
    result = runner.invoke(app, ["sources", "list", "--json"], env={
        "SENSORBASE_URL": cli.url, "SENSORBASE_KEY": cli.admin,
        "SENSORBASE_BUCKET": "envbucket"})  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["sources"] == []
