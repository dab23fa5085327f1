"""`POST /api/v1/secure/datasource/upload`: a CSV or ZIP file streamed to disk in chunks (never
whole in memory), then its header and first rows read back: the detected columns and a sample.

Kept under `<data_dir>/madevo-uploads/<organisation id>/<upload id>/` until a data source is
created from it (`PUT /api/v1/secure/datasource`) and imported, or for a day (`UNUSED_S`, swept
at the organisation's next upload): an upload id of another organisation is not found. The
directory is the node's own: the PUT must reach the node that took the upload.

The body is multipart/form-data (the file in any part that has a filename, or the part `file`)
or the file itself (text/csv, application/zip, application/octet-stream)."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import secrets
import shutil
import time
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.websockets import WebSocket

from sensorbase.dialects.madevo.records import kind_of
from sensorbase.dialects.madevo.v1 import timeformat
from sensorbase.errors import InvalidInput, NotFound, PayloadTooLarge, UnsupportedMediaType

SAMPLE_ROWS = 10
UNUSED_S = 86_400  # an upload no data source was created from is removed after a day
RAW_TYPES = ("text/csv", "application/zip", "application/octet-stream", "text/plain")
_ID_CHARS = frozenset("0123456789abcdef")


class Uploads:
    """The uploads of one data directory (`Uploads.of`: the app's)."""

    def __init__(self, root: Path, max_bytes: int) -> None:
        self.root = root
        self.max_bytes = max_bytes

    @staticmethod
    def of(request: Request | WebSocket, max_bytes: int) -> Uploads:
        svc = request.scope["app"].services
        return Uploads(svc.settings.data_dir / "madevo-uploads", max_bytes)

    def _dir(self, org_id: int, upload_id: str) -> Path:
        if len(upload_id) != 24 or not set(upload_id) <= _ID_CHARS:
            raise NotFound(f"upload '{upload_id[:40]}' not found", what="upload", name=upload_id)
        return self.root / str(org_id) / upload_id

    def found(self, org_id: int, upload_id: str) -> tuple[Path, dict[str, Any]]:
        """The upload's file and what is known of it; NotFound for another org's."""
        where = self._dir(org_id, upload_id)
        try:
            about = json.loads((where / "upload.json").read_text())
        except FileNotFoundError:
            raise NotFound(
                f"upload '{upload_id}' not found", what="upload", name=upload_id
            ) from None
        return where / "file", about

    def remove(self, org_id: int, upload_id: str) -> None:
        shutil.rmtree(self._dir(org_id, upload_id), ignore_errors=True)

    def sweep(self, org_id: int, now: float) -> None:
        """Remove the organisation's uploads left unused for `UNUSED_S` (never imported)."""
        try:
            found = list((self.root / str(org_id)).iterdir())
        except FileNotFoundError:
            return
        for where in found:
            with contextlib.suppress(FileNotFoundError):
                if now - where.stat().st_mtime > UNUSED_S:
                    shutil.rmtree(where, ignore_errors=True)

    async def receive(self, request: Request, org_id: int) -> tuple[str, dict[str, Any]]:
        """Stream the request's file to disk; its id and what it holds."""
        await run_in_threadpool(self.sweep, org_id, time.time())
        upload_id = secrets.token_hex(12)
        where = self._dir(org_id, upload_id)
        await run_in_threadpool(where.mkdir, parents=True)
        try:
            with open(where / "file", "wb") as sink:
                filename, size = await self._stream(request, sink)
            about = await run_in_threadpool(_inspect, where / "file", filename, size)
            (where / "upload.json").write_text(json.dumps(about))
        except BaseException:
            shutil.rmtree(where, ignore_errors=True)
            raise
        return upload_id, about

    async def sample(self, org_id: int, upload_id: str) -> tuple[list[str], list[dict[str, str]]]:
        path, about = self.found(org_id, upload_id)
        return await run_in_threadpool(_sample, path, about)

    async def _stream(self, request: Request, sink: IO[bytes]) -> tuple[str, int]:
        kind, options = parse_options_header(request.headers.get("content-type", ""))
        media = kind.decode().lower()
        if media == "multipart/form-data":
            boundary = options.get(b"boundary")
            if not boundary:
                raise InvalidInput("a multipart body needs its boundary")
            return await self._multipart(request, boundary, sink)
        if media not in RAW_TYPES:
            raise UnsupportedMediaType(
                "send the file as multipart/form-data (field 'file') or as the body "
                f"({', '.join(RAW_TYPES)})"
            )
        name = request.query_params.get("filename") or (
            "upload.zip" if media == "application/zip" else "upload.csv"
        )
        size = 0
        async for chunk in request.stream():
            size = self._count(size, chunk)
            await run_in_threadpool(sink.write, chunk)
        return name, size

    async def _multipart(
        self, request: Request, boundary: bytes, sink: IO[bytes]
    ) -> tuple[str, int]:
        state: dict[str, Any] = {"field": b"", "value": b"", "headers": {}, "file": False}
        name: list[str] = []
        pending = bytearray()

        def on_header_field(data: bytes, start: int, end: int) -> None:
            state["field"] += data[start:end]

        def on_header_value(data: bytes, start: int, end: int) -> None:
            state["value"] += data[start:end]

        def on_header_end() -> None:
            state["headers"][state["field"].lower()] = state["value"]
            state["field"], state["value"] = b"", b""

        def on_headers_finished() -> None:
            _, disposition = parse_options_header(state["headers"].get(b"content-disposition"))
            filename = disposition.get(b"filename")
            if filename is None and disposition.get(b"name") == b"file":
                filename = b"upload.csv"  # the part `file` sent as a plain field
            state["file"] = filename is not None and not name
            if filename is not None and not name:
                name.append(filename.decode(errors="replace") or "upload.csv")

        def on_part_data(data: bytes, start: int, end: int) -> None:
            if state["file"]:
                pending.extend(data[start:end])

        def on_part_end() -> None:
            state["headers"], state["file"] = {}, False

        parser = MultipartParser(
            boundary,
            {
                "on_header_field": on_header_field,
                "on_header_value": on_header_value,
                "on_header_end": on_header_end,
                "on_headers_finished": on_headers_finished,
                "on_part_data": on_part_data,
                "on_part_end": on_part_end,
            },
        )
        size = 0
        try:
            async for chunk in request.stream():
                parser.write(chunk)
                if pending:
                    size = self._count(size, pending)
                    await run_in_threadpool(sink.write, bytes(pending))
                    pending.clear()
            parser.finalize()
        except MultipartParseError as exc:
            raise InvalidInput(f"the multipart body is malformed: {exc}") from None
        if not name:
            raise InvalidInput("the multipart body holds no file: send it in a part 'file'")
        return name[0], size

    def _count(self, size: int, chunk: bytes | bytearray) -> int:
        size += len(chunk)
        if size > self.max_bytes:
            raise PayloadTooLarge(
                f"the upload is over {self.max_bytes} bytes (SENSORBASE_MADEVO_MAX_UPLOAD_BYTES)"
            )
        return size


@contextmanager
def open_csv(path: Path, about: dict[str, Any]) -> Iterator[tuple[IO[str], IO[bytes]]]:
    """The upload's CSV as text, and the binary stream under it (its position: progress)."""
    with open(path, "rb") as raw:
        if about["kind"] == "zip":
            with zipfile.ZipFile(raw) as archive, archive.open(about["member"]) as member:
                yield io.TextIOWrapper(member, "utf-8-sig", newline=""), member
        else:
            yield io.TextIOWrapper(raw, "utf-8-sig", newline=""), raw


def _inspect(path: Path, filename: str, size: int) -> dict[str, Any]:
    about: dict[str, Any] = {"filename": filename, "size": size, "kind": "csv", "rows_bytes": size}
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            members = [m for m in archive.infolist() if not m.is_dir()]
            csvs = [m for m in members if m.filename.lower().endswith(".csv")] or members
            if not csvs:
                raise InvalidInput("the ZIP archive holds no file")
            about.update(kind="zip", member=csvs[0].filename, rows_bytes=csvs[0].file_size)
    columns, _ = _sample(path, about)
    if not columns:
        raise InvalidInput("the file has no header row: its first line names the columns")
    about["columns"] = columns
    return about


def _sample(path: Path, about: dict[str, Any]) -> tuple[list[str], list[dict[str, str]]]:
    try:
        with open_csv(path, about) as (text, _):
            reader = csv.reader(text)
            header = next(reader, [])
            rows = []
            for _, row in zip(range(SAMPLE_ROWS), reader, strict=False):
                rows.append(dict(zip(header, row, strict=False)))
    except (UnicodeDecodeError, csv.Error, zipfile.BadZipFile) as exc:
        raise InvalidInput(f"the file is not a UTF-8 CSV: {exc}") from None
    return header, rows


def described(columns: list[str], sample: list[dict[str, str]]) -> list[dict[str, Any]]:
    """Each column's type as its sample shows it: time (with the timeformat that reads it),
    number (numeric strings only) or string."""
    out = []
    for name in columns:
        values = [row[name] for row in sample if row.get(name)]
        kinds = {kind_of(v) for v in values}
        column: dict[str, Any] = {"name": name, "type": "string"}
        if values and kinds == {"numeric"}:
            column["type"] = "number"
        if values and kinds == {"text"}:
            found = timeformat.detect(values)
            if found is not None:
                column.update(type="time", timeformat=found)
        out.append(column)
    return out
