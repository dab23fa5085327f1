"""Parquet files of points (pyarrow), written by `sensorbase export` and read by `sensorbase
import`:

    bucket, source, field   string
    time                    timestamp[us, UTC]
    value                   float64
    latitude, longitude     float64, null where a point has no position
    meta                    string (the point's meta as JSON), null where it has none

A row group per page of the export, so that neither side holds the whole file. `import`
also reads files other tools wrote: `time` as a timestamp (a zone-less one is read as local
time: give --assume-tz, as for a CSV), text or epoch numbers (with --precision); `bucket`,
`source` and `field` optional, as in a CSV, and every other numeric column a field of its own
name (`time,temperature,humidity`). `meta` may also be a struct column.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sensorbase.cli.client import CliError

NAMES = ("bucket", "source", "field", "time", "value", "latitude", "longitude", "meta")
NOT_FIELDS = frozenset(NAMES)


def schema() -> Any:
    import pyarrow as pa

    return pa.schema(
        [
            ("bucket", pa.string()),
            ("source", pa.string()),
            ("field", pa.string()),
            ("time", pa.timestamp("us", tz="UTC")),
            ("value", pa.float64()),
            ("latitude", pa.float64()),
            ("longitude", pa.float64()),
            ("meta", pa.string()),
        ]
    )


class PointsWriter:
    """Rows of a query's pages into one Parquet file."""

    def __init__(self, path: Path) -> None:
        import pyarrow.parquet as pq

        self._writer = pq.ParquetWriter(path, schema(), compression="zstd")

    def write(self, series: list[dict[str, Any]]) -> None:
        import pyarrow as pa

        columns: dict[str, list[Any]] = {name: [] for name in NAMES}
        for one in series:
            for point in one.get("points", []):
                columns["bucket"].append(one["bucket"])
                columns["source"].append(one["source"])
                columns["field"].append(one["field"])
                columns["time"].append(point["time"])
                columns["value"].append(point["value"])
                columns["latitude"].append(point.get("latitude"))
                columns["longitude"].append(point.get("longitude"))
                meta = point.get("meta")
                columns["meta"].append(None if meta is None else json.dumps(meta))
        if not columns["time"]:
            return
        shape = schema()
        arrays = [
            pa.array(columns[name], pa.string()).cast(shape.field(name).type)
            if name == "time"
            else pa.array(columns[name], shape.field(name).type)
            for name in NAMES
        ]
        self._writer.write_table(pa.Table.from_arrays(arrays, schema=shape))

    def close(self) -> None:
        self._writer.close()


def _times(column: Any) -> list[Any]:
    """A time column as `import` sends it: ISO 8601 text (`Z` when the type has a zone),
    numbers as they are."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if pa.types.is_timestamp(column.type):
        zoned = column.type.tz is not None
        if zoned:
            column = pc.cast(column, pa.timestamp("us", tz="UTC"))
        text = pc.strftime(column, format="%Y-%m-%dT%H:%M:%S" + ("Z" if zoned else ""))
        return list(text.to_pylist())
    if pa.types.is_date(column.type):
        return list(pc.cast(column, pa.string()).to_pylist())
    return list(column.to_pylist())


def points(path: Path, batch_rows: int, value_field: str | None) -> Iterator[
    tuple[int, str, dict[str, Any] | str]
]:  # fmt: skip
    """(row number, column, point or the reason it is none) for every value of the file."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
    except (OSError, pa.ArrowException) as exc:
        raise CliError(f"cannot read {path} as Parquet: {exc}") from None
    names = parquet.schema_arrow.names
    if "time" not in names:
        raise CliError(f"the Parquet file has no 'time' column (its columns: {', '.join(names)})")
    wide = [n for n in names if n not in NOT_FIELDS]
    if "value" not in names and not wide:
        raise CliError("the Parquet file has no value columns besides the time")
    if "value" in names and "field" not in names and value_field is None:
        raise CliError(
            "the Parquet file has a 'value' column: name its field with --field (or a 'field' "
            "column)"
        )
    row = 0
    for record in parquet.iter_batches(batch_size=batch_rows):
        cols = {name: record.column(name) for name in record.schema.names}
        times = _times(cols["time"])
        plain = {
            n: cols[n].to_pylist() for n in ("bucket", "source", "field", "latitude", "longitude")
            if n in cols
        }  # fmt: skip
        metas = cols["meta"].to_pylist() if "meta" in cols else None
        values = {n: cols[n].to_pylist() for n in (["value"] if "value" in cols else []) + wide}
        for i, moment in enumerate(times):
            row += 1
            base: dict[str, Any] = {"time": moment}
            for key in ("bucket", "source"):
                if key in plain and plain[key][i]:
                    base[key] = plain[key][i]
            if plain.get("latitude") and plain["latitude"][i] is not None:
                base["latitude"] = plain["latitude"][i]
                base["longitude"] = plain.get("longitude", [None] * len(times))[i]
            if metas is not None and metas[i] is not None:
                base["meta"] = json.loads(metas[i]) if isinstance(metas[i], str) else metas[i]
            for column, cells in values.items():
                cell = cells[i]
                if cell is None:
                    continue
                name = column
                if column == "value":
                    name = (plain["field"][i] if "field" in plain else None) or value_field or ""
                if isinstance(cell, bool) or not isinstance(cell, int | float):
                    yield row, column, f"'{cell}' is not a number"
                    continue
                if not math.isfinite(cell):
                    yield row, column, f"'{cell}' is not a finite number"
                    continue
                yield row, column, {**base, "field": name, "value": float(cell)}
