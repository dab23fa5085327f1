"""Alerts and webhooks (docs/alerts.md).

POST /v1/alerts {"bucket": "farm", "name": "Freezer warm", "source": "freezer-*",
                 "field": "temperature", "op": ">", "threshold": -15, "for_s": 300}
→ 201 {"key": "alr_...", "name": "Freezer warm", ..., "states": []}
POST /v1/webhooks {"url": "https://example.com/hook", "events": ["alert.triggered"]}
→ 201 {"key": "whk_...", "url": ..., "events": [...], "secret": "whsec_..."}
PATCH /v1/alerts/alr_... {"threshold": -10}   (absent: unchanged)
→ 200 {"key": "alr_...", ..., "threshold": -10.0, "states": [...]}
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from fastapi import Depends, Query
from pydantic import BaseModel, ConfigDict, Field, StrictBool, field_validator

from sensorbase.alerts.admin import Alerts, DeliveryRow, EventRow, RuleView, WebhookRow
from sensorbase.alerts.outbox import condition_text
from sensorbase.alerts.rules import MAX_DURATION_S, MAX_WINDOW_S, Rule
from sensorbase.alerts.urls import URL_PATTERN
from sensorbase.auth.keys import Principal
from sensorbase.dialects.base import alerts_of
from sensorbase.dialects.native.deps import principal
from sensorbase.dialects.native.fields import Key, Name, json_number
from sensorbase.dialects.native.problems import native_router
from sensorbase.limits import MAX_ID
from sensorbase.times import format_us

router = native_router()
PATTERN_HELP = "A key, or a pattern: * ? [...]"
Pattern = Field(min_length=1, max_length=200, description=PATTERN_HELP)
Event = Literal["alert.triggered", "alert.resolved", "data.received", "bucket.updated"]
Op = Literal[">", ">=", "<", "<=", "==", "!="]
Aggregate = Literal["avg", "min", "max"]
Status = Literal["pending", "delivered", "failed"]
SERIES = ("bucket", "source", "field")


class RuleIn(BaseModel):
    key: Key | None = None
    bucket: Key
    name: Name
    source: str = Pattern
    field: str = Pattern
    op: Op = ">"
    threshold: float = 0.0
    aggregate: Aggregate | None = None
    window_s: int = Field(0, ge=0, le=MAX_WINDOW_S, description="0: 300 with an aggregate")
    for_s: int = Field(0, ge=0, le=MAX_DURATION_S)
    no_data_s: int | None = Field(None, ge=1, le=MAX_DURATION_S)
    cooldown_s: int = Field(300, ge=0, le=MAX_DURATION_S)
    enabled: StrictBool = True  # 0 or "false" is not a boolean
    webhook_url: str | None = Field(None, max_length=2048, pattern=URL_PATTERN)
    webhook_secret: str | None = Field(None, min_length=8, max_length=200)

    _numbers = field_validator(
        "threshold", "window_s", "for_s", "no_data_s", "cooldown_s", mode="before"
    )(json_number)


class RuleChange(BaseModel):
    """A rule's fields to change (absent: unchanged; null clears `aggregate`, `no_data_s` and
    `webhook_url`, and is refused elsewhere). Its key and bucket stay: make another rule for
    another bucket. (The defaults below are None only to tell "absent"; they are never
    validated, so a field's type is what a given value must be.)"""

    model_config = ConfigDict(extra="forbid")
    name: Name = None  # type: ignore[assignment]
    source: str = Field(None, min_length=1, max_length=200, description=PATTERN_HELP)  # type: ignore[assignment]
    field: str = Field(None, min_length=1, max_length=200, description=PATTERN_HELP)  # type: ignore[assignment]
    op: Op = None  # type: ignore[assignment]
    threshold: float = None  # type: ignore[assignment]
    aggregate: Aggregate | None = None
    window_s: int = Field(None, ge=0, le=MAX_WINDOW_S, description="0: 300 with an aggregate")  # type: ignore[assignment]
    for_s: int = Field(None, ge=0, le=MAX_DURATION_S)  # type: ignore[assignment]
    no_data_s: int | None = Field(None, ge=1, le=MAX_DURATION_S)
    cooldown_s: int = Field(None, ge=0, le=MAX_DURATION_S)  # type: ignore[assignment]
    enabled: StrictBool = None  # type: ignore[assignment]
    webhook_url: str | None = Field(None, max_length=2048, pattern=URL_PATTERN)
    webhook_secret: str = Field(None, min_length=8, max_length=200)  # type: ignore[assignment]

    _numbers = field_validator(
        "threshold", "window_s", "for_s", "no_data_s", "cooldown_s", mode="before"
    )(json_number)

    def changes(self) -> dict[str, Any]:
        """The fields given."""
        return self.model_dump(include=self.model_fields_set)


class WebhookIn(BaseModel):
    key: Key | None = None
    url: str = Field(max_length=2048, pattern=URL_PATTERN)
    events: list[Event] = Field(min_length=1, max_length=4)
    secret: str | None = Field(None, min_length=8, max_length=200)
    bucket: Key | None = None


class WebhookChange(BaseModel):
    """A webhook's URL, events or secret to change (absent: unchanged; never null)."""

    model_config = ConfigDict(extra="forbid")
    url: str = Field(None, max_length=2048, pattern=URL_PATTERN)  # type: ignore[assignment]
    events: list[Event] = Field(None, min_length=1, max_length=4)  # type: ignore[arg-type]
    secret: str = Field(None, min_length=8, max_length=200)  # type: ignore[assignment]


@dataclass(frozen=True, slots=True)
class Page:
    """What the history and delivery-log routes take: at most `limit`, newest first, older
    than `before` (the history's event id ending the previous page), in one `status`."""

    limit: int = 100
    before: int | None = None
    status: Status | None = None


LIMIT = Query(100, ge=1, le=1000, description="At most this many, newest first")


async def event_page(
    limit: int = LIMIT,
    before: int | None = Query(None, ge=1, le=MAX_ID, description="Older than this event id"),
) -> Page:
    return Page(limit, before)


async def delivery_page(limit: int = LIMIT, status: Status | None = None) -> Page:
    return Page(limit, status=status)


def rule_out(rule: Rule, *, secret: bool = False) -> dict[str, Any]:
    out = {
        "key": rule.key,
        "bucket": rule.bucket,
        "name": rule.name,
        "source": rule.source,
        "field": rule.field,
        "op": rule.op,
        "threshold": rule.threshold,
        "aggregate": rule.aggregate,
        "window_s": rule.window_s,
        "for_s": rule.for_s,
        "no_data_s": rule.no_data_s,
        "cooldown_s": rule.cooldown_s,
        "enabled": rule.enabled,
        "webhook_url": rule.webhook_url,
        "condition": condition_text(rule),
        "created": format_us(rule.created_us),
    }
    if secret:  # shown once, at creation
        out["webhook_secret"] = rule.webhook_secret
    return out


def view_out(view: RuleView) -> dict[str, Any]:
    return {
        **rule_out(view.rule),
        "states": [
            {
                "series": None if name is None else dict(zip(SERIES, name, strict=True)),
                "state": s.state,
                "since": format_us(s.since_us),
                "value": s.value,
                "last_fired": None if s.fired_us is None else format_us(s.fired_us),
            }
            for s, name in view.states
        ],
    }


def event_out(e: EventRow) -> dict[str, Any]:
    return {
        "id": e.id,
        "alert": e.rule_key,
        "series": dict(zip(SERIES, e.series, strict=True)),
        "from": e.from_state,
        "to": e.to_state,
        "value": e.value,
        "at": format_us(e.at_us),
    }


def webhook_out(w: WebhookRow, bucket: str | None, *, secret: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {
        "key": w.key,
        "url": w.url,
        "events": list(w.events),
        "bucket": bucket,
        "created": format_us(w.created_us),
    }
    if secret:
        out["secret"] = w.secret
    return out


def delivery_out(d: DeliveryRow) -> dict[str, Any]:
    return {
        "id": d.id,
        "event": d.event,
        "webhook": d.webhook_key,
        "alert": d.rule_key,
        "url": d.url,
        "status": d.status,
        "attempts": d.attempts,
        "last_status": d.last_status,
        "last_error": d.last_error,
        "created": format_us(d.created_us),
        "next_attempt": format_us(d.next_us) if d.status == "pending" else None,
        "done": None if d.done_us is None else format_us(d.done_us),
    }


@router.post("/alerts", status_code=201, summary="Create an alert rule")
async def create_alert(
    body: RuleIn, who: Principal = Depends(principal), alerts: Alerts = Depends(alerts_of)
) -> dict[str, Any]:
    given = body.model_dump(exclude={"bucket", "key"})
    rule = Rule(
        id=0, org_id=who.org_id, bucket_id=0, bucket=body.bucket, key=body.key or "", **given
    )
    created = await alerts.create_rule(who, body.bucket, rule)
    return {**rule_out(created, secret=created.webhook_url is not None), "states": []}


@router.get("/alerts", summary="List alert rules and their states")
async def list_alerts(
    bucket: str | None = None,
    who: Principal = Depends(principal),
    alerts: Alerts = Depends(alerts_of),
) -> dict[str, Any]:
    return {"alerts": [view_out(v) for v in await alerts.rules(who, bucket)]}


@router.get("/alert-events", summary="The organisation's alert history, newest first")
async def all_events(
    page: Page = Depends(event_page),
    who: Principal = Depends(principal),
    alerts: Alerts = Depends(alerts_of),
) -> dict[str, Any]:
    return await _events(alerts, who, None, page)


@router.get("/alerts/{key}", summary="An alert rule and its state per series")
async def get_alert(
    key: str, who: Principal = Depends(principal), alerts: Alerts = Depends(alerts_of)
) -> dict[str, Any]:
    return view_out(await alerts.rule(who, key))


@router.patch("/alerts/{key}", summary="Change an alert rule (a new condition restarts its states)")
async def update_alert(
    key: str,
    body: RuleChange,
    who: Principal = Depends(principal),
    alerts: Alerts = Depends(alerts_of),
) -> dict[str, Any]:
    changes = body.changes()
    view = await alerts.update_rule(who, key, changes)
    shown = "webhook_url" in changes or "webhook_secret" in changes
    return {**view_out(view), **({"webhook_secret": view.rule.webhook_secret} if shown else {})}


@router.delete("/alerts/{key}", status_code=204, summary="Delete an alert rule and its history")
async def delete_alert(
    key: str, who: Principal = Depends(principal), alerts: Alerts = Depends(alerts_of)
) -> None:
    await alerts.delete_rule(who, key)


@router.get("/alerts/{key}/events", summary="An alert rule's history, newest first")
async def alert_events(
    key: str,
    page: Page = Depends(event_page),
    who: Principal = Depends(principal),
    alerts: Alerts = Depends(alerts_of),
) -> dict[str, Any]:
    return await _events(alerts, who, key, page)


@router.get("/alerts/{key}/deliveries", summary="The deliveries an alert rule made")
async def alert_deliveries(
    key: str,
    page: Page = Depends(delivery_page),
    who: Principal = Depends(principal),
    alerts: Alerts = Depends(alerts_of),
) -> dict[str, Any]:
    return await _deliveries(alerts, who, page, rule_key=key)


@router.post("/webhooks", status_code=201, summary="Subscribe a URL to events")
async def create_webhook(
    body: WebhookIn, who: Principal = Depends(principal), alerts: Alerts = Depends(alerts_of)
) -> dict[str, Any]:
    made = await alerts.create_webhook(
        who, body.url, body.events, body.secret, body.bucket, body.key
    )
    return webhook_out(made, body.bucket, secret=True)


@router.get("/webhooks", summary="List webhooks")
async def list_webhooks(
    who: Principal = Depends(principal), alerts: Alerts = Depends(alerts_of)
) -> dict[str, Any]:
    return {"webhooks": [webhook_out(w, bucket) for w, bucket in await alerts.webhooks(who)]}


@router.get("/webhooks/{key}", summary="A webhook")
async def get_webhook(
    key: str, who: Principal = Depends(principal), alerts: Alerts = Depends(alerts_of)
) -> dict[str, Any]:
    return webhook_out(*await alerts.webhook(who, key))


@router.patch("/webhooks/{key}", summary="Change a webhook's URL, events or secret")
async def update_webhook(
    key: str,
    body: WebhookChange,
    who: Principal = Depends(principal),
    alerts: Alerts = Depends(alerts_of),
) -> dict[str, Any]:
    hook, bucket = await alerts.update_webhook(
        who, key, url=body.url, events=body.events, secret=body.secret
    )
    return webhook_out(hook, bucket)


@router.delete("/webhooks/{key}", status_code=204, summary="Delete a webhook")
async def delete_webhook(
    key: str, who: Principal = Depends(principal), alerts: Alerts = Depends(alerts_of)
) -> None:
    await alerts.delete_webhook(who, key)


@router.get("/webhooks/{key}/deliveries", summary="A webhook's delivery log, newest first")
async def webhook_deliveries(
    key: str,
    page: Page = Depends(delivery_page),
    who: Principal = Depends(principal),
    alerts: Alerts = Depends(alerts_of),
) -> dict[str, Any]:
    return await _deliveries(alerts, who, page, webhook_key=key)


@router.get("/deliveries", summary="The organisation's delivery log, newest first")
async def deliveries(
    page: Page = Depends(delivery_page),
    who: Principal = Depends(principal),
    alerts: Alerts = Depends(alerts_of),
) -> dict[str, Any]:
    return await _deliveries(alerts, who, page)


async def _events(alerts: Alerts, who: Principal, key: str | None, page: Page) -> dict[str, Any]:
    found = await alerts.events(who, key, page.limit, page.before)
    return {"events": [event_out(e) for e in found]}


async def _deliveries(
    alerts: Alerts,
    who: Principal,
    page: Page,
    *,
    webhook_key: str | None = None,
    rule_key: str | None = None,
) -> dict[str, Any]:
    found = await alerts.deliveries(
        who, page.limit, webhook_key=webhook_key, rule_key=rule_key, status=page.status
    )
    return {"deliveries": [delivery_out(d) for d in found]}
