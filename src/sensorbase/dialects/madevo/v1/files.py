"""`POST /api/v1/secure/datasource/upload` (a CSV or ZIP file, streamed to disk: its columns
and a sample) and `PUT /api/v1/secure/datasource` (a data source created from an upload
`{upload_id, name, timefield, metafield?, timeformat?}`, then imported in the background)."""

from __future__ import annotations

from typing import Any

from fastapi import Depends, Request

from sensorbase.auth.access import require
from sensorbase.catalog import Catalog
from sensorbase.dialects.base import authenticate, bearer, catalog_of, ingest_of
from sensorbase.dialects.madevo.records import refuse
from sensorbase.dialects.madevo.settings import MadevoSettings
from sensorbase.dialects.madevo.v1.config import IMPORT_KEY
from sensorbase.dialects.madevo.v1.imports import Imports, queued
from sensorbase.dialects.madevo.v1.sources import create, json_body, text
from sensorbase.dialects.madevo.v1.uploads import Uploads, described
from sensorbase.errors import InvalidInput, Problem
from sensorbase.ingest.pipeline import Ingest


def upload_route(settings: MadevoSettings) -> Any:
    async def upload(request: Request) -> dict[str, Any]:
        who = authenticate(request, bearer(request))
        require(who, "data:write")
        uploads = Uploads.of(request, settings.max_upload_bytes)
        upload_id, about = await uploads.receive(request, who.org_id)
        columns, sample = await uploads.sample(who.org_id, upload_id)
        return {
            "error": False,
            "message": "file uploaded",
            "upload_id": upload_id,
            "filename": about["filename"],
            "size": about["size"],
            "columns": described(columns, sample),
            "sample": sample,
        }

    return upload


def create_route(settings: MadevoSettings) -> Any:
    imports = Imports(settings.import_batch_rows)

    async def create_from_upload(
        request: Request,
        catalog: Catalog = Depends(catalog_of),
        ingest: Ingest = Depends(ingest_of),
    ) -> dict[str, Any]:
        who = authenticate(request, bearer(request))
        body = await json_body(request)
        problems: list[Problem] = []
        upload_id = text(body, "upload_id", problems)
        if problems:
            raise refuse(problems, InvalidInput)
        uploads = Uploads.of(request, settings.max_upload_bytes)
        _, about = uploads.found(who.org_id, upload_id)
        missing = [
            Problem(f"is not a column of the upload ({', '.join(about['columns'])})", name)
            for name in ("timefield", "metafield")
            if isinstance(body.get(name), str) and body[name] not in about["columns"]
        ]
        if missing:
            raise refuse(missing, InvalidInput)
        made = await create(request, catalog, body, {IMPORT_KEY: queued(about)})
        key = made["data"]["id"]
        imports.start(who, catalog, ingest, uploads, key, upload_id)
        made["message"] = "datasource created: importing"
        return made

    return create_from_upload
