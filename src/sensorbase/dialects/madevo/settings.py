"""Madevo's own settings, read from the environment as every setting is (SENSORBASE_MADEVO_<NAME>;
docs/configuration.md lists them with the server's)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class MadevoSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SENSORBASE_MADEVO_", extra="ignore")

    max_records: int = Field(
        1_000, description="Most records one Madevo insert may carry (413 above it)."
    )
