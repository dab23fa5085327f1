"""The eight fetch endpoints: raw or statistics, all or latest, by inputs or by asset.

    [{"input": {"id": "senA", "name": "Boiler", "measure_unit": "°C"},
      "inputdata": [{"timestamp": "2020-10-13T14:02:39.489000Z", "value": "12.5"}]}]

By asset the same list sits in `{"id": 67, "name": "Boiler room", "inputs": [...]}`.

- Raw: the readings of each input in the time period, ordered by `order_by`/`sort_by`, at
  most `limit` (default 1000) per input: the first `limit` in that order, or, for the
  `get_latest_*` endpoints, the newest `limit` (presented in that order).
- Statistics: one record per input, `{"min", "max", "avg"}` (those asked by
  `aggregation_func`) over every reading of the time period; null when there is none.

Numbers are decimal strings, as the upload's echo shows them; times are ISO 8601 UTC with six
fractional digits.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Literal

import msgspec
import numpy as np
from fastapi import Depends, Request, Response

from sensorbase.auth import access
from sensorbase.auth.keys import Principal
from sensorbase.catalog import Catalog
from sensorbase.dialects.base import catalog_of, query_of
from sensorbase.dialects.datacooee import inputs as dc_inputs
from sensorbase.dialects.datacooee import params as dc_params
from sensorbase.dialects.datacooee.errors import principal
from sensorbase.dialects.datacooee.inputs import Input
from sensorbase.dialects.datacooee.params import FetchParams
from sensorbase.errors import Problem, invalid
from sensorbase.model import PointColumns, SeriesRef
from sensorbase.query.service import QueryService
from sensorbase.times import format_many, now_us

Kind = Literal["raw", "statistics"]
ENDPOINTS: dict[str, tuple[Kind, bool, bool]] = {  # name: (kind, latest, by asset)
    "get_inputdata_by_inputs": ("raw", False, False),
    "get_latest_inputdata_by_inputs": ("raw", True, False),
    "get_statistics_inputdata_by_inputs": ("statistics", False, False),
    "get_latest_statistics_inputdata_by_inputs": ("statistics", True, False),
    "get_inputdata_by_asset": ("raw", False, True),
    "get_latest_inputdata_by_asset": ("raw", True, True),
    "get_statistics_inputdata_by_asset": ("statistics", False, True),
    "get_latest_statistics_inputdata_by_asset": ("statistics", True, True),
}
Handler = Callable[..., Awaitable[Response]]
_decode = msgspec.json.Decoder()


def fetch_handler(kind: Kind, latest: bool, by_asset: bool) -> Handler:
    """The route of one of the eight endpoints."""

    async def handle(
        request: Request,
        who: Principal = Depends(principal),
        catalog: Catalog = Depends(catalog_of),
        query: QueryService = Depends(query_of),
    ) -> Response:
        access.require(who, "data:read")
        cap = query.max_result_points
        params = dc_params.parse(
            list(request.query_params.multi_items()),
            by_asset=by_asset,
            now_us=now_us(),
            max_limit=cap,
        )
        fetch = Fetch(catalog, query, who, params, kind, latest, cap)
        reply: Any = await (fetch.by_asset() if by_asset else fetch.by_inputs())
        return Response(msgspec.json.encode(reply), media_type="application/json")

    return handle


class Fetch:
    """One fetch request: its inputs found through the catalog, their points read through the
    query service."""

    def __init__(
        self,
        catalog: Catalog,
        query: QueryService,
        who: Principal,
        params: FetchParams,
        kind: Kind,
        latest: bool,
        max_points: int,
    ) -> None:
        self.catalog = catalog
        self.query = query
        self.who = who
        self.params = params
        self.kind = kind
        self.latest = latest
        self.max_points = max_points
        self.returned = 0

    async def by_inputs(self) -> list[dict[str, Any]]:
        keys = self.params.input_ids or []
        found = await dc_inputs.get_inputs(
            self.catalog, self.who, keys, self.params.name("inputs_ids")
        )
        return [await self._block(item) for item in found]

    async def by_asset(self) -> dict[str, Any]:
        assert self.params.asset_id is not None
        asset = await dc_inputs.get_asset(
            self.catalog, self.who, self.params.asset_id, self.params.name("asset_id")
        )
        found = await dc_inputs.asset_inputs(
            self.catalog, self.who, asset, self.params.input_ids, self.params.name("inputs_ids")
        )
        return {
            "id": asset.group.id,
            "name": asset.group.name,
            "inputs": [await self._block(item) for item in found],
        }

    async def _block(self, item: Input) -> dict[str, Any]:
        head = {"id": item.source.key, "name": item.source.name, "measure_unit": item.unit}
        if self.kind == "statistics":
            return {"input": head, "inputdata": [await self._statistics(item)]}
        points = await self._points(item)
        self.returned += len(points)
        if self.returned > self.max_points:
            raise invalid(
                [
                    Problem(
                        f"lets the reply exceed {self.max_points} readings; lower it or "
                        "shorten the time period",
                        self.params.name("limit"),
                    )
                ]
            )
        return {"input": head, "inputdata": self._records(points)}

    async def _statistics(self, item: Input) -> dict[str, str | None]:
        aggregates = self.params.aggregates
        ref = _ref(item)
        if ref is None:
            return dict.fromkeys(aggregates)
        [row] = await self.query.aggregate([ref], self.params.time_range, aggregates)
        return {name: _number_text(row.values.get(name)) for name in aggregates}

    async def _points(self, item: Input) -> PointColumns:
        p = self.params
        ref = _ref(item)
        if ref is None:
            return PointColumns(np.empty(0, np.int64), np.empty(0, np.float64), None)
        if self.latest:
            [newest] = await self.query.points([ref], p.time_range, p.limit, "desc")
            return _reorder(newest, p.order_by, p.order)
        by: Literal["time", "value"] = "value" if p.order_by == "value" else "time"
        [points] = await self.query.points([ref], p.time_range, p.limit, p.order, by)
        return points

    def _records(self, points: PointColumns) -> list[dict[str, Any]]:
        if not len(points):
            return []
        p = self.params
        times = format_many(points.time_us)
        values = points.value.astype(str).tolist()
        records = [{"timestamp": t, "value": v} for t, v in zip(times, values, strict=True)]
        if not (p.add_lat_long or p.add_x_axis or p.add_metadata):
            return records
        extras = points.extra or [None] * len(records)
        for record, text in zip(records, extras, strict=True):
            carried = _decode.decode(text) if text else {}
            if p.add_lat_long:
                record["latitude"] = _number_text(carried.get("lat"))
                record["longitude"] = _number_text(carried.get("lon"))
            if p.add_metadata:
                record["metadata"] = carried.get("meta")
            if p.add_x_axis:
                record["x_axis_value"] = carried.get("x_axis_value")
        return records


def _ref(item: Input) -> SeriesRef | None:
    """The input's series (found for the principal by the catalog), None before any reading."""
    if item.series_id is None:
        return None
    return SeriesRef(item.series_id, item.bucket_key, item.source.key, item.field, item.unit)


def _number_text(value: Any) -> str | None:
    return None if value is None else repr(float(value))


def _reorder(points: PointColumns, order_by: str, order: str) -> PointColumns:
    """Newest-first points into the order asked (ties in value broken by time)."""
    n = len(points)
    if order_by == "value":
        index = np.lexsort((points.time_us, points.value))
        if order == "desc":
            index = index[::-1]
    elif order == "asc":
        index = np.arange(n - 1, -1, -1)
    else:
        return points
    extra = [points.extra[i] for i in index.tolist()] if points.extra is not None else None
    return PointColumns(points.time_us[index], points.value[index], extra)
