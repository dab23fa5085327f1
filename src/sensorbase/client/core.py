"""The parts of a client that do not depend on how it waits (threads or asyncio): settings,
preparing points for the queue, the query's parameters, reading a write's reply."""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sensorbase.client.errors import ItemError, PointsRejected
from sensorbase.client.points import Point, iso_utc, to_wire
from sensorbase.client.transport import GZIP_MIN_BYTES, RetryPolicy

DEFAULT_URL = "http://127.0.0.1:8000"


@dataclass
class Settings:
    """How a client batches, retries and buffers. Every field has the keyword of the same name
    on `Client` and `AsyncClient`."""

    url: str = DEFAULT_URL
    key: str | None = None
    bucket: str | None = None  # the default bucket of points that name none
    batch_size: int = 5000  # points per request (the server's default cap is 50,000)
    flush_interval_s: float = 1.0  # longest a written point waits before it is sent
    buffer_path: str | os.PathLike[str] | None = None  # an SQLite file: points survive restarts
    max_pending: int = 1_000_000  # points held in memory at most (without buffer_path)
    partial: bool = True  # batches: store the good points, report the refused ones
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    timeout_s: float = 30.0
    gzip_min_bytes: int = GZIP_MIN_BYTES

    def __post_init__(self) -> None:
        self.url = (self.url or os.environ.get("SENSORBASE_URL") or DEFAULT_URL).rstrip("/")
        self.key = self.key or os.environ.get("SENSORBASE_KEY")
        if self.batch_size < 1 or self.flush_interval_s <= 0:
            raise ValueError("batch_size must be at least 1 and flush_interval_s above 0")

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"} if self.key else {}


def prepare(
    points: Point | Mapping[str, Any] | Iterable[Point | Mapping[str, Any]],
    bucket: str | None,
) -> list[dict[str, Any]]:
    """The wire form of `points`, each stamped with now when it has no time and naming its
    bucket (a point's own, else `bucket`): a point without one is refused here, before it
    waits in a queue for a server that could never take it."""
    many = [points] if isinstance(points, Point | Mapping) else list(points)
    now = datetime.now(UTC)
    out = []
    for index, point in enumerate(many):
        item = to_wire(point, now)
        item.setdefault("bucket", bucket)
        if item["bucket"] is None:
            raise ValueError(f"point {index} names no bucket and the client has no default")
        out.append(item)
    return out


def rejected(reply: dict[str, Any], batch: list[dict[str, Any]]) -> PointsRejected | None:
    """The points a partial write refused, with the points themselves."""
    items = [ItemError.parse(e) for e in reply.get("rejected") or []]
    if not items:
        return None
    indexes = sorted({e.index for e in items if e.index is not None and e.index < len(batch)})
    return PointsRejected(items, [batch[i] for i in indexes])


def bound_params(
    query: Callable[..., Any], bucket: str | None, args: Any, kwargs: Any
) -> dict[str, str]:
    """`query()`'s arguments as its URL's parameters, for what takes the same arguments
    (`query_frame()`); `bucket` is the client's default."""
    bound = inspect.signature(query).bind(*args, **kwargs)
    bound.apply_defaults()
    given = bound.arguments
    return query_params(**{**given, "bucket": given.get("bucket") or bucket})


def query_params(
    bucket: str | None,
    source: str | Iterable[str] | None,
    field: str | Iterable[str] | None,
    start: datetime | str | None,
    end: datetime | str | None,
    last: str | None,
    mode: str | None,
    aggregate: str | Iterable[str] | None,
    every: str | None,
    tz: str | None,
    limit: int | None,
    order: str | None,
    *,
    fill: str | float | None = None,
    integral_unit: str | None = None,
    width: int | None = None,
) -> dict[str, str]:
    def text(value: Any) -> str:
        if isinstance(value, datetime):
            return iso_utc(value)
        if isinstance(value, str | int):
            return str(value)
        if isinstance(value, float):
            return repr(value)  # fill's number
        return ",".join(value)

    given = {
        "bucket": bucket, "source": source, "field": field, "start": start, "end": end,
        "last": last, "mode": mode, "aggregate": aggregate, "every": every, "tz": tz,
        "limit": limit, "order": order, "fill": fill, "integral_unit": integral_unit,
        "width": width,
    }  # fmt: skip
    return {name: text(value) for name, value in given.items() if value is not None}
