"""Points as the client takes them, and their JSON form for `POST /v1/write`.

A point is a `Point` or a plain dict of the native API's point names (`source`, `field` +
`value` or `fields`, `time`, ...). A point without a time is stamped when `write()` takes it,
not when the batch leaves: a point that waits in a buffer for hours keeps the time it was read.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any


@dataclass(frozen=True)
class Point:
    """One reading, or several fields of one source read at one time (`fields`)."""

    source: str
    field: str | None = None
    value: float | None = None
    time: datetime | str | None = None
    fields: Mapping[str, float] | None = None
    bucket: str | None = None
    latitude: float | None = None
    longitude: float | None = None
    meta: Mapping[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"source": self.source}
        for name in ("bucket", "field", "value", "latitude", "longitude"):
            if getattr(self, name) is not None:
                out[name] = getattr(self, name)
        if self.fields is not None:
            out["fields"] = dict(self.fields)
        if self.meta is not None:
            out["meta"] = dict(self.meta)
        if self.time is not None:
            out["time"] = self.time
        return out


def iso_utc(moment: datetime) -> str:
    """`moment` as ISO 8601 UTC with microseconds and `Z`; a naive datetime is refused, as the
    server refuses a time without a zone (which zone it meant cannot be guessed)."""
    if moment.tzinfo is None:
        raise ValueError(f"{moment.isoformat()} has no time zone: pass an aware datetime")
    # isoformat is C code: ~4x faster than strftime, which dominated preparing a batch.
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def to_wire(point: Point | Mapping[str, Any], now: datetime) -> dict[str, Any]:
    """The JSON object of one point, its time stamped with `now` when it has none."""
    item = point.as_dict() if isinstance(point, Point) else dict(point)
    moment = item.get("time")
    if moment is None:
        item["time"] = iso_utc(now)
    elif isinstance(moment, datetime):
        item["time"] = iso_utc(moment)
    return item
