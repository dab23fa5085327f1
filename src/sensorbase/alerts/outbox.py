"""Deliveries as outbox rows: made inside the transaction that makes their event (a state
transition, a write, a bucket change), so that the event and its deliveries commit together or
not at all. The deliverer (alerts/deliver.py) sends them afterwards, at least once.

A delivery's body (JSON) carries its own id, the same at every attempt:

    {"id": "dlv_...", "event": "alert.triggered", "created": "2026-01-01T00:00:00Z",
     "alert": {"id": "freezer-warm", "name": "Freezer warm", "state": "firing",
               "previousState": "ok", "condition": "temperature > -15"},
     "series": {"bucket": "farm", "source": "freezer-1", "field": "temperature"},
     "value": -12.5}
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterable
from typing import Any

from sensorbase.alerts.rules import Rule
from sensorbase.storage.alerts_queries import DeliveryRow, WebhookRow
from sensorbase.times import format_us

EVENTS = ("alert.triggered", "alert.resolved", "data.received", "bucket.updated")


def delivery_id() -> str:
    return "dlv_" + secrets.token_hex(12)


def condition_text(rule: Rule) -> str:
    if rule.condition:
        return rule.condition
    what = (
        rule.field
        if rule.aggregate is None
        else f"{rule.aggregate}({rule.field}, {rule.window_s}s)"
    )
    if rule.no_data_s is not None:
        text = f"no data for {rule.no_data_s}s"
    else:
        text = f"{what} {rule.op} {rule.threshold:g}"
    return text + (f" for {rule.for_s}s" if rule.for_s else "")


def subscribed(
    webhooks: Iterable[WebhookRow], event: str, bucket_id: int | None
) -> list[WebhookRow]:
    return [
        w
        for w in webhooks
        if event in w.events and (w.bucket_id is None or w.bucket_id == bucket_id)
    ]


def deliveries(
    org_id: int,
    event: str,
    payload: dict[str, Any],
    webhooks: Iterable[WebhookRow],
    now_us: int,
    rule: Rule | None = None,
) -> list[DeliveryRow]:
    """One delivery per receiver: each subscribed webhook, and the rule's own URL if it has one."""
    targets: list[tuple[str | None, str, str]] = [(w.key, w.url, w.secret) for w in webhooks]
    if rule is not None and rule.webhook_url:
        targets.append((None, rule.webhook_url, rule.webhook_secret or ""))
    made = []
    for webhook_key, url, secret in targets:
        ident = delivery_id()
        body = {"id": ident, "event": event, "created": format_us(now_us), **payload}
        made.append(
            DeliveryRow(
                id=ident,
                org_id=org_id,
                webhook_key=webhook_key,
                rule_key=rule.key if rule is not None else None,
                url=url,
                secret=secret,
                event=event,
                body=json.dumps(body, separators=(",", ":")),
                created_us=now_us,
                next_us=now_us,
                attempts=0,
                status="pending",
                last_status=None,
                last_error=None,
                done_us=None,
            )
        )
    return made


def alert_payload(
    rule: Rule, series: tuple[str, str, str], state: str, previous: str, value: float | None
) -> dict[str, Any]:
    return {
        "alert": {
            "id": rule.key,
            "name": rule.name,
            "state": state,
            "previousState": previous,
            "condition": condition_text(rule),
        },
        "series": {"bucket": series[0], "source": series[1], "field": series[2]},
        "value": value,
    }
