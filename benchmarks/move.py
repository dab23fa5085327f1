"""Backups and moves of a large store: the figures of docs/lifecycle.md.

    .venv/bin/python benchmarks/move.py                      # 10M points, 1,000 series
    .venv/bin/python benchmarks/move.py --points 1000000     # a quick look

1. Builds an embedded store of --points points (--series series of 1 Hz sensor readings, a
   random walk) through the store's own bulk write path (the writer's transactions, as the
   write queue commits them; no HTTP), and lets it fold.
2. `sensorbase backup --verify` of it (storage/sqlite/backup.py): duration and size.
3. `sensorbase dump` of it, `load` into a new PostgreSQL database, `dump` of that, `load`
   into a new SQLite store (storage/dumpfile.py): points/s of each, and per series the count
   and the sum at each end, which must be equal.

Durations are wall time and this process's CPU time (PostgreSQL's own CPU is not in it).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import psycopg

from sensorbase.model import ResolvedBatch, TimeRange
from sensorbase.settings import Settings
from sensorbase.storage import open_store
from sensorbase.storage.base import Store
from sensorbase.storage.dumpfile import dump, load
from sensorbase.storage.sqlite.backup import backup

BATCH = 500_000


def cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)  # the fold helper
    return usage.ru_utime + usage.ru_stime + children.ru_utime + children.ru_stime


def timed(fn: Callable[[], Any]) -> tuple[Any, float, float]:
    wall, cpu = time.perf_counter(), cpu_s()
    out = fn()
    return out, time.perf_counter() - wall, cpu_s() - cpu


def build(store: Store, points: int, series: int) -> None:
    writer = store.writer()
    tx = writer.begin()
    org = tx.create_org("bench", "Bench")
    bucket = tx.create_bucket(org.id, "plant", "Plant", "", {})
    ids: list[int] = []
    for s in range(series // 10):
        source = tx.create_source(org.id, bucket.id, f"dev{s:04d}", f"dev{s:04d}", {}, None)
        ids += tx.get_or_create_series(source.id, [f"f{k}" for k in range(10)]).values()
    writer.commit()
    per_series = points // len(ids)
    rng = np.random.default_rng(7)
    start_us = 1_780_000_000_000_000
    # Time-major, as a fleet reports: each batch holds the next stretch of every series.
    stretch = max(1, BATCH // len(ids))
    for at in range(0, per_series, stretch):
        n = min(stretch, per_series - at)
        sid = np.repeat(np.array(ids, np.int64), n)
        t = np.tile(start_us + (at + np.arange(n, dtype=np.int64)) * 1_000_000, len(ids))
        v = np.round(20 + np.cumsum(rng.normal(0, 0.05, len(t))) % 10, 2)
        tx = writer.begin()
        tx.append(ResolvedBatch(sid, t, v, None))
        writer.commit()


def contents(store: Store) -> dict[int, tuple[int, float]]:
    reader = store.reader()
    org = reader.get_org("bench")
    assert org is not None
    out = {}
    for ref in reader.list_series(org.id):
        row = reader.aggregate(ref.id, TimeRange(None, None), ("count", "sum"))
        out[ref.id] = (int(row.values["count"] or 0), float(row.values["sum"] or 0.0))
    return out


def same(a: dict[int, tuple[int, float]], b: dict[int, tuple[int, float]]) -> bool:
    return a.keys() == b.keys() and all(
        a[k][0] == b[k][0] and math.isclose(a[k][1], b[k][1], rel_tol=1e-12) for k in a
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--points", type=int, default=10_000_000)
    parser.add_argument("--series", type=int, default=1_000)
    parser.add_argument(
        "--database-url", default="postgresql://postgres@127.0.0.1:5432/test",
        help="A PostgreSQL server (its database is only used to create a scratch one).",
    )  # fmt: skip
    parser.add_argument("--dir", type=Path, default=None, help="Scratch directory.")
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="sb-move-", dir=args.dir))
    figures: dict[str, Any] = {"points": args.points, "series": args.series}
    pg_name = f"sensorbase_move_{uuid.uuid4().hex[:8]}"
    admin = psycopg.connect(args.database_url, autocommit=True)
    try:
        first = open_store(Settings(data_dir=scratch / "one"))
        first.open()
        _, wall, cpu = timed(lambda: build(first, args.points, args.series))
        first.close()  # folds what is left, as a stopped server does
        db = scratch / "one" / "sensorbase.db"
        figures["build"] = {"s": round(wall, 1), "cpu_s": round(cpu, 1),
                            "db_bytes": db.stat().st_size}  # fmt: skip

        report, wall, cpu = timed(lambda: backup(db, scratch / "backup.db", verify=True))
        figures["backup --verify"] = {
            "s": round(wall, 2), "cpu_s": round(cpu, 2), "bytes": report.size_bytes,
            "bytes_per_point": round(report.size_bytes / args.points, 2),
        }  # fmt: skip

        def moved(verb: str, done: Any, wall: float, cpu: float) -> dict[str, Any]:
            return {"s": round(wall, 1), "cpu_s": round(cpu, 1),
                    "points_per_s": round(done.points / wall), "file_bytes": done.size_bytes,
                    "what": verb}  # fmt: skip

        first = open_store(Settings(data_dir=scratch / "one"))
        first.open()
        before = contents(first)
        done, wall, cpu = timed(lambda: dump(first, scratch / "one.sbdump", "sqlite"))
        first.close()
        figures["dump sqlite"] = moved("dump", done, wall, cpu)

        admin.execute(f'CREATE DATABASE "{pg_name}"')
        info = psycopg.conninfo.conninfo_to_dict(args.database_url)
        pg_url = f"postgresql://{info.get('user', 'postgres')}@{info.get('host', '127.0.0.1')}" \
            f":{info.get('port', 5432)}/{pg_name}"  # fmt: skip
        pg = open_store(Settings(database_url=pg_url))
        pg.open()
        done, wall, cpu = timed(lambda: load(pg, scratch / "one.sbdump"))
        figures["load postgresql"] = moved("load", done, wall, cpu)
        in_pg = contents(pg)
        done, wall, cpu = timed(lambda: dump(pg, scratch / "two.sbdump", "postgresql"))
        figures["dump postgresql"] = moved("dump", done, wall, cpu)
        pg.close()

        back = open_store(Settings(data_dir=scratch / "three"))
        back.open()
        done, wall, cpu = timed(lambda: load(back, scratch / "two.sbdump"))
        figures["load sqlite"] = moved("load", done, wall, cpu)
        after = contents(back)
        back.close()
        figures["round trip"] = {
            "series": len(before),
            "points": sum(c for c, _ in before.values()),
            "sum": sum(s for _, s in before.values()),
            "postgresql equal": same(before, in_pg),
            "sqlite again equal": same(before, after),
        }
        figures["load_average"] = os.getloadavg()
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)')
        admin.close()
        shutil.rmtree(scratch, ignore_errors=True)
    print(json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()
