"""`sensorbase export` and `sensorbase import` of Parquet and NDJSON against a real server on
each backend: what one exports, the other takes back, with positions and meta; --into
sends a file's points to another bucket; unknown extensions are refused, not read as CSV."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from sensorbase.cli import app
from tests.live import KEY_PATTERN, Server, start_server
from tests.pg import temporary_database

runner = CliRunner()
T0 = 1_780_000_000_000_000  # 2026-05-28T20:26:40 (as local time in Paris: 18:26:40Z)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Server, str]]:
    tmp_path = tmp_path_factory.mktemp(request.param)
    if request.param == "postgresql":
        with temporary_database() as url:
            started = start_server(tmp_path, "--database-url", url)
            yield started, KEY_PATTERN.findall(started.stderr())[0]
            started.stop()
    else:
        started = start_server(tmp_path)
        yield started, KEY_PATTERN.findall(started.stderr())[0]
        started.stop()


def cli(server: tuple[Server, str], *args: str, ok: bool = True, code: int = 1) -> Any:
    url, key = server[0].url, server[1]
    result = runner.invoke(
        app,
        ["--url", url, "--key", key, *args],
        env={"SENSORBASE_URL": None, "SENSORBASE_KEY": None, "SENSORBASE_BUCKET": None},
    )
    if ok:
        assert result.exit_code == 0, f"{args}: {result.stdout}\n{result.stderr}"
    else:
        assert result.exit_code == code, f"{args}: {result.exit_code} {result.stdout}"
    return result


def points(server: tuple[Server, str], bucket: str) -> list[tuple[Any, ...]]:
    reply = json.loads(cli(server, "--json", "query", "-b", bucket, "--limit", "10000").stdout)
    return sorted(
        (s["source"], s["field"], p["time"], p["value"], p.get("latitude"),
         p.get("longitude"), json.dumps(p.get("meta"), sort_keys=True))
        for s in reply["series"]
        for p in s["points"]
    )  # fmt: skip


def test_parquet_and_ndjson_round_trips(server: tuple[Server, str], tmp_path: Path) -> None:
    for bucket in ("farm", "copy-parquet", "copy-ndjson"):
        cli(server, "buckets", "create", bucket)
    lines = [
        {"source": "barn", "field": "t", "time": 1_780_000_000 + i, "value": i / 4}
        for i in range(700)
    ] + [
        {"source": "gps", "field": "speed", "time": 1_780_000_000 + i, "value": float(i),
         "latitude": 48.5 + i / 100, "longitude": -2.25, "meta": {"fix": i % 3, "ok": True}}
        for i in range(40)
    ]  # fmt: skip
    body = tmp_path / "in.ndjson"
    body.write_text("\n".join(json.dumps(line) for line in lines))
    # An NDJSON file goes in through `import` too, in batches of --batch-size points.
    done = json.loads(
        cli(server, "--json", "import", str(body), "-b", "farm", "--precision", "s",
            "--batch-size", "300").stdout
    )  # fmt: skip
    assert done["written"] == 740 and done["batches"] == 3
    original = points(server, "farm")
    assert len(original) == 740
    assert ("gps", "speed", "2026-05-28T20:26:41.000000Z", 1.0, 48.51, -2.25,
            '{"fix": 1, "ok": true}') in original  # fmt: skip

    parquet = tmp_path / "farm.parquet"
    cli(server, "export", "-b", "farm", "-o", str(parquet), "--page-size", "250")
    table = pq.read_table(parquet)
    assert table.num_rows == 740
    assert table.schema.field("time").type == pa.timestamp("us", tz="UTC")
    # --into wins over the file's bucket column.
    cli(server, "import", str(parquet), "--into", "copy-parquet", "--batch-size", "200")
    assert points(server, "copy-parquet") == original

    ndjson = tmp_path / "farm.ndjson"
    cli(server, "export", "-b", "farm", "-o", str(ndjson))
    cli(server, "import", str(ndjson), "--into", "copy-ndjson")
    assert points(server, "copy-ndjson") == original
    # Without --into, the file's own bucket: the same points again, replaced, not doubled.
    cli(server, "import", str(parquet))
    assert points(server, "farm") == original

    refused = cli(server, "import", str(tmp_path / "farm.xlsx"), ok=False, code=2)
    assert "cannot import .xlsx files" in refused.stderr
    refused = cli(server, "export", "-b", "farm", "-o", str(tmp_path / "x.txt"), ok=False, code=2)
    assert "cannot write .txt files" in refused.stderr
    assert not (tmp_path / "x.txt").exists()


def test_parquet_of_another_tool_and_its_bad_values(
    server: tuple[Server, str], tmp_path: Path
) -> None:
    """A wide Parquet file with zone-less timestamps (as pandas writes local times): read
    with --assume-tz; a value that is no number is named by row and column, nothing stored."""
    cli(server, "buckets", "create", "lab")
    wide = tmp_path / "wide.parquet"
    pq.write_table(
        pa.table(
            {
                "time": pa.array([T0, T0 + 60_000_000], pa.timestamp("us")),
                "temperature": [20.5, 21.0],
                "humidity": [40.0, None],
            }
        ),
        wide,
    )
    said = cli(server, "import", str(wide), "-b", "lab", "--source", "s1", ok=False).stderr
    assert "--assume-tz" in said
    cli(server, "import", str(wide), "-b", "lab", "--source", "s1", "--assume-tz", "Europe/Paris")
    got = points(server, "lab")
    assert [(p[1], p[2], p[3]) for p in got] == [
        ("humidity", "2026-05-28T18:26:40.000000Z", 40.0),
        ("temperature", "2026-05-28T18:26:40.000000Z", 20.5),
        ("temperature", "2026-05-28T18:27:40.000000Z", 21.0),
    ]
    bad = tmp_path / "bad.parquet"
    pq.write_table(
        pa.table({"time": ["2026-01-01T00:00:00Z"] * 2, "field": ["a", "b"], "value": ["1", "x"]}),
        bad,
    )
    said = cli(server, "import", str(bad), "-b", "lab", "--source", "s2", ok=False).stderr
    assert "row 2, column 'value': 'x' is not a number" in " ".join(said.split())
