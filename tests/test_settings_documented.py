"""Every setting, the server's and each dialect's, appears in docs/configuration.md with its
environment variable."""

from __future__ import annotations

from pathlib import Path

from sensorbase.dialects.madevo.settings import MadevoSettings
from sensorbase.settings import Settings

DOC = Path(__file__).parents[1] / "docs" / "configuration.md"


def test_every_setting_is_documented() -> None:
    text = DOC.read_text()
    missing = [name for name in Settings.model_fields if f"SENSORBASE_{name.upper()}" not in text]
    assert missing == []


def test_every_dialect_setting_is_documented() -> None:
    text = DOC.read_text()
    prefix = MadevoSettings.model_config.get("env_prefix", "")
    missing = [
        name for name in MadevoSettings.model_fields if f"{prefix}{name.upper()}" not in text
    ]
    assert missing == []
