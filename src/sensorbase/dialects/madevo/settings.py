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
    access_ttl_s: int = Field(
        900, gt=0, description="Lifetime of a Madevo /api/v1 access token (login, refresh)."
    )
    session_ttl_s: int = Field(
        7 * 86_400,
        gt=0,
        description="How long a Madevo /api/v1 sign-in may be refreshed, from the login.",
    )
    max_upload_bytes: int = Field(
        10 * 1024**3, gt=0, description="Largest Madevo CSV or ZIP upload (413 above it)."
    )
    import_batch_rows: int = Field(
        5_000, gt=0, description="Rows of an uploaded file imported per write (one commit)."
    )
