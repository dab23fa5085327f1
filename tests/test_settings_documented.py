"""Every setting appears in docs/configuration.md with its environment variable."""

from __future__ import annotations

from pathlib import Path

from sensorbase.settings import Settings

DOC = Path(__file__).parents[1] / "docs" / "configuration.md"


def test_every_setting_is_documented() -> None:
    text = DOC.read_text()
    missing = [name for name in Settings.model_fields if f"SENSORBASE_{name.upper()}" not in text]
    assert missing == []
