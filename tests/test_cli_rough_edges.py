"""The rough edges a new user met in the CLI (issue 27), each driven through the real command
against a real `sensorbase serve`: help without `<bool>` on flags, mistyped names answered
with near ones, exports that fail leaving no file, formats refused rather than faked,
`--assume-tz` and `--tz`, `import -b` over a file's bucket column, NDJSON writes in batches,
`--partial` listing every refused line, and the docs' import error matching the CLI's."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from sensorbase.cli import app
from tests.live import KEY_PATTERN, start_server
from tests.test_cli import Cli, cli, runner, server  # noqa: F401 (fixtures)

ROOT = Path(__file__).parents[1]


def make_bucket(cli: Cli, name: str) -> str:  # noqa: F811
    cli("buckets", "create", name)
    return name


def test_flags_show_no_value_in_help(cli: Cli) -> None:  # noqa: F811
    shown = cli("--help").stdout
    assert re.search(r"--json\s+Print", shown), shown
    assert "<bool>" not in shown
    assert "<str>" in shown  # options that take a value still say which


def test_a_mistyped_field_or_source_is_an_error_with_near_names(cli: Cli) -> None:  # noqa: F811
    bucket = make_bucket(cli, "typos")
    points = [{"source": "ESP32-001", "field": "temperature", "value": 1.0}]
    cli("write", "-", "-b", bucket, input=json.dumps(points))
    err = cli.fails("query", "-b", bucket, "-f", "temprature", "--last", "1d")
    assert "no series for field 'temprature'" in err
    assert "did you mean 'temperature'?" in err
    err = cli.fails("query", "-b", bucket, "--source", "ESP32-01", "--last", "1d")
    assert "did you mean 'ESP32-001'?" in err
    # A known field with no point in the range is no error: there is just nothing to show.
    result = cli("query", "-b", bucket, "-f", "temperature", "--start", "2020-01-01T00:00:00Z",
                 "--end", "2020-01-02T00:00:00Z")  # fmt: skip
    assert "No points match" in result.stderr


def test_a_failed_export_leaves_no_file_and_an_unknown_format_is_refused(
    cli: Cli,  # noqa: F811
    tmp_path: Path,
) -> None:
    bucket = make_bucket(cli, "exports")
    out = tmp_path / "out.csv"
    cli.fails("export", "-b", bucket, "--source", "nope", "-o", str(out))
    assert list(tmp_path.iterdir()) == []  # no header-only file, no leftover part file
    result = cli("export", "-b", bucket, "-o", str(tmp_path / "x.xlsx"), ok=False)
    assert result.exit_code == 2
    assert "cannot write .xlsx files" in result.stderr
    assert list(tmp_path.iterdir()) == []
    cli("write", "-", "-b", bucket, input='[{"source": "s", "field": "f", "value": 1}]')
    cli("export", "-b", bucket, "-o", str(out), "--last", "1d")
    assert out.read_text().splitlines()[0] == "bucket,source,field,time,value"
    assert [p.name for p in tmp_path.iterdir()] == ["out.csv"]


def test_assume_tz_for_dates_and_csv_times_and_tables_in_tz(
    cli: Cli,  # noqa: F811
    tmp_path: Path,
) -> None:
    bucket = make_bucket(cli, "zones")
    csv_file = tmp_path / "local.csv"
    csv_file.write_text("time,temperature\n2026-11-21 08:00,5\n2026-11-21T09:00:00,6\n")
    err = cli.fails("import", str(csv_file), "-b", bucket, "--source", "s")
    assert "--assume-tz" in err
    cli("import", str(csv_file), "-b", bucket, "--source", "s", "--assume-tz", "Europe/Paris")
    reply = cli.json("query", "-b", bucket, "--start", "2026-11-21", "--assume-tz", "UTC")
    times = [p["time"] for p in reply["series"][0]["points"]]
    assert times == ["2026-11-21T07:00:00.000000Z", "2026-11-21T08:00:00.000000Z"]
    err = cli.fails("query", "-b", bucket, "--start", "2026-11-21")
    assert "no time zone" in err and "--assume-tz" in err
    table = cli("query", "-b", bucket, "--start", "2026-11-21T00:00:00Z", "--tz", "Europe/Paris")
    assert "2026-11-21T08:00:00+01:00" in table.stdout
    assert "07:00:00.000000Z" not in table.stdout


def test_import_honours_the_bucket_option_over_the_files_column(
    cli: Cli,  # noqa: F811
    tmp_path: Path,
) -> None:
    big, big2 = make_bucket(cli, "big"), make_bucket(cli, "big2")
    cli("write", "-", "-b", big, input='[{"source": "s", "field": "f", "value": 1, '
        '"time": "2026-11-21T00:00:00Z"}]')  # fmt: skip
    exported = tmp_path / "export.csv"
    cli("export", "-b", big, "-o", str(exported))
    result = cli("import", str(exported), "-b", big2)
    assert "bucket column is ignored" in result.stderr
    copied = cli.json("query", "-b", big2, "--start", "2026-11-21T00:00:00Z")
    assert copied["series"][0]["bucket"] == big2
    assert copied["series"][0]["points"][0]["value"] == 1.0


def test_a_large_ndjson_write_goes_in_batches_and_partial_lists_every_line(
    cli: Cli,  # noqa: F811
    tmp_path: Path,
) -> None:
    bucket = make_bucket(cli, "ndjson")
    lines = [
        json.dumps({"source": "s", "field": "f", "value": "x" if i in (3, 2500) else i,
                    "time": 1_790_000_000 + i})
        for i in range(3000)
    ]  # fmt: skip
    (tmp_path / "big.ndjson").write_text("\n".join(lines) + "\n")
    args = ("write", str(tmp_path / "big.ndjson"), "-b", bucket, "--precision", "s")
    err = cli.fails(*args, "--batch-size", "1000")
    assert "batch 1, lines 1-1000: nothing of it was stored" in err
    assert "line 4, field 'value'" in err
    reply = cli.json(*args, "--batch-size", "1000", "--partial")
    assert reply["written"] == 2998 and reply["batches"] == 3
    assert [r.split(",")[0] for r in reply["rejected"]] == ["line 4", "line 2501"]

    csv_file = tmp_path / "short.csv"
    csv_file.write_text("time,a,b\n2026-11-21T00:00:00Z,1,2\n2026-11-21T00:01:00Z,1\n"
                        "2026-11-21T00:02:00Z,3,x\n2026-11-21T00:03:00Z,4,5\n")  # fmt: skip
    reply = cli.json("import", str(csv_file), "-b", bucket, "--source", "t", "--partial",
                     "--batch-size", "2")  # fmt: skip
    assert reply["written"] == 5
    assert reply["rejected"] == [
        "line 3 has 2 cells; the header has 3",
        "line 4, column 'b': 'x' is not a number",
    ]


def test_the_docs_import_error_is_the_one_the_cli_prints(
    cli: Cli,  # noqa: F811
    tmp_path: Path,
) -> None:
    docs = (ROOT / "docs" / "cli.md").read_text()
    shown = re.search(r"  Error: (1 cell.*)\n.*\n\s+• (line .*)\n", docs)
    assert shown
    bucket = make_bucket(cli, "lines")
    rows = ["time,level"] + [
        f"{1_700_000_000 + i},{'n/a' if i == 12_500 else 1.0}" for i in range(16_000)
    ]
    (tmp_path / "levels.csv").write_text("\n".join(rows) + "\n")
    err = cli.fails("import", str(tmp_path / "levels.csv"), "-b", bucket, "--source", "tank",
                    "--precision", "s")  # fmt: skip
    flat = " ".join(err.split())
    assert " ".join(shown.group(1).split()) in flat
    assert shown.group(2) in flat


@pytest.mark.parametrize("page", ["docs/cli.md"])
def test_docs_create_a_bucket_before_its_sources(page: str) -> None:
    text = (ROOT / page).read_text()
    for bucket in re.findall(r"sensorbase sources create [^\n]*-b (\w+)", text):
        created = text.find(f"buckets create {bucket}")
        used = text.find(f"-b {bucket}")
        assert 0 <= created < used, bucket


def test_the_systemd_unit_runs_a_command_that_exists() -> None:
    """docs/deploy.md's unit: every flag of its ExecStart is one `sensorbase serve` takes."""
    docs = (ROOT / "docs" / "deploy.md").read_text()
    unit = re.search(r"```ini\n(.*?)```", docs, re.S)
    assert unit
    sections = re.findall(r"^\[(\w+)\]$", unit.group(1), re.M)
    assert sections == ["Unit", "Service", "Install"]
    (exec_start,) = re.findall(r"^ExecStart=(.*)$", unit.group(1), re.M)
    program, command, *args = exec_start.split()
    assert program.endswith("/.venv/bin/sensorbase") and command == "serve"
    shown = runner.invoke(app, ["serve", "--help"], env={"COLUMNS": "300"}).stdout
    for flag in (a for a in args if a.startswith("--")):
        assert flag in shown, flag


def test_shell_completion_completes_commands_and_options() -> None:
    completed = subprocess.run(
        [str(Path(sys.executable).parent / "sensorbase")],  # the installed command
        env={**os.environ, "_SENSORBASE_COMPLETE": "complete_bash",
             "COMP_WORDS": "sensorbase export --ass", "COMP_CWORD": "2"},
        capture_output=True, text=True,
    )  # fmt: skip
    assert completed.stdout.split() == ["--assume-tz"]


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_server_logs_carry_their_time(tmp_path: Path, log_format: str) -> None:
    started = start_server(tmp_path, "--access-log", "--log-format", log_format)
    try:
        httpx.get(f"{started.url}/healthz")
    finally:
        started.stop()
    lines = [line for line in started.stderr().splitlines() if line.strip()]
    stamp = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
    if log_format == "text":
        logged = [line for line in lines if "Application startup complete" in line]
        assert logged and stamp.match(logged[0]), lines
        access = [line for line in lines if "GET /healthz" in line]
        assert access and stamp.match(access[0]), lines
        return
    records = [json.loads(line) for line in lines if line.startswith("{")]
    assert all(stamp.fullmatch(r["time"]) for r in records)
    request = [r for r in records if r.get("path") == "/healthz"][-1]  # (start_server's too)
    assert request["method"] == "GET" and request["status"] == 200
    (first,) = [r for r in records if "bootstrap_key" in r]
    assert first["bootstrap_key"].startswith("sb_k")
    # Nothing but JSON objects: a collector reads every line.
    assert all(line.startswith("{") for line in lines[1:]), lines


def test_config_show_names_each_setting_and_where_it_came_from() -> None:
    from sensorbase.settings import Settings

    env = {"SENSORBASE_PORT": "9001", "SENSORBASE_DATABASE_URL": "postgresql://u:pw@db/sb"}
    result = runner.invoke(app, ["--json", "config", "show"], env=env)
    assert result.exit_code == 0, result.stderr
    rows = {row["setting"]: row for row in json.loads(result.stdout)}
    assert {f"SENSORBASE_{name.upper()}" for name in Settings.model_fields} <= set(rows)
    assert rows["SENSORBASE_PORT"] == {"setting": "SENSORBASE_PORT", "value": 9001,
                                       "from": "environment"}  # fmt: skip
    assert rows["SENSORBASE_DATABASE_URL"]["value"] == "postgresql://u:***@db/sb"
    assert rows["SENSORBASE_HOST"]["from"] == "default"
    bad = runner.invoke(app, ["config", "show"], env={"SENSORBASE_PORT": "eighty"})
    assert bad.exit_code == 1
    assert "port" in bad.stderr


def test_a_toml_file_configures_the_server_below_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "sensorbase.toml"
    config.write_text('max_body_bytes = 2000\nrate_limit = "500/second"\n')
    monkeypatch.setenv("SENSORBASE_CONFIG_FILE", str(config))
    monkeypatch.setenv("SENSORBASE_RATE_LIMIT", "")
    shown = runner.invoke(app, ["--json", "config", "show"])
    assert shown.exit_code == 0, shown.stderr
    rows = {row["setting"]: row for row in json.loads(shown.stdout)}
    assert rows["SENSORBASE_MAX_BODY_BYTES"]["value"] == 2000
    assert rows["SENSORBASE_MAX_BODY_BYTES"]["from"] == f"file {config}"
    assert rows["SENSORBASE_RATE_LIMIT"]["from"] == "environment"  # the environment wins
    assert rows["SENSORBASE_PORT"]["from"] == "default"
    # The server reads it: a body past the file's 2,000 bytes is refused.
    started = start_server(tmp_path)
    try:
        found = KEY_PATTERN.search(started.stderr())
        assert found
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {found[1]}"}
        body = json.dumps([{"source": "s", "field": "f", "value": i} for i in range(200)])
        reply = httpx.post(f"{started.url}/v1/write?bucket=b", content=body, headers=headers)
        assert reply.status_code == 413
    finally:
        started.stop()
    monkeypatch.setenv("SENSORBASE_CONFIG_FILE", str(tmp_path / "missing.toml"))
    missing = runner.invoke(app, ["config", "show"])
    assert missing.exit_code == 1
    assert "not a file" in missing.stderr


def test_table_cells_show_floats_as_a_person_reads_them() -> None:
    from sensorbase.cli.output import cell

    mean = 1.1 * 3  # 3.3000000000000003 in binary
    assert str(mean) == "3.3000000000000003"
    assert cell(mean) == "3.3"
    assert [cell(v) for v in (21.5, 65.0, 1e-7, 1e20, 0.1 + 0.2)] == [
        "21.5", "65.0", "1e-07", "1e+20", "0.3",
    ]  # fmt: skip
