"""A /api/v1 data source: a bucket (as for /restapi) whose meta holds, beside the column schema
(`meta.madevo`, schema.py), its time-series configuration (`meta.madevo_v1`: timefield,
metafield, timeformat) and the progress of its import (`meta.madevo_import`); and the JSON a
client is shown of it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sensorbase.dialects.madevo.records import ENTITY
from sensorbase.dialects.madevo.schema import schema_of
from sensorbase.dialects.madevo.v1.timeformat import ISO
from sensorbase.model import Bucket
from sensorbase.times import format_us, now_us, parse_iso_us

CONFIG_KEY = "madevo_v1"
IMPORT_KEY = "madevo_import"
DEFAULT_TIMEFIELD = "timestamp"
STALE_US = 300_000_000  # an import's progress unchanged this long: its node stopped


@dataclass(frozen=True, slots=True)
class Config:
    timefield: str
    metafield: str | None
    timeformat: str

    def meta(self) -> dict[str, Any]:
        return {
            "timefield": self.timefield,
            "metafield": self.metafield,
            "timeformat": self.timeformat,
        }


def config_of(bucket: Bucket) -> Config:
    """The data source's configuration; a bucket made otherwise (`POST /v1/buckets`, used by
    /restapi) reads as `timestamp` in ISO 8601 with its schema's entity as metafield."""
    raw = bucket.meta.get(CONFIG_KEY)
    if isinstance(raw, dict) and isinstance(raw.get("timefield"), str):
        metafield = raw.get("metafield")
        return Config(
            raw["timefield"],
            metafield if isinstance(metafield, str) else None,
            str(raw.get("timeformat") or ISO),
        )
    schema = bucket.meta.get("madevo")
    entity = schema.get("entity") if isinstance(schema, dict) else None
    return Config(DEFAULT_TIMEFIELD, entity if isinstance(entity, str) else None, ISO)


def new_meta(config: Config) -> dict[str, Any]:
    """A new data source's meta: its configuration, and a schema whose entity is the
    metafield (so the metafield's value names the Sensorbase source of each row)."""
    entity = config.metafield
    return {
        "madevo": {"entity": entity, "columns": {}, "inferred": True},
        CONFIG_KEY: config.meta(),
    }


def shown(bucket: Bucket) -> dict[str, Any]:
    """A data source as the /api/v1 routes answer it."""
    config = config_of(bucket)
    schema = schema_of(bucket)
    columns = [{"name": config.timefield, "type": "time"}]
    if config.metafield:
        columns.append({"name": config.metafield, "type": "meta"})
    columns += [
        {"name": name, "type": kind}
        for name, kind in schema.columns.items()
        if name not in (config.metafield, ENTITY if config.metafield == ENTITY else None)
    ]
    found: dict[str, Any] = {
        "id": bucket.key,
        "name": bucket.name,
        "description": bucket.description,
        "type": "timeseries",
        "timefield": config.timefield,
        "metafield": config.metafield,
        "timeformat": config.timeformat,
        "columns": columns,
        "created_at": format_us(bucket.created_us),
    }
    progress = bucket.meta.get(IMPORT_KEY)
    if isinstance(progress, dict):
        found["import"] = as_of_now(progress, now_us())
    return found


def as_of_now(progress: dict[str, Any], now: int) -> dict[str, Any]:
    """An import's progress as shown: one that has not moved for `STALE_US` stopped with the
    node that ran it (a running import saves its progress every second or so), and says so
    rather than staying "running" for ever (imports are not resumed: v1/imports.py)."""
    if progress.get("status") not in ("queued", "running"):
        return progress
    moved = progress.get("updated_at") or progress.get("started_at")
    if not isinstance(moved, str) or now - parse_iso_us(moved) < STALE_US:
        return progress
    rows = progress.get("rows_inserted", 0)
    return {
        **progress,
        "status": "failed",
        "error": f"interrupted: the node importing the file stopped after {rows} rows; upload "
        "it again to import the rest (rows imported again replace themselves, never twice)",
    }
