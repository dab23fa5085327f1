"""Every setting, with its default and help. Environment: SENSORBASE_<NAME>; docs/configuration.md
lists them all (a test fails when one is undocumented).

A TOML file may hold them too (`port = 8080`, the names without the prefix, in lower case):
the one `SENSORBASE_CONFIG_FILE` names, else `./sensorbase.toml` when there is one. The
environment wins over the file, and `serve`'s flags over both."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

CONFIG_FILE_VARIABLE = "SENSORBASE_CONFIG_FILE"
# argon2-cffi's profiles (argon2.profiles) a user's password may be hashed with (auth/users.py)
PasswordHashProfile = Literal["rfc_9106_low_memory", "rfc_9106_high_memory", "cheapest"]
DEFAULT_CONFIG_FILE = Path("sensorbase.toml")


def config_file() -> Path | None:
    """The TOML file of settings in force: a named one must exist (a typo in its path must not
    silently leave every setting at its default)."""
    named = os.environ.get(CONFIG_FILE_VARIABLE)
    if named:
        path = Path(named)
        if not path.is_file():
            raise FileNotFoundError(f"{CONFIG_FILE_VARIABLE} names {named}, which is not a file")
        return path
    return DEFAULT_CONFIG_FILE if DEFAULT_CONFIG_FILE.is_file() else None


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SENSORBASE_", extra="ignore")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        found = config_file()
        from_file = () if found is None else (TomlConfigSettingsSource(settings_cls, found),)
        return (init_settings, env_settings, dotenv_settings, *from_file, file_secret_settings)

    data_dir: Path = Field(Path("./data"), description="Where the embedded SQLite store lives.")
    database_url: str | None = Field(
        None,
        description="postgresql://... to use PostgreSQL instead of the embedded SQLite store.",
    )
    sqlite_mmap_bytes: int = Field(
        1 << 30,
        ge=0,
        description="SQLite: how much of the database the writer reads through a memory map.",
    )
    database_pool_size: int = Field(
        10, description="PostgreSQL: most reading connections one node keeps open."
    )
    host: str = Field("127.0.0.1", description="Address the server listens on.")
    port: int = Field(8000, description="Port the server listens on.")
    max_in_flight: int = Field(
        64,
        ge=0,
        description="Requests one worker works on at once; more get 503 at once. 0: no bound.",
    )
    header_timeout_s: float = Field(
        10.0,
        ge=0,
        description="Most seconds a request's headers may take from their first byte (408).",
    )
    body_timeout_s: float = Field(
        60.0,
        ge=0,
        description="Most seconds a request's body may take after its headers (408).",
    )
    keep_alive_timeout_s: float = Field(
        5.0, gt=0, description="Seconds an idle keep-alive connection is kept open."
    )
    durability: Literal["full", "normal"] = Field(
        "full",
        description=(
            "full: an acknowledged write survives power loss (its SQLite WAL frames are synced). "
            "normal: survives a crash of Sensorbase but may lose the last commits on power loss."
        ),
    )
    max_body_bytes: int = Field(
        16 * 1024 * 1024, description="Largest request body, after gzip decompression (413)."
    )
    max_points_per_request: int = Field(
        100_000, description="Most points one write request may carry (413)."
    )
    max_result_points: int = Field(
        100_000, description="Most points or buckets one query may return (400 above it)."
    )
    max_scan_points: int = Field(
        1_000_000,
        description="Most raw points one query may read for the aggregates that need every "
        "point (stddev, spread, median, pN, delta, increase, rate, integral; 400 above it).",
    )
    default_query_limit: int = Field(1_000, description="Raw points returned when no limit is set.")
    rate_limit: str = Field(
        "1000/second",
        description="Requests per key, in the form N/second|minute|hour; empty disables.",
    )
    wrong_keys_per_address: int = Field(
        30,
        ge=1,
        description="Wrong keys an address may send in a burst (one more forgiven a second) "
        "before its wrong keys get 429; a right key is never blocked.",
    )
    influx_string_fields: Literal["refuse", "skip"] = Field(
        "refuse",
        description="InfluxDB line protocol's string fields: refuse (the line is refused and "
        "named) or skip (left out; the line's numeric fields are stored).",
    )
    ingest_queue_size: int = Field(
        256, description="Write requests waiting for a commit before new ones get 503."
    )
    commit_max_points: int = Field(
        200_000, description="Most points one group commit gathers before committing."
    )
    access_token_ttl_s: int = Field(172_800, description="Lifetime of an OAuth2 access token.")
    refresh_token_ttl_s: int = Field(31_557_600, description="Lifetime of a refresh token.")
    min_time: str = Field(
        "1970-01-01T00:00:00Z", description="Earliest timestamp a write may carry."
    )
    max_future_s: int = Field(
        7 * 86_400, description="How far past the server's clock a timestamp may lie."
    )
    key_cache_s: float = Field(
        1.0, description="How long a node trusts a key lookup (a revocation elsewhere waits this)."
    )
    retention_every_s: float = Field(
        60.0,
        gt=0,
        description="How often the retention job looks for expired points (docs/lifecycle.md).",
    )
    retention_batch_chunks: int = Field(
        64,
        ge=1,
        description="Chunks a retention transaction expires at most (SQLite).",
    )
    bootstrap_org: str = Field("default", description="Organisation created on first start.")
    password_hash_profile: PasswordHashProfile = Field(
        "rfc_9106_low_memory",
        description="argon2-cffi's profile for hashing users' passwords: rfc_9106_low_memory "
        "(its default), rfc_9106_high_memory, or cheapest (for tests only).",
    )
    log_level: str = Field("info", description="Log level of the server.")
    mqtt_url: str | None = Field(
        None,
        description="mqtt://host:port or mqtts://host:port of the broker to ingest from; "
        "unset: no MQTT.",
    )
    mqtt_username: str | None = Field(
        None, description="Sensorbase's own user on the broker (a dynamic-security admin)."
    )
    mqtt_password: str | None = Field(None, description="The password of `mqtt_username`.")
    mqtt_ca_file: Path | None = Field(
        None, description="mqtts: the CA certificate(s) to verify the broker with."
    )
    mqtt_cert_file: Path | None = Field(
        None, description="mqtts: Sensorbase's client certificate, if the broker asks for one."
    )
    mqtt_key_file: Path | None = Field(None, description="mqtts: the client certificate's key.")
    mqtt_client_id: str = Field(
        "sensorbase",
        description="Client id of the consumer's persistent session (one per server process: "
        "--workers N appends -0 .. -N-1).",
    )
    mqtt_topic_prefix: str = Field(
        "sensorbase", description="First topic level of every topic Sensorbase reads."
    )
    mqtt_share_group: str = Field(
        "",
        description="Shared-subscription group ($share/<group>/...) of several consumers "
        "(--workers N, several nodes); empty: a plain subscription.",
    )
    mqtt_time_precision: Literal["s", "ms", "us", "ns"] = Field(
        "s", description="Unit of numeric times in MQTT payloads."
    )
    mqtt_receive_maximum: int = Field(
        1000,
        ge=1,
        le=65535,
        description="Messages the broker may have in flight to Sensorbase, awaiting their "
        "commit (and so their PUBACK).",
    )
    mqtt_session_expiry_s: int = Field(
        7 * 86_400,
        ge=0,
        description="How long the broker keeps Sensorbase's session (and queues its messages) "
        "while it is away.",
    )
    mqtt_manage_credentials: bool = Field(
        True,
        description="Whether Sensorbase keeps the broker's clients and roles (dynamic-security "
        "plugin) in step with its API keys.",
    )
    mqtt_recent_errors: int = Field(
        100,
        ge=0,
        description="Refused MQTT messages kept per organisation for GET /v1/mqtt/errors.",
    )
    alerts_check_s: float = Field(
        10.0,
        gt=0,
        description="How often the alert timer looks at no-data rules, rules held for a "
        "duration and window rules, and reloads rules changed on other nodes.",
    )
    webhook_timeout_s: float = Field(
        10.0, gt=0, description="Timeout of one webhook delivery attempt (connect and reply)."
    )
    webhook_retry_base_s: float = Field(
        10.0,
        gt=0,
        description="First retry delay of a failed webhook delivery; doubled at each attempt "
        "(with jitter of +-50%), at most webhook_retry_max_s.",
    )
    webhook_retry_max_s: float = Field(
        3600.0, gt=0, description="Longest delay between two attempts of one delivery."
    )
    webhook_retry_for_s: float = Field(
        86_400.0,
        gt=0,
        description="How long a delivery is retried before it is marked failed.",
    )
    alert_history_days: float = Field(
        30.0,
        ge=0,
        description="How long alert events (state changes) and finished webhook deliveries "
        "are kept; 0 keeps them forever. Removed by the retention job.",
    )
    webhook_allow_private: bool = Field(
        True,
        description="Whether webhook URLs may name loopback, private and link-local addresses "
        "(set false where untrusted organisations share the server: SSRF).",
    )
    metrics_require_key: bool = Field(
        False, description="Whether /metrics answers only a server administrator's key."
    )
