"""The template push: `POST /v1/signals/push/<unique value>`, which makes a device from a
template on first contact. The vendor's body (VENDOR-NOTES, "Databoom"):

    POST /v1/signals/push/AB12CD
    Authorization: Bearer <token with the Publish and Create permissions>
    {"type": "data",
     "message": [{"template": "thermo", "date": "2024-03-01T10:00:00.000Z",
                  "signals": [{"name": "temperature", "value": 21.5}]}]}

A template is a device (a Sensorbase source) whose meta holds `"template": true`. On first
contact the device `<template token>-<unique value>` is made in the template's bucket as a copy
of it: name, meta (with `"template": false, "from_template": "<template token>"`), schema and
signals (their units, meta and status). That needs the Create permission (catalog:write); later
pushes to the same device need Publish only. Each message's `signals` is read as a push's
(both forms, every date format), signals new to the device are created INIT, and the values of
every message are written in one all-or-nothing write. The device is made before the values
are written: a push whose values the device's schema then refuses leaves the device made.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from fastapi import Depends, Path, Request, Response

from sensorbase.auth import access
from sensorbase.auth.keys import Principal
from sensorbase.catalog import Catalog
from sensorbase.dialects import openapi
from sensorbase.dialects.base import catalog_of, ingest_of
from sensorbase.dialects.body import parse_json, read_body, require_media_type
from sensorbase.dialects.databoom.errors import databoom_router, principal, push_words
from sensorbase.dialects.databoom.signals import BODY_SCHEMA, Push, decode_object, values_in
from sensorbase.dialects.databoom.write import PROCESSED, first_sight
from sensorbase.errors import InvalidInput, NotFound, PayloadTooLarge, Problem, invalid
from sensorbase.ingest.pipeline import Ingest, WriteOptions
from sensorbase.limits import MAX_NAME_CHARS, NAME_PATTERN, name_problem
from sensorbase.model import PointBatch, SeriesKey
from sensorbase.times import now_us

router = databoom_router()
# A device token `<template>-<unique>` is a source key (at most MAX_NAME_CHARS): each half has
# its share, so no valid pair makes an invalid key.
MAX_TEMPLATE_CHARS = MAX_NAME_CHARS // 2
MAX_UNIQUE_CHARS = MAX_NAME_CHARS - MAX_TEMPLATE_CHARS - 1
_MESSAGE = {
    "type": "object",
    "required": ["template", "signals"],
    "properties": {
        "template": {
            **openapi.NAME,
            "maxLength": MAX_TEMPLATE_CHARS,
            "description": "The template's token (a source key)",
        },
        "date": BODY_SCHEMA["properties"]["date"],  # type: ignore[index]
        "signals": BODY_SCHEMA["properties"]["signals"],  # type: ignore[index]
    },
}
TEMPLATE_BODY_SCHEMA = {
    "type": "object",
    "required": ["type", "message"],
    "properties": {
        "type": {"type": "string", "enum": ["data"]},
        "message": {"type": "array", "minItems": 1, "items": _MESSAGE},
    },
}
TEMPLATE_SAMPLE = {
    "type": "data",
    "message": [
        {
            "template": "thermo",
            "date": "2024-03-01T10:00:00.000Z",
            "signals": [{"name": "temperature", "value": 21.5}],
        }
    ],
}


def _token_problem(token: str, max_chars: int) -> str | None:
    if len(token) > max_chars:
        return f"must be at most {max_chars} characters (got {len(token)})"
    return name_problem(token)


def decode_messages(body: bytes, received_us: int, max_points: int) -> list[tuple[str, Push]]:
    """Each message's template token and its values; every bad message and value named."""
    data = parse_json(body)
    if not isinstance(data, dict):
        raise invalid([Problem("the body must be a JSON object {type: 'data', message: [...]}")])
    problems: list[Problem] = []
    if data.get("type") != "data":
        problems.append(Problem("must be 'data'", "type"))
    messages = data.get("message")
    if not isinstance(messages, list) or not messages:
        shape = "a non-empty list of {template, date?, signals}"
        raise invalid([*problems, Problem(f"is required: {shape}", "message")])
    count = sum(values_in(m) for m in messages)
    if count > max_points:
        raise PayloadTooLarge(f"{count} values in one push; the limit is {max_points}")
    decoded = []
    for i, message in enumerate(messages):
        where = f"message[{i}]"
        if not isinstance(message, dict):
            problems.append(Problem("must be an object {template, date?, signals}", where))
            continue
        template = message.get("template")
        if not isinstance(template, str) or not template.strip():
            problems.append(Problem("is required: the template token", f"{where}, template"))
            template = ""
        elif (problem := _token_problem(template, MAX_TEMPLATE_CHARS)) is not None:
            problems.append(Problem(f"the template token {problem}", f"{where}, template"))
        as_push = {"device": template or "-", **{k: message.get(k) for k in ("date", "signals")}}
        try:
            decoded.append((template, decode_object(as_push, received_us)))
        except InvalidInput as exc:
            problems += [
                Problem(p.reason, f"{where}, {p.field}" if p.field else where) for p in exc.problems
            ]
    if problems:
        raise invalid(problems)
    return decoded


async def _device(
    catalog: Catalog, who: Principal, template: str, unique: str
) -> tuple[str, str, bool]:
    """The bucket and key of this template's device for this unique value, and whether the
    write must make it from the template (on first contact)."""
    key = f"{template}-{unique}"  # (a valid source key: decode_messages checked it)
    found = await catalog.sources.find(who, key, "data:write")
    if found is not None:
        return found[1].key, key, False
    original = await catalog.sources.find(who, template, "data:write")
    if original is None or original[0].meta.get("template") is not True:
        raise NotFound(
            f"template '{template}' not found: a template is a device (a Sensorbase source) "
            'whose meta holds "template": true'
        )
    access.require(who, "catalog:write")  # making a device is Databoom's Create
    return original[1].key, key, True


def _combined(
    messages: list[tuple[str, Push]], devices: dict[str, tuple[str, str, bool]]
) -> tuple[PointBatch, dict[SeriesKey, dict[str, Any]], list[int]]:
    """One batch of every message's values, the meta of signals it may create, and where
    each message's points start."""
    index: dict[SeriesKey, int] = {}
    parts: list[PointBatch] = []
    starts: list[int] = []
    series_meta: dict[SeriesKey, dict[str, Any]] = {}
    at = 0
    for template, push in messages:
        bucket, source, _ = devices[template]
        batch = push.batch(bucket, source)
        local = np.array([index.setdefault(k, len(index)) for k in batch.keys], np.int32)
        parts.append(PointBatch(batch.keys, local[batch.series_index], batch.time_us, batch.value))
        series_meta.update(first_sight(push, bucket, source))
        starts.append(at)
        at += len(batch)
    combined = PointBatch(
        list(index),
        np.concatenate([p.series_index for p in parts]).astype(np.int32),
        np.concatenate([p.time_us for p in parts]),
        np.concatenate([p.value for p in parts]),
    )
    return combined, series_meta, starts


@router.post(
    "/signals/push/{unique}",
    summary="Push through a template, making the device on first contact (Databoom)",
    responses={404: {"description": "Unknown template"}},
    openapi_extra=openapi.body(TEMPLATE_BODY_SCHEMA, TEMPLATE_SAMPLE),
)
async def template_push(
    request: Request,
    unique: str = Path(
        ...,
        max_length=MAX_UNIQUE_CHARS,
        pattern=NAME_PATTERN,
        description="The device's unique value: its token is <template>-<unique value>",
    ),
    who: Principal = Depends(principal),
    catalog: Catalog = Depends(catalog_of),
    ingest: Ingest = Depends(ingest_of),
) -> Response:
    access.require(who, "data:write")
    require_media_type(request.headers.get("content-type"))
    body = await read_body(request, ingest.settings.max_body_bytes)
    messages = decode_messages(body, now_us(), ingest.settings.max_points_per_request)
    devices: dict[str, tuple[str, str, bool]] = {}
    for template, _ in messages:
        if template not in devices:
            devices[template] = await _device(catalog, who, template, unique)
    batch, series_meta, starts = _combined(messages, devices)
    copies = {(b, s): t for t, (b, s, new) in devices.items() if new}
    copied = {"template": False}

    def where(point: int) -> str:
        i = int(np.searchsorted(starts, point, side="right")) - 1
        return f"message[{i}], {messages[i][1].where(point - starts[i])}"

    options = WriteOptions(
        create_sources=False,
        series_meta=series_meta,
        source_copies=copies,
        source_meta=lambda b, s: {**copied, "from_template": copies[(b, s)]},
    )
    with push_words(None, where):
        await ingest.write(who, batch, options)
    return Response(PROCESSED, media_type="application/json")
