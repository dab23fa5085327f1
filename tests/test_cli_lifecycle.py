"""`sensorbase buckets create|update --retention`, `sensorbase delete`, against a real server."""

from __future__ import annotations

import json
from pathlib import Path

from tests.test_cli import Cli, cli, count, server  # noqa: F401 (fixtures)


def test_retention_on_create_and_update(cli: Cli) -> None:  # noqa: F811
    made = cli.json("buckets", "create", "short", "--retention", "30d", "--keep-summaries")
    assert (made["retention"], made["keep_summaries"]) == ("30d", True)
    changed = cli.json("buckets", "update", "short", "--retention", "12w")
    assert (changed["retention"], changed["keep_summaries"]) == ("12w", True)
    changed = cli.json("buckets", "update", "short", "--retention", "forever", "--no-summaries")
    assert (changed["retention"], changed["keep_summaries"]) == (None, False)
    refused = cli.fails("buckets", "create", "bad", "--retention", "soon")
    assert "retention" in refused


def test_delete_a_range(cli: Cli, tmp_path: Path) -> None:  # noqa: F811
    cli("buckets", "create", "del")
    body = tmp_path / "points.json"
    points = [
        {"source": src, "field": "t", "value": float(i), "time": f"2026-11-21T10:0{i}:00Z"}
        for src in ("a", "b")
        for i in range(6)
    ]
    body.write_text(json.dumps({"bucket": "del", "points": points}))
    cli("write", str(body))
    args = ["delete", "--bucket", "del", "--source", "a",
            "--start", "2026-11-21T10:01:00Z", "--end", "2026-11-21T10:04:00Z"]  # fmt: skip
    assert cli(*args, input="n\n", ok=False).exit_code == 1
    assert count(cli, "del") == 12
    reply = cli.json(*args, "--yes")
    assert reply["series"] == [{"source": "a", "field": "t"}]
    assert count(cli, "del", "--source", "a") == 3 and count(cli, "del", "--source", "b") == 6
    stderr = cli.fails("delete", "--bucket", "del", "--start", "x", "--end", "y", "--yes")
    assert "start" in stderr and "end" in stderr
