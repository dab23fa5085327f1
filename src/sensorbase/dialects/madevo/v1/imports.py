"""`PUT /api/v1/secure/datasource`: a data source created from an upload and imported in the
background, in batches of `import_batch_rows` rows, each written through `insert_rows` (the one
decoder, the one ingest pipeline, one commit a batch). Progress is kept in the data source's
`meta.madevo_import` after a batch at most once a second (and at the end), so any node answers
it (`GET ...datasource?id=`):

    {"status": "queued" | "running" | "done" | "failed", "rows_inserted", "rows_skipped",
     "bytes_read", "bytes_total", "skipped": [first 100 skipped rows], "started_at",
     "updated_at"?, "finished_at"?, "error"?}

The file is read as it is imported (the csv module over a buffered file: memory is one batch),
and removed once the import ends. An import runs on the node that took the PUT; if that node
stops, the import stops with it (it is not resumed: create the data source again from a new
upload), and once its progress has not moved for five minutes it is shown as "failed", saying
so (v1/config.as_of_now)."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import logging
import time
from pathlib import Path
from typing import Any

from starlette.concurrency import run_in_threadpool

from sensorbase.auth.keys import Principal
from sensorbase.catalog import Catalog
from sensorbase.dialects.madevo.v1.config import IMPORT_KEY
from sensorbase.dialects.madevo.v1.rows import insert_rows, worded
from sensorbase.dialects.madevo.v1.uploads import Uploads, open_csv
from sensorbase.errors import SensorbaseError
from sensorbase.ingest.pipeline import Ingest
from sensorbase.times import format_us, now_us

KEPT_SKIPS = 100
SAVE_EVERY_S = 1.0  # progress written at most this often: a commit of its own each time
log = logging.getLogger("sensorbase.madevo")


def queued(about: dict[str, Any]) -> dict[str, Any]:
    return {
        "status": "queued",
        "rows_inserted": 0,
        "rows_skipped": 0,
        "bytes_read": 0,
        "bytes_total": about["rows_bytes"],
        "skipped": [],
        "started_at": format_us(now_us()),
    }


class Imports:
    def __init__(self, batch_rows: int) -> None:
        self.batch_rows = batch_rows
        self.running: set[asyncio.Task[None]] = set()  # held: a task only weakly referenced dies

    def start(
        self,
        who: Principal,
        catalog: Catalog,
        ingest: Ingest,
        uploads: Uploads,
        key: str,
        upload_id: str,
    ) -> None:
        task = asyncio.create_task(self._run(who, catalog, ingest, uploads, key, upload_id))
        self.running.add(task)
        task.add_done_callback(self.running.discard)

    async def _run(
        self,
        who: Principal,
        catalog: Catalog,
        ingest: Ingest,
        uploads: Uploads,
        key: str,
        upload_id: str,
    ) -> None:
        path, about = uploads.found(who.org_id, upload_id)
        progress = queued(about) | {"status": "running"}
        try:
            await self._save(who, catalog, key, progress)  # running: whoever asks sees it start
            await self._import(who, catalog, ingest, key, path, about, progress)
            progress["status"] = "done"
        except SensorbaseError as exc:  # the data source deleted meanwhile, say
            progress.update(status="failed", error=exc.detail)
        except Exception as exc:
            log.exception("the import of upload %s into data source %s failed", upload_id, key)
            progress.update(status="failed", error=f"{type(exc).__name__}: {exc}")
        progress["finished_at"] = format_us(now_us())
        await run_in_threadpool(uploads.remove, who.org_id, upload_id)
        with contextlib.suppress(SensorbaseError):  # deleted: nobody can ask any more
            await self._save(who, catalog, key, progress)

    async def _import(
        self,
        who: Principal,
        catalog: Catalog,
        ingest: Ingest,
        key: str,
        path: Path,
        about: dict[str, Any],
        progress: dict[str, Any],
    ) -> None:
        with open_csv(path, about) as (text, raw):
            reader = csv.reader(text)
            header = next(reader, [])
            line = 0
            saved = time.monotonic()

            def batch() -> list[dict[str, Any]]:
                return [
                    dict(zip(header, row, strict=False))
                    for _, row in zip(range(self.batch_rows), reader, strict=False)
                ]

            while rows := await run_in_threadpool(batch):
                bucket = await catalog.buckets.get(who, key, "data:write")
                done = await insert_rows(who, ingest, bucket, rows)
                kept = progress["skipped"]
                for p in done.skipped[: max(0, KEPT_SKIPS - len(kept))]:
                    kept.append({"row": line + (p.index or 0) + 1, "reason": worded(p)})
                progress["rows_inserted"] += done.rows
                progress["rows_skipped"] += len(rows) - done.rows
                progress["bytes_read"] = raw.tell()
                line += len(rows)
                if time.monotonic() - saved >= SAVE_EVERY_S:  # (the end is always saved)
                    await self._save(who, catalog, key, progress)
                    saved = time.monotonic()

    @staticmethod
    async def _save(who: Principal, catalog: Catalog, key: str, progress: dict[str, Any]) -> None:
        shown = dict(progress, updated_at=format_us(now_us()))
        shown["skipped"] = list(progress["skipped"])
        await catalog.buckets.change_meta(who, key, lambda b: {**b.meta, IMPORT_KEY: shown})
