"""Rules, webhooks, history and the delivery log, tenancy-checked (auth/access.py): another
organisation's rule or webhook is indistinguishable from one that does not exist, and a key
limited to one bucket sees and manages only that bucket's. Creating or deleting a rule or a
webhook takes the `admin` scope (they make the server call out); reading them `data:read`.
Every change also changes the `alerts_version` setting, by which other nodes reload; this node
applies the one rule or organisation's webhooks it changed (alerts/engine.py)."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from starlette.concurrency import run_in_threadpool

from sensorbase.alerts.engine import ALERTS_VERSION, Change, Engine
from sensorbase.alerts.index import rule_of
from sensorbase.alerts.outbox import EVENTS
from sensorbase.alerts.rules import Rule, check
from sensorbase.alerts.urls import check_url
from sensorbase.auth import access
from sensorbase.auth.keys import Principal
from sensorbase.errors import Conflict, NotFound, Problem, invalid
from sensorbase.model import Scope
from sensorbase.storage.alerts_queries import DeliveryRow, EventRow, StateRow, WebhookRow
from sensorbase.storage.base import Reader, WriteTx
from sensorbase.times import now_us

MAX_LIST = 1000
DEFAULT_WINDOW_S = 300  # an aggregate's window when none is given
# What a rule watches and when it breaks: changing any of these restarts its states.
CONDITION = ("source", "field", "op", "threshold", "aggregate", "window_s", "for_s", "no_data_s")
# The rows' plain data, for the front ends (which never import storage).
__all__ = ["Alerts", "DeliveryRow", "EventRow", "RuleView", "StateRow", "WebhookRow"]


@dataclass(frozen=True, slots=True)
class RuleView:
    rule: Rule
    states: list[tuple[StateRow, tuple[str, str, str] | None]]


class Alerts:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.store = engine.store
        self.committer = engine.committer
        self.settings = engine.settings

    async def _read(self, fn: Any) -> Any:
        return await run_in_threadpool(lambda: fn(self.store.reader()))

    async def _change(self, fn: Any, touched: Callable[[Any], Change]) -> Any:
        """`fn`'s change, committed with a new `alerts_version`; then this node's engine told
        of what it `touched` (a rule or the organisation's webhooks: see alerts/engine.py)."""
        after = secrets.token_hex(8)

        def job(tx: WriteTx) -> tuple[Any, str | None]:
            done = fn(tx)
            return done, tx.swap_setting(ALERTS_VERSION, after)

        done, before = await self.committer.run(job)
        await self.engine.changed_here(touched(done), before, after)
        return done

    # -- rules -------------------------------------------------------------------------

    async def create_rule(self, who: Principal, bucket_key: str, rule: Rule) -> Rule:
        """`rule` as given (its ids are filled in here); a key is made when it has none."""
        key = rule.key or "alr_" + secrets.token_hex(8)
        rule = self._completed(rule)

        def create(tx: WriteTx) -> Rule:
            bucket = access.bucket(tx, who, bucket_key, "admin")
            if tx.get_alert_rule(who.org_id, key) is not None:
                raise Conflict(f"alert '{key}' already exists", what="alert", name=key)
            made = replace(rule, key=key, bucket_id=bucket.id, bucket=bucket.key)
            tx.create_alert_rule(who.org_id, bucket.id, key, made.spec(), made.timer, now_us())
            row = tx.get_alert_rule(who.org_id, key)
            assert row is not None
            return rule_of(row)

        created: Rule = await self._change(create, _touched)
        return created

    def _completed(self, rule: Rule) -> Rule:
        """The rule with its defaults (an aggregate's window, a secret for its own URL), if it
        makes sense (else InvalidInput naming every bad field)."""
        if rule.aggregate is not None and not rule.window_s:
            rule = replace(rule, window_s=DEFAULT_WINDOW_S)
        if rule.webhook_url is None:
            rule = replace(rule, webhook_secret=None)
        else:
            check_url(
                rule.webhook_url, "webhook_url", allow_private=self.settings.webhook_allow_private
            )
            if not rule.webhook_secret:
                rule = replace(rule, webhook_secret="whsec_" + secrets.token_urlsafe(24))
        return check(rule)

    async def update_rule(self, who: Principal, key: str, changes: dict[str, Any]) -> RuleView:
        """The rule with `changes` (a Rule's fields by name), checked as at creation. A change
        to what it watches or when it breaks (CONDITION) puts each of its states back to `ok`
        (kept in the history; the last firing kept for the cooldown), drops dakkio's words for
        the old condition, and evaluates the rule at once against the newest points."""

        def update(tx: WriteTx) -> tuple[Rule, bool]:
            current = _rule(tx, who, key, "admin")
            rule = self._completed(replace(current, **changes))
            restart = any(getattr(rule, f) != getattr(current, f) for f in CONDITION)
            if restart and "condition" not in changes:
                rule = replace(rule, condition=None)
            tx.update_alert_rule(rule.id, rule.spec(), rule.timer)
            if restart:
                tx.reset_alert_states(rule.id, now_us())
            if (rule.webhook_url, rule.webhook_secret) != (
                current.webhook_url,
                current.webhook_secret,
            ):
                tx.redirect_deliveries(
                    who.org_id, rule.webhook_url, rule.webhook_secret or "", rule_key=rule.key
                )
            return rule, restart

        rule, restart = await self._change(update, lambda done: _touched(done[0]))
        if restart and rule.enabled:
            await self.engine.evaluate_now([rule])
        return await self.rule(who, key)

    async def rules(self, who: Principal, bucket_key: str | None = None) -> list[RuleView]:
        access.require(who, "data:read")

        def find(reader: Reader) -> list[RuleView]:
            bucket_id = None
            if bucket_key is not None:
                bucket_id = access.bucket(reader, who, bucket_key, "data:read").id
            found = []
            for row in reader.list_alert_rules(who.org_id):
                if bucket_id is not None and row.bucket_id != bucket_id:
                    continue
                if who.bucket_id not in (None, row.bucket_id):
                    continue
                found.append(_view(reader, rule_of(row)))
            return found

        views: list[RuleView] = await self._read(find)
        return views

    async def rule(self, who: Principal, key: str) -> RuleView:
        view: RuleView = await self._read(lambda r: _view(r, _rule(r, who, key, "data:read")))
        return view

    async def delete_rule(self, who: Principal, key: str) -> None:
        def delete(tx: WriteTx) -> Rule:
            rule = _rule(tx, who, key, "admin")
            tx.delete_alert_rule(rule.id)
            return rule

        await self._change(delete, _touched)

    async def events(
        self, who: Principal, key: str | None, limit: int, before: int | None = None
    ) -> list[EventRow]:
        def find(reader: Reader) -> list[EventRow]:
            if key is not None:
                rule_id = _rule(reader, who, key, "data:read").id
                return reader.list_alert_events(who.org_id, rule_id, limit, before)
            access.require(who, "data:read")
            access.require_whole_org(who, "the organisation's alert history")
            return reader.list_alert_events(who.org_id, None, limit, before)

        found: list[EventRow] = await self._read(find)
        return found

    # -- webhooks ----------------------------------------------------------------------

    async def create_webhook(
        self,
        who: Principal,
        url: str,
        events: Sequence[str],
        secret: str | None,
        bucket_key: str | None = None,
        key: str | None = None,
    ) -> WebhookRow:
        check_url(url, "url", allow_private=self.settings.webhook_allow_private)
        _check_events(events)
        key = key or "whk_" + secrets.token_hex(8)
        secret = secret or "whsec_" + secrets.token_urlsafe(24)

        def create(tx: WriteTx) -> WebhookRow:
            access.require(who, "admin")
            bucket_id = None
            if bucket_key is not None:
                bucket_id = access.bucket(tx, who, bucket_key, "admin").id
            else:
                access.require_whole_org(who, "a webhook of the whole organisation")
            if tx.get_webhook(who.org_id, key) is not None:
                raise Conflict(f"webhook '{key}' already exists", what="webhook", name=key)
            tx.create_webhook(
                who.org_id, bucket_id, key, url, tuple(dict.fromkeys(events)), secret, now_us()
            )
            found = tx.get_webhook(who.org_id, key)
            assert found is not None
            return found

        created: WebhookRow = await self._change(create, lambda _: Change(who.org_id))
        return created

    async def update_webhook(
        self,
        who: Principal,
        key: str,
        *,
        url: str | None = None,
        events: Sequence[str] | None = None,
        secret: str | None = None,
    ) -> tuple[WebhookRow, str | None]:
        """The webhook with a new URL, events or secret (each checked as at creation). Its
        deliveries not yet made go to the new URL, signed with the new secret; those made for
        events it no longer hears are still sent (they were due when made)."""
        if url is not None:
            check_url(url, "url", allow_private=self.settings.webhook_allow_private)
        if events is not None:
            _check_events(events)

        def update(tx: WriteTx) -> None:
            hook = _webhook(tx, who, key, "admin")
            new_url = hook.url if url is None else url
            new_secret = hook.secret if secret is None else secret
            chosen = hook.events if events is None else tuple(dict.fromkeys(events))
            tx.update_webhook(hook.id, new_url, chosen, new_secret)
            if (new_url, new_secret) != (hook.url, hook.secret):
                tx.redirect_deliveries(who.org_id, new_url, new_secret, webhook_key=hook.key)

        await self._change(update, lambda _: Change(who.org_id))
        return await self.webhook(who, key)

    async def webhooks(self, who: Principal) -> list[tuple[WebhookRow, str | None]]:
        """The webhooks the principal sees, each with its bucket's key (None: every bucket)."""
        access.require(who, "data:read")

        def find(reader: Reader) -> list[tuple[WebhookRow, str | None]]:
            hooks = reader.list_webhooks(who.org_id)
            return [_named(reader, w) for w in hooks if who.bucket_id in (None, w.bucket_id)]

        found: list[tuple[WebhookRow, str | None]] = await self._read(find)
        return found

    async def webhook(self, who: Principal, key: str) -> tuple[WebhookRow, str | None]:
        found: tuple[WebhookRow, str | None] = await self._read(
            lambda r: _named(r, _webhook(r, who, key, "data:read"))
        )
        return found

    async def delete_webhook(self, who: Principal, key: str) -> None:
        await self._change(
            lambda tx: tx.delete_webhook(_webhook(tx, who, key, "admin").id),
            lambda _: Change(who.org_id),
        )

    async def deliveries(
        self,
        who: Principal,
        limit: int,
        *,
        webhook_key: str | None = None,
        rule_key: str | None = None,
        status: str | None = None,
    ) -> list[DeliveryRow]:
        def find(reader: Reader) -> list[DeliveryRow]:
            if webhook_key is not None:
                _webhook(reader, who, webhook_key, "data:read")
            elif rule_key is not None:
                _rule(reader, who, rule_key, "data:read")
            else:
                access.require(who, "data:read")
                access.require_whole_org(who, "the organisation's delivery log")
            return reader.list_deliveries(
                who.org_id, limit, webhook_key=webhook_key, rule_key=rule_key, status=status
            )

        found: list[DeliveryRow] = await self._read(find)
        return found


def _touched(rule: Rule) -> Change:
    return Change(rule.org_id, rule.id, rule.key)


def _check_events(events: Sequence[str]) -> None:
    if not events or any(e not in EVENTS for e in events):
        raise invalid([Problem(f"must be a non-empty list of: {', '.join(EVENTS)}", "events")])


def _rule(reader: Reader | WriteTx, who: Principal, key: str, scope: Scope) -> Rule:
    access.require(who, scope)
    row = reader.get_alert_rule(who.org_id, key)
    if row is None or who.bucket_id not in (None, row.bucket_id):
        raise NotFound(f"alert '{key}' not found", what="alert", name=key)
    return rule_of(row)


def _webhook(reader: Reader | WriteTx, who: Principal, key: str, scope: Scope) -> WebhookRow:
    access.require(who, scope)
    found = reader.get_webhook(who.org_id, key)
    if found is None or (who.bucket_id is not None and found.bucket_id != who.bucket_id):
        raise NotFound(f"webhook '{key}' not found", what="webhook", name=key)
    return found


def _named(reader: Reader, hook: WebhookRow) -> tuple[WebhookRow, str | None]:
    if hook.bucket_id is None:
        return hook, None
    bucket = reader.get_bucket_by_id(hook.org_id, hook.bucket_id)
    return hook, None if bucket is None else bucket.key


def _view(reader: Reader, rule: Rule) -> RuleView:
    states = reader.list_alert_states(rule.id)
    names = {}
    if states:
        for ref in reader.list_series(rule.org_id, rule.bucket_id):
            names[ref.id] = (ref.bucket, ref.source, ref.field)
    return RuleView(rule, [(s, names.get(s.series_id)) for s in states])
