"""dakkio's alerts and webhooks (its public documentation; docs/dialects/dakkio.md), through the
alerts service. An admin key manages them.

    POST /api/alerts {"bucketId": "...", "dataSourceId": "...", "name": "Too hot",
                      "condition": "temperature is greater than 30", "webhookUrl": "https://...",
                      "cooldownMinutes": 5}
    201 {"message": "Alert created successfully",
         "alert": {"_id": "...", ..., "parsedCondition": {"field": "temperature",
                   "operator": "greater_than", "value": 30}, "status": "monitoring"}}
    POST /api/webhooks {"bucketId": "...", "url": "https://...", "events": ["alert.triggered"],
                        "secret": "..."}

An alert's `status` is dakkio's: `triggered` while any of its series fires, `cooldown` within
`cooldownMinutes` of its last firing, else `monitoring`.
"""

from __future__ import annotations

import math
from typing import Any

from fastapi import Depends, Request, Response

from sensorbase.alerts.admin import Alerts, RuleView, WebhookRow
from sensorbase.alerts.outbox import EVENTS
from sensorbase.alerts.rules import MAX_DURATION_S, Rule
from sensorbase.alerts.urls import URL_PATTERN
from sensorbase.auth.keys import Principal
from sensorbase.dialects import openapi
from sensorbase.dialects.base import alerts_of, dialect_router
from sensorbase.dialects.dakkio import conditions
from sensorbase.dialects.dakkio.body import json_object
from sensorbase.dialects.dakkio.credential import principal, require
from sensorbase.dialects.dakkio.dates import ms_text
from sensorbase.dialects.dakkio.errors import (
    ERROR_SCHEMA,
    MISSING,
    Details,
    expected,
    json_reply,
    render_error,
)
from sensorbase.dialects.dakkio.ids import object_id
from sensorbase.times import now_us

router = dialect_router("dakkio", render_error, tags=["dakkio"], error_schema=ERROR_SCHEMA)
_ID = {"type": "string", "minLength": 1, "maxLength": 100, "pattern": r"\S"}
_URL = {"type": "string", "maxLength": 2048, "pattern": URL_PATTERN}
ALERT_SCHEMA = {
    "type": "object",
    "required": ["bucketId", "dataSourceId", "name", "condition"],
    "properties": {
        "bucketId": _ID,
        "dataSourceId": {**_ID, "description": "A data source id, or a pattern: * ? [...]"},
        "name": {"type": "string", "minLength": 1, "maxLength": 100, "pattern": r"\S"},
        "condition": {"type": "string", "minLength": 1, "maxLength": 500, "pattern": r"\S"},
        "webhookUrl": openapi.nullable(_URL),
        "cooldownMinutes": {
            "type": "number",
            "minimum": 0,
            "maximum": MAX_DURATION_S // 60,
            "default": 5,
        },
    },
}
WEBHOOK_SCHEMA = {
    "type": "object",
    "required": ["bucketId", "url", "events"],
    "properties": {
        "bucketId": _ID,
        "url": _URL,
        "events": {
            "type": "array",
            "minItems": 1,
            "items": {"type": "string", "enum": list(EVENTS)},
        },
        "secret": openapi.nullable({"type": "string", "minLength": 8, "maxLength": 200}),
    },
}


def _string(
    body: dict[str, Any],
    name: str,
    details: Details,
    *,
    required: bool,
    max_len: int = 100,
    min_len: int = 1,
) -> str | None:
    """A string member as the schemas above declare it (a required one not blank)."""
    value = body.get(name, MISSING if required else None)
    if value is None and not required:
        return None
    if not isinstance(value, str):
        details.add(["body", name], expected("string", value))
        return None
    if required and not value.strip():
        details.add(["body", name], "String must contain at least 1 character(s)")
        return None
    if not min_len <= len(value) <= max_len:
        details.add(["body", name], f"String must contain {min_len} to {max_len} character(s)")
        return None
    return value


def alert_out(view: RuleView) -> dict[str, Any]:
    rule = view.rule
    fired = [s.fired_us for s, _ in view.states if s.fired_us is not None]
    last = max(fired) if fired else None
    if any(s.state == "firing" for s, _ in view.states):
        status = "triggered"
    elif last is not None and now_us() - last < rule.cooldown_s * 1_000_000:
        status = "cooldown"
    else:
        status = "monitoring"
    condition = rule.condition or ""
    try:
        parsed = conditions.parse(condition).parsed() if condition else None
    except ValueError:
        parsed = None
    return {
        "_id": rule.key,
        "bucketId": rule.bucket,
        "dataSourceId": rule.source,
        "name": rule.name,
        "condition": condition,
        "parsedCondition": parsed,
        "webhookUrl": rule.webhook_url,
        "cooldownMinutes": rule.cooldown_s / 60,
        "status": status,
        "isActive": rule.enabled,
        "lastTriggeredAt": None if last is None else ms_text(last),
        "createdAt": ms_text(rule.created_us),
        "updatedAt": ms_text(rule.created_us),
    }


def webhook_out(hook: WebhookRow, bucket: str | None) -> dict[str, Any]:
    return {
        "_id": hook.key,
        "bucketId": bucket,
        "url": hook.url,
        "events": list(hook.events),
        "isActive": True,
        "createdAt": ms_text(hook.created_us),
    }


@router.post(
    "/api/alerts",
    status_code=201,
    summary="dakkio: create an alert (admin key)",
    openapi_extra=openapi.body(
        ALERT_SCHEMA,
        {
            "bucketId": "507f1f77bcf86cd799439011",
            "dataSourceId": "507f1f77bcf86cd799439012",
            "name": "Too hot",
            "condition": "temperature is greater than 30 for 5 minutes",
            "webhookUrl": "https://example.com/hooks/dakkio",
            "cooldownMinutes": 5,
        },
    ),
)
async def create_alert(
    request: Request, who: Principal = Depends(principal), alerts: Alerts = Depends(alerts_of)
) -> Response:
    require(who, "admin")
    body = await json_object(request)
    details = Details()
    bucket = _string(body, "bucketId", details, required=True)
    source = _string(body, "dataSourceId", details, required=True)
    name = _string(body, "name", details, required=True)
    text = _string(body, "condition", details, required=True, max_len=500)
    url = _string(body, "webhookUrl", details, required=False, max_len=2048)
    cooldown = body.get("cooldownMinutes", 5)
    if (
        isinstance(cooldown, bool)
        or not isinstance(cooldown, int | float)
        or not (math.isfinite(cooldown) and 0 <= cooldown * 60 <= MAX_DURATION_S)
    ):
        details.add(
            ["body", "cooldownMinutes"], f"Expected a number of minutes 0 to {MAX_DURATION_S // 60}"
        )
        cooldown = 5
    parsed = None
    if text is not None:
        try:
            parsed = conditions.parse(text)
        except ValueError as exc:
            details.add(["body", "condition"], f"Could not parse the condition: {exc}")
    if details or parsed is None or bucket is None or source is None or name is None:
        raise details.error()
    rule = Rule(
        id=0, org_id=who.org_id, bucket_id=0, bucket=bucket, key=object_id(), name=name,
        source=source, field=parsed.field or "*", op=parsed.op,  # type: ignore[arg-type]
        threshold=parsed.value, aggregate=parsed.aggregate,  # type: ignore[arg-type]
        window_s=parsed.window_s, for_s=parsed.for_s, no_data_s=parsed.no_data_s,
        cooldown_s=round(cooldown * 60), webhook_url=url, condition=text,
    )  # fmt: skip
    created = await alerts.create_rule(who, bucket, rule)
    out = alert_out(RuleView(created, []))
    if created.webhook_url:
        out["webhookSecret"] = created.webhook_secret  # shown once: it signs the deliveries
    return json_reply({"message": "Alert created successfully", "alert": out}, 201)


@router.get("/api/alerts", summary="dakkio: list alerts")
async def list_alerts(
    request: Request, who: Principal = Depends(principal), alerts: Alerts = Depends(alerts_of)
) -> Response:
    bucket = request.query_params.get("bucketId")
    found = [alert_out(v) for v in await alerts.rules(who, bucket)]
    return json_reply({"alerts": found, "data": found})


@router.get("/api/alerts/{alert_id}", summary="dakkio: an alert")
async def get_alert(
    alert_id: str, who: Principal = Depends(principal), alerts: Alerts = Depends(alerts_of)
) -> Response:
    return json_reply({"alert": alert_out(await alerts.rule(who, alert_id))})


@router.delete("/api/alerts/{alert_id}", summary="dakkio: delete an alert (admin key)")
async def delete_alert(
    alert_id: str, who: Principal = Depends(principal), alerts: Alerts = Depends(alerts_of)
) -> Response:
    require(who, "admin")
    await alerts.delete_rule(who, alert_id)
    return json_reply({"message": "Alert deleted successfully"})


@router.post(
    "/api/webhooks",
    status_code=201,
    summary="dakkio: create a webhook (admin key)",
    openapi_extra=openapi.body(
        WEBHOOK_SCHEMA,
        {
            "bucketId": "507f1f77bcf86cd799439011",
            "url": "https://example.com/hooks/dakkio",
            "events": ["alert.triggered", "data.received"],
            "secret": "a-long-random-secret",
        },
    ),
)
async def create_webhook(
    request: Request, who: Principal = Depends(principal), alerts: Alerts = Depends(alerts_of)
) -> Response:
    require(who, "admin")
    body = await json_object(request)
    details = Details()
    bucket = _string(body, "bucketId", details, required=True)
    url = _string(body, "url", details, required=True, max_len=2048)
    secret = _string(body, "secret", details, required=False, min_len=8, max_len=200)
    events = body.get("events", MISSING)
    if not isinstance(events, list) or not all(isinstance(e, str) for e in events):
        details.add(["body", "events"], expected("array", events))
        events = []
    if details or bucket is None or url is None:
        raise details.error()
    made = await alerts.create_webhook(who, url, events, secret, bucket, object_id())
    out = webhook_out(made, bucket)
    if secret is None:
        out["secret"] = made.secret  # made here: shown once
    return json_reply({"message": "Webhook created successfully", "webhook": out}, 201)


@router.get("/api/webhooks", summary="dakkio: list webhooks")
async def list_webhooks(
    request: Request, who: Principal = Depends(principal), alerts: Alerts = Depends(alerts_of)
) -> Response:
    bucket = request.query_params.get("bucketId")
    found = [webhook_out(w, b) for w, b in await alerts.webhooks(who) if bucket in (None, b)]
    return json_reply({"webhooks": found, "data": found})


@router.delete("/api/webhooks/{webhook_id}", summary="dakkio: delete a webhook (admin key)")
async def delete_webhook(
    webhook_id: str, who: Principal = Depends(principal), alerts: Alerts = Depends(alerts_of)
) -> Response:
    require(who, "admin")
    await alerts.delete_webhook(who, webhook_id)
    return json_reply({"message": "Webhook deleted successfully"})
