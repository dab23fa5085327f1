"""The README's quick start, pasted as written into bash against a fresh `sensorbase serve`:
each command succeeds and prints what the README shows under it (`...` stands for anything,
times of the now-relative data for any time, a duration for any duration)."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tests.live import KEY_PATTERN, start_server

ROOT = Path(__file__).parents[1]
MARK = "@@@ command done @@@"


def block_after(text: str, heading: str) -> str:
    rest = text[text.index(heading) :]
    start = rest.index("```\n") + 4
    return rest[start : rest.index("```", start)]


def commands(block: str) -> list[tuple[str, list[str]]]:
    """(command, the lines the README shows as its output), in order."""
    out: list[tuple[str, list[str]]] = []
    pending = ""
    for line in block.splitlines():
        if pending:
            pending += "\n" + line
        elif re.match(r"(export |NOW=|curl |\.venv/bin/sensorbase |#)", line):
            pending = line
        elif line.strip():
            out[-1][1].append(line)
            continue
        try:
            complete = bool(shlex.split(pending, comments=True) or True)
        except ValueError:
            complete = False
        if complete and not pending.endswith("\\"):
            if not pending.startswith("#"):
                out.append((pending, []))
            pending = ""
    return out


def pattern(shown: str) -> re.Pattern[str]:
    text = re.escape(shown)
    text = text.replace(r"\.\.\.", ".*")
    text = re.sub(r"\d{4}\\-\d\d\\-\d\dT\d\d:\d\d:\d\d\\\.\d{6}Z", r"[0-9T:.Z-]{27}", text)
    text = re.sub(r"\d+\\\.\d+\\ s\\\.", r"[0-9.]+\\ s\\.", text)
    return re.compile(text)


@pytest.mark.slow(5)
def test_the_quick_start_runs_as_written(tmp_path: Path) -> None:
    readme = (ROOT / "README.md").read_text()
    steps = commands(block_after(readme, "Then, with curl")) + commands(
        block_after(readme, "Or with the `sensorbase` command")
    )
    assert len(steps) >= 12
    server = start_server(tmp_path)
    try:
        found = KEY_PATTERN.search(server.stderr())
        assert found
        port = server.url.rsplit(":", 1)[1]
        script = ["set -e"]
        for command, _ in steps:
            command = re.sub(r"^export SB_KEY=\S+", f"export SB_KEY={found.group(1)}", command)
            command = command.replace("localhost:8000", f"localhost:{port}")
            command = command.replace(".venv/bin/sensorbase", f"{sys.executable} -m sensorbase.cli")
            script.append(f"{command} 2>&1\nprintf '\\n{MARK}\\n'")
        done = subprocess.run(
            ["bash", "-c", "\n".join(script)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            env={"PATH": "/usr/bin:/bin", "SENSORBASE_URL": server.url, "COLUMNS": "200"},
            timeout=120,
        )
    finally:
        server.stop()
    outputs = done.stdout.split(MARK + "\n")
    assert done.returncode == 0, done.stdout + done.stderr
    assert len(outputs) == len(steps) + 1
    for (command, shown), output in zip(steps, outputs, strict=False):
        lines = [line for line in output.splitlines() if line.strip()]
        assert "Error" not in output, (command, output)
        # Each line the README shows appears, in order, in what the command printed.
        at = 0
        for expected in shown:
            regex = pattern(expected)
            while at < len(lines) and not regex.fullmatch(lines[at]):
                at += 1
            assert at < len(lines), (command, expected, output)
            at += 1
    # The hourly averages of the last 7 days have rows, not a header alone.
    hourly = outputs[[c for c, _ in steps].index(next(c for c, _ in steps if "every=1h" in c))]
    assert len(hourly.split()) == 4
