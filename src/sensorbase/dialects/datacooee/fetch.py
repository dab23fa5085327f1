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

from typing import Any, Literal

import msgspec
import numpy as np

from sensorbase.auth.keys import Principal
from sensorbase.dialects.datacooee import inputs as dc_inputs
from sensorbase.dialects.datacooee.inputs import Input
from sensorbase.dialects.datacooee.params import FetchParams
from sensorbase.errors import Problem, invalid
from sensorbase.model import PointColumns
from sensorbase.storage.base import Reader
from sensorbase.times import format_many

Kind = Literal["raw", "statistics"]
_decode = msgspec.json.Decoder()


class Fetch:
    """One fetch request, run on a reader thread."""

    def __init__(
        self, who: Principal, params: FetchParams, kind: Kind, latest: bool, max_points: int
    ) -> None:
        self.who = who
        self.params = params
        self.kind = kind
        self.latest = latest
        self.max_points = max_points
        self.returned = 0

    def by_inputs(self, reader: Reader) -> list[dict[str, Any]]:
        keys = self.params.input_ids or []
        found = dc_inputs.get_inputs(reader, self.who, keys, self.params.name("inputs_ids"))
        return [self._block(reader, item) for item in found]

    def by_asset(self, reader: Reader) -> dict[str, Any]:
        assert self.params.asset_id is not None
        group = dc_inputs.get_asset(
            reader, self.who, self.params.asset_id, self.params.name("asset_id")
        )
        found = dc_inputs.asset_inputs(
            reader, self.who, group, self.params.input_ids, self.params.name("inputs_ids")
        )
        return {
            "id": group.id,
            "name": group.name,
            "inputs": [self._block(reader, item) for item in found],
        }

    def _block(self, reader: Reader, item: Input) -> dict[str, Any]:
        head = {"id": item.source.key, "name": item.source.name, "measure_unit": item.unit}
        if self.kind == "statistics":
            return {"input": head, "inputdata": [self._statistics(reader, item)]}
        points = self._points(reader, item)
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

    def _statistics(self, reader: Reader, item: Input) -> dict[str, str | None]:
        aggregates = self.params.aggregates
        if item.series_id is None:
            return dict.fromkeys(aggregates)
        row = reader.aggregate(item.series_id, self.params.time_range, aggregates)
        return {name: _number_text(row.values.get(name)) for name in aggregates}

    def _points(self, reader: Reader, item: Input) -> PointColumns:
        p = self.params
        if item.series_id is None:
            return PointColumns(np.empty(0, np.int64), np.empty(0, np.float64), None)
        if self.latest:
            newest = reader.read_range(item.series_id, p.time_range, p.limit, "desc")
            return _reorder(newest, p.order_by, p.order)
        if p.order_by == "value":
            return reader.read_range_by_value(item.series_id, p.time_range, p.limit, p.order)
        return reader.read_range(item.series_id, p.time_range, p.limit, p.order)

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
