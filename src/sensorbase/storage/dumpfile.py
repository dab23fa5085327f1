"""The file of `sensorbase dump` and `sensorbase load`: a whole installation, from any store
into any other (SQLite to PostgreSQL and back).

An uncompressed tar (its parts are compressed already), written and read a part at a time so
that neither side holds more than one batch of points in memory:

    catalog/<table>.ndjson   a table's rows: a JSON array per line, in the columns the
                             manifest names (storage/transfer.py: read generically, so a
                             column a newer schema adds travels with no change here)
    points/<n>.parquet       every point: series_id, time_us (int64), value (float64),
                             extra (the point's position and meta as JSON text, or null);
                             row groups of BATCH_POINTS, parts of PART_POINTS
    manifest.json            written last: format and version, the source's backend and
                             Sensorbase version, the tables in load order with their columns
                             and row counts, each table's last given id, the points' count
                             and sum (checked again after a load)

The dump reads one snapshot of the store (`Store.snapshot`), so servers may go on writing.
The load takes an empty store only: the catalog in one transaction (all of it or none of it),
then the points through the store's own writer, in commits of BATCH_POINTS. A load that fails
part way leaves a store to delete and load again: it says so.
"""

from __future__ import annotations

import json
import math
import os
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import msgspec
import numpy as np

from sensorbase import __version__
from sensorbase.errors import SensorbaseError
from sensorbase.model import ResolvedBatch
from sensorbase.storage.base import Store
from sensorbase.storage.transfer import LOCAL_SETTINGS

FORMAT = "sensorbase-dump"
VERSION = 1
BATCH_POINTS = 250_000
PART_POINTS = 4_000_000
Progress = Callable[[int], None]


@dataclass
class Moved:
    """What a dump wrote or a load stored."""

    tables: dict[str, int] = field(default_factory=dict)
    points: int = 0
    value_sum: float = 0.0
    seconds: float = 0.0
    size_bytes: int = 0

    def add(self, batch: ResolvedBatch) -> None:
        self.points += len(batch.time_us)
        self.value_sum = math.fsum((self.value_sum, math.fsum(batch.value.tolist())))


def _schema() -> Any:
    import pyarrow as pa

    return pa.schema(
        [
            ("series_id", pa.int64()),
            ("time_us", pa.int64()),
            ("value", pa.float64()),
            ("extra", pa.string()),
        ]
    )


def dump(store: Store, path: Path, source: str, progress: Progress | None = None) -> Moved:
    """Write everything the store holds to `path` (which must not exist)."""
    if path.exists():
        raise SensorbaseError(f"{path} exists: choose a new name (a dump never overwrites)")
    if not path.parent.is_dir():
        raise SensorbaseError(f"no directory {path.parent} to write {path.name} in")
    started = time.perf_counter()
    done = Moved()
    part_file = path.with_name(f".{path.name}.part")
    try:
        with (
            tempfile.TemporaryDirectory(dir=path.parent, prefix=".sensorbase-dump-") as scratch,
            tarfile.open(part_file, "w", format=tarfile.PAX_FORMAT) as tar,
            store.snapshot() as snap,
        ):
            work = Path(scratch)
            tables = []
            for table in snap.tables():
                columns = snap.columns(table)
                name = f"catalog/{table}.ndjson"
                rows = _write_ndjson(work / "part", snap.rows(table))
                _add(tar, work / "part", name)
                tables.append({"name": table, "columns": columns, "rows": rows, "file": name})
                done.tables[table] = rows
            parts = _write_points(tar, work, snap.points(BATCH_POINTS), done, progress)
            manifest = {
                "format": FORMAT,
                "version": VERSION,
                "sensorbase": __version__,
                "source": source,
                "created_us": time.time_ns() // 1000,
                "tables": tables,
                "last_ids": snap.last_ids(),
                "points": {"count": done.points, "sum": done.value_sum, "files": parts},
            }
            (work / "manifest.json").write_text(json.dumps(manifest, indent=1))
            _add(tar, work / "manifest.json", "manifest.json")
        os.replace(part_file, path)
    finally:
        part_file.unlink(missing_ok=True)
    done.seconds = time.perf_counter() - started
    done.size_bytes = path.stat().st_size
    return done


def _write_ndjson(path: Path, rows: Iterator[tuple[Any, ...]]) -> int:
    encode = msgspec.json.Encoder().encode
    count = 0
    with path.open("wb") as out:
        for row in rows:
            out.write(encode(row) + b"\n")
            count += 1
    return count


def _add(tar: tarfile.TarFile, path: Path, name: str) -> None:
    tar.add(path, arcname=name)
    path.unlink()


def _write_points(
    tar: tarfile.TarFile,
    work: Path,
    batches: Iterator[ResolvedBatch],
    done: Moved,
    progress: Progress | None,
) -> list[str]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = _schema()
    names: list[str] = []
    writer: Any = None
    in_part = 0
    pending: list[ResolvedBatch] = []
    held = 0

    def flush() -> None:
        nonlocal writer, in_part, pending, held
        if not pending:
            return
        if writer is None:
            writer = pq.ParquetWriter(work / "points.parquet", schema, compression="zstd")
        extra: list[str | None] = []
        for b in pending:
            extra.extend(b.extra if b.extra is not None else [None] * len(b.time_us))
        table = pa.Table.from_arrays(
            [
                pa.array(np.concatenate([b.series_id for b in pending]), pa.int64()),
                pa.array(np.concatenate([b.time_us for b in pending]), pa.int64()),
                pa.array(np.concatenate([b.value for b in pending]), pa.float64()),
                pa.array(extra, pa.string()),
            ],
            schema=schema,
        )
        writer.write_table(table, row_group_size=BATCH_POINTS)
        in_part += held
        pending, held = [], 0
        if progress is not None:
            progress(done.points)

    def close_part() -> None:
        nonlocal writer, in_part
        if writer is None:
            return
        writer.close()
        writer = None
        name = f"points/{len(names):05d}.parquet"
        _add(tar, work / "points.parquet", name)
        names.append(name)
        in_part = 0

    for batch in batches:
        pending.append(batch)
        held += len(batch.time_us)
        done.add(batch)
        if held >= BATCH_POINTS:
            flush()
            if in_part >= PART_POINTS:
                close_part()
    flush()
    close_part()
    return names


def read_manifest(tar: tarfile.TarFile, path: Path) -> dict[str, Any]:
    try:
        found = tar.extractfile("manifest.json")
    except KeyError:
        found = None
    if found is None:
        raise SensorbaseError(f"{path} is not a `sensorbase dump` file (no manifest.json)")
    manifest: dict[str, Any] = json.load(found)
    if manifest.get("format") != FORMAT:
        raise SensorbaseError(f"{path} is not a `sensorbase dump` file")
    if manifest.get("version") != VERSION:
        raise SensorbaseError(
            f"{path} is a dump of format version {manifest.get('version')}; this Sensorbase "
            f"reads version {VERSION}"
        )
    return manifest


def load(store: Store, path: Path, progress: Progress | None = None) -> Moved:
    """Put the dump at `path` into `store`, which must hold nothing yet."""
    started = time.perf_counter()
    done = Moved()
    try:
        tar = tarfile.open(path, "r:")  # noqa: SIM115 (closed by the `with` below)
    except (OSError, tarfile.TarError) as exc:
        raise SensorbaseError(f"cannot read {path}: {exc}") from None
    with tar:
        manifest = read_manifest(tar, path)
        with store.loader() as loader:
            loader.refuse_unless_empty()
            for table in manifest["tables"]:
                name, columns = table["name"], table["columns"]
                known = loader.columns(name)
                if not known:
                    raise SensorbaseError(
                        f"this store has no table '{name}' (the dump is of Sensorbase "
                        f"{manifest['sensorbase']}): upgrade Sensorbase first"
                    )
                unknown = [c for c in columns if c not in known]
                if unknown:
                    raise SensorbaseError(
                        f"this store's table '{name}' has no column(s) {', '.join(unknown)}: "
                        "upgrade Sensorbase first"
                    )
                rows = _rows(tar, table["file"])
                if name == "settings":
                    at = columns.index("name")
                    rows = (r for r in rows if r[at] not in LOCAL_SETTINGS)
                done.tables[name] = loader.insert(name, columns, rows)
            loader.set_last_ids({k: int(v) for k, v in manifest["last_ids"].items()})
        try:
            _load_points(store, tar, manifest["points"]["files"], done, progress)
        except SensorbaseError as exc:
            exc.detail += (
                f" ({done.points:,} point(s) were stored: delete this store and load again)"
            )
            raise
    expected = manifest["points"]
    if done.points != expected["count"] or not math.isclose(
        done.value_sum, expected["sum"], rel_tol=1e-9, abs_tol=1e-9
    ):
        raise SensorbaseError(
            f"the dump's points do not add up: {done.points} read, sum {done.value_sum}; the "
            f"manifest says {expected['count']}, sum {expected['sum']} (a damaged file?)"
        )
    done.seconds = time.perf_counter() - started
    done.size_bytes = path.stat().st_size
    return done


def _member(tar: tarfile.TarFile, name: str) -> IO[bytes]:
    try:
        found = tar.extractfile(name)
    except KeyError:
        found = None
    if found is None:
        raise SensorbaseError(f"the dump lacks {name} (a damaged file?)")
    return found


def _rows(tar: tarfile.TarFile, name: str) -> Iterator[tuple[Any, ...]]:
    decode = msgspec.json.Decoder(list[Any]).decode
    for line in _member(tar, name):
        if line.strip():
            yield tuple(decode(line))


def _load_points(
    store: Store,
    tar: tarfile.TarFile,
    files: list[str],
    done: Moved,
    progress: Progress | None,
) -> None:
    import pyarrow.parquet as pq

    writer = store.writer()
    for name in files:
        parquet = pq.ParquetFile(_member(tar, name))
        for record in parquet.iter_batches(batch_size=BATCH_POINTS):
            extra_column = record.column(3)
            extra = extra_column.to_pylist() if extra_column.null_count < len(record) else None
            batch = ResolvedBatch(
                record.column(0).to_numpy(),
                record.column(1).to_numpy(),
                record.column(2).to_numpy(),
                extra,
            )
            tx = writer.begin()
            try:
                tx.append(batch)
            except BaseException:
                writer.rollback()
                raise
            writer.commit()
            done.add(batch)
            if progress is not None:
                progress(done.points)
