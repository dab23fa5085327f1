"""`sensorbase alerts` and `sensorbase webhooks`: alert rules, their history, webhooks and the
delivery log (`/v1/alerts`, `/v1/webhooks`, `/v1/deliveries`; docs/alerts.md)."""

from __future__ import annotations

from typing import Any

import typer

from sensorbase.cli.client import api
from sensorbase.cli.options import BucketOption, MaybeBucketOption, YesOption
from sensorbase.cli.output import done, record, show, table

commands = typer.Typer(
    name="alerts",
    help="Alert rules: list, create, show, update, history, deliveries, delete.",
    rich_help_panel="Alerts",
    no_args_is_help=True,
)
COLUMNS = ["key", "name", "bucket", "condition", "state"]
STATE_COLUMNS = ["series", "state", "since", "value", "last_fired"]
EVENT_COLUMNS = ["at", "alert", "series", "from", "to", "value"]
DELIVERY_COLUMNS = ["id", "event", "status", "attempts", "last_status", "last_error", "created"]
Limit = typer.Option(100, min=1, max=1000, help="At most this many, newest first.")
Status = typer.Option(None, help="Only deliveries in this status: pending, delivered, failed.")


def _series(named: dict[str, str] | None) -> str:
    return "" if named is None else f"{named['bucket']}/{named['source']}/{named['field']}"


def _summary(rule: dict[str, Any]) -> dict[str, Any]:
    states = [s["state"] for s in rule.get("states", [])]
    worst = next((s for s in ("firing", "pending") if s in states), "ok")
    return {**rule, "state": worst}


@commands.command("list")
def list_alerts(ctx: typer.Context, bucket: MaybeBucketOption = None) -> None:
    """List alert rules, each with its worst state (firing, pending, ok)."""
    reply = api(ctx).get("/v1/alerts", params={"bucket": bucket} if bucket else None)
    show(ctx, reply, table([_summary(r) for r in reply["alerts"]], COLUMNS))


@commands.command("create")
def create_alert(
    ctx: typer.Context,
    bucket: BucketOption,
    name: str = typer.Option(..., help="Its name."),
    source: str = typer.Option("*", help="A source key, or a pattern (* ? [...])."),
    field: str = typer.Option(..., help="A field, or a pattern (* ? [...])."),
    op: str = typer.Option(">", help="One of > >= < <= == !=."),
    threshold: float = typer.Option(0.0, help="The value compared with."),
    aggregate: str | None = typer.Option(None, help="avg, min or max over --window-s."),
    window_s: int = typer.Option(0, help="The aggregate's window, in seconds."),
    for_s: int = typer.Option(0, help="Fire only once broken for this many seconds."),
    no_data_s: int | None = typer.Option(None, help="Fire when no point came for this long."),
    cooldown_s: int = typer.Option(300, help="No new firing within this long of the last."),
    webhook_url: str | None = typer.Option(None, help="A URL told of this rule alone."),
    key: str | None = typer.Option(None, help="Its key (default: one is made)."),
) -> None:
    """Create an alert rule."""
    body: dict[str, Any] = {
        "bucket": bucket, "name": name, "source": source, "field": field, "op": op,
        "threshold": threshold, "aggregate": aggregate, "window_s": window_s, "for_s": for_s,
        "no_data_s": no_data_s, "cooldown_s": cooldown_s, "webhook_url": webhook_url,
    }  # fmt: skip
    if key:
        body["key"] = key
    reply = api(ctx).post("/v1/alerts", body)
    show(ctx, reply, record({k: v for k, v in reply.items() if k != "states"}, "Created alert"))


@commands.command("update")
def update_alert(
    ctx: typer.Context,
    key: str = typer.Argument(..., help="The rule's key."),
    name: str | None = typer.Option(None, help="Its name."),
    source: str | None = typer.Option(None, help="A source key, or a pattern (* ? [...])."),
    field: str | None = typer.Option(None, help="A field, or a pattern (* ? [...])."),
    op: str | None = typer.Option(None, help="One of > >= < <= == !=."),
    threshold: float | None = typer.Option(None, help="The value compared with."),
    aggregate: str | None = typer.Option(
        None, help="avg, min or max over --window-s; 'raw' for the raw value."
    ),
    window_s: int | None = typer.Option(None, help="The aggregate's window, in seconds."),
    for_s: int | None = typer.Option(None, help="Fire only once broken for this many seconds."),
    no_data_s: int | None = typer.Option(
        None, help="Fire when no point came for this long; 0 for a value rule again."
    ),
    cooldown_s: int | None = typer.Option(None, help="No new firing within this long."),
    enabled: bool | None = typer.Option(None, "--enabled/--disabled", help="Evaluate it or not."),
    webhook_url: str | None = typer.Option(
        None, help="A URL told of this rule alone; '' to remove it."
    ),
) -> None:
    """Change an alert rule: what is not given stays. A new condition (source, field, op,
    threshold, aggregate, window, for, no data) puts its states back to ok."""
    body: dict[str, Any] = {
        "name": name, "source": source, "field": field, "op": op, "threshold": threshold,
        "aggregate": aggregate, "window_s": window_s, "for_s": for_s, "no_data_s": no_data_s,
        "cooldown_s": cooldown_s, "enabled": enabled, "webhook_url": webhook_url,
    }  # fmt: skip
    body = {k: v for k, v in body.items() if v is not None}
    clear = {"aggregate": "raw", "no_data_s": 0, "webhook_url": ""}
    body.update({k: None for k, empty in clear.items() if body.get(k, object()) == empty})
    reply = api(ctx).patch(f"/v1/alerts/{key}", body)
    show(ctx, reply, record({k: v for k, v in reply.items() if k != "states"}, "Updated alert"))


@commands.command("show")
def show_alert(ctx: typer.Context, key: str = typer.Argument(..., help="The rule's key.")) -> None:
    """An alert rule and its state per series."""
    reply = api(ctx).get(f"/v1/alerts/{key}")
    states = [{**s, "series": _series(s["series"])} for s in reply["states"]]
    show(
        ctx,
        reply,
        record({k: v for k, v in reply.items() if k != "states"}),
        table(states, STATE_COLUMNS, "States"),
    )


@commands.command("history")
def history(
    ctx: typer.Context,
    key: str | None = typer.Argument(None, help="The rule's key (default: every rule)."),
    limit: int = Limit,
) -> None:
    """State changes (ok, pending, firing, resolved), newest first."""
    path = f"/v1/alerts/{key}/events" if key else "/v1/alert-events"
    reply = api(ctx).get(path, params={"limit": limit})
    events = [{**e, "series": _series(e["series"])} for e in reply["events"]]
    show(ctx, reply, table(events, EVENT_COLUMNS))


@commands.command("deliveries")
def deliveries(
    ctx: typer.Context,
    key: str | None = typer.Argument(None, help="The rule's key (default: every delivery)."),
    status: str | None = Status,
    limit: int = Limit,
) -> None:
    """The delivery log: each webhook delivery, its attempts and outcome."""
    path = f"/v1/alerts/{key}/deliveries" if key else "/v1/deliveries"
    params = {"limit": limit, **({"status": status} if status else {})}
    reply = api(ctx).get(path, params=params)
    show(ctx, reply, table(reply["deliveries"], DELIVERY_COLUMNS))


@commands.command("delete")
def delete_alert(
    ctx: typer.Context,
    key: str = typer.Argument(..., help="The rule's key."),
    yes: YesOption = False,
) -> None:
    """Delete an alert rule and its history."""
    if not yes:
        typer.confirm(f"Delete alert {key}?", abort=True)
    api(ctx).delete(f"/v1/alerts/{key}")
    done(ctx, {"deleted": "alert", "key": key}, f"Deleted alert {key}.")
