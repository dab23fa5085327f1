"""The alert and webhook tables' statements (storage/alerts_schema.py), written once for every
backend over the catalog's primitives (`_all`, `_one`, `_run`: storage/catalog_queries.py).

Two statements differ on PostgreSQL, where several nodes share the tables: reading a state to
change it locks its row (`FOR UPDATE`), so that two nodes observing the same breaking point
make one transition, and claiming due deliveries or timer rules skips rows another node holds
(`FOR UPDATE SKIP LOCKED`), so that each is sent or evaluated by one node. SQLite has one
writer at a time and needs neither."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sensorbase.storage.catalog_queries import Params, Row


@dataclass(frozen=True, slots=True)
class RuleRow:
    id: int
    org_id: int
    bucket_id: int
    bucket_key: str
    key: str
    spec_json: str  # as stored: alerts/index.py decodes it (once per change of it)
    created_us: int


@dataclass(frozen=True, slots=True)
class StateRow:
    rule_id: int
    series_id: int
    state: str
    since_us: int
    value: float | None
    fired_us: int | None


@dataclass(frozen=True, slots=True)
class EventRow:
    id: int
    rule_key: str
    series: tuple[str, str, str]  # bucket, source, field
    from_state: str
    to_state: str
    value: float | None
    at_us: int


@dataclass(frozen=True, slots=True)
class WebhookRow:
    id: int
    org_id: int
    bucket_id: int | None
    key: str
    url: str
    events: tuple[str, ...]
    secret: str
    created_us: int


@dataclass(frozen=True, slots=True)
class DeliveryRow:
    id: str
    org_id: int
    webhook_key: str | None
    rule_key: str | None
    url: str
    secret: str
    event: str
    body: str
    created_us: int
    next_us: int
    attempts: int
    status: str
    last_status: int | None
    last_error: str | None
    done_us: int | None


_RULE = (
    "SELECT r.id, r.org_id, r.bucket_id, b.key, r.key, r.spec, r.created_us "
    "FROM alert_rules r JOIN buckets b ON b.id = r.bucket_id"
)
_STATE = "SELECT rule_id, series_id, state, since_us, value, fired_us FROM alert_states"
_WEBHOOK = "SELECT id, org_id, bucket_id, key, url, events, secret, created_us FROM webhooks"
_DELIVERY_COLUMNS = (
    "id, org_id, webhook_key, rule_key, url, secret, event, body, created_us, next_us, "
    "attempts, status, last_status, last_error, done_us"
)
_EVENTS = (
    "SELECT e.id, r.key, b.key, so.key, se.field, e.from_state, e.to_state, e.value, e.at_us "
    "FROM alert_events e JOIN alert_rules r ON r.id = e.rule_id "
    "JOIN series se ON se.id = e.series_id JOIN sources so ON so.id = se.source_id "
    "JOIN buckets b ON b.id = so.bucket_id "
    "WHERE r.org_id = ?"
)


def _rule(row: Row) -> RuleRow:
    return RuleRow(row[0], row[1], row[2], row[3], row[4], row[5], row[6])


def _state(row: Row) -> StateRow:
    return StateRow(row[0], row[1], row[2], row[3], row[4], row[5])


def _webhook(row: Row) -> WebhookRow:
    return WebhookRow(
        row[0], row[1], row[2], row[3], row[4], tuple(json.loads(row[5])), row[6], row[7]
    )


def _delivery(row: Row) -> DeliveryRow:
    return DeliveryRow(*row)


class AlertReads:
    """Lookups, for readers and write transactions alike."""

    def _all(self, statement: str, params: Params = ()) -> list[Row]:
        raise NotImplementedError

    def _one(self, statement: str, params: Params = ()) -> Row | None:
        raise NotImplementedError

    def list_alert_rules(self, org_id: int | None = None) -> list[RuleRow]:
        """An organisation's rules, or every organisation's (what each node indexes)."""
        if org_id is None:
            return [_rule(r) for r in self._all(_RULE + " ORDER BY r.id")]
        return [_rule(r) for r in self._all(_RULE + " WHERE r.org_id = ? ORDER BY r.id", (org_id,))]

    def get_alert_rule(self, org_id: int, key: str) -> RuleRow | None:
        row = self._one(_RULE + " WHERE r.org_id = ? AND r.key = ?", (org_id, key))
        return _rule(row) if row else None

    def list_alert_states(self, rule_id: int | None = None) -> list[StateRow]:
        if rule_id is None:
            return [_state(r) for r in self._all(_STATE)]
        return [_state(r) for r in self._all(_STATE + " WHERE rule_id = ?", (rule_id,))]

    def list_alert_events(
        self, org_id: int, rule_id: int | None, limit: int, before_id: int | None = None
    ) -> list[EventRow]:
        """Transitions, newest first."""
        sql, params = _EVENTS, [org_id]
        if rule_id is not None:
            sql += " AND e.rule_id = ?"
            params.append(rule_id)
        if before_id is not None:
            sql += " AND e.id < ?"
            params.append(before_id)
        found = self._all(sql + " ORDER BY e.id DESC LIMIT ?", (*params, limit))
        return [EventRow(r[0], r[1], (r[2], r[3], r[4]), r[5], r[6], r[7], r[8]) for r in found]

    def list_webhooks(self, org_id: int | None = None) -> list[WebhookRow]:
        if org_id is None:
            return [_webhook(r) for r in self._all(_WEBHOOK + " ORDER BY id")]
        return [
            _webhook(r) for r in self._all(_WEBHOOK + " WHERE org_id = ? ORDER BY id", (org_id,))
        ]

    def get_webhook(self, org_id: int, key: str) -> WebhookRow | None:
        row = self._one(_WEBHOOK + " WHERE org_id = ? AND key = ?", (org_id, key))
        return _webhook(row) if row else None

    def list_deliveries(
        self,
        org_id: int,
        limit: int,
        *,
        webhook_key: str | None = None,
        rule_key: str | None = None,
        status: str | None = None,
    ) -> list[DeliveryRow]:
        """An organisation's deliveries, newest first."""
        sql = f"SELECT {_DELIVERY_COLUMNS} FROM webhook_deliveries WHERE org_id = ?"
        params: list[Any] = [org_id]
        for column, value in (
            ("webhook_key", webhook_key),
            ("rule_key", rule_key),
            ("status", status),
        ):
            if value is not None:
                sql += f" AND {column} = ?"
                params.append(value)
        found = self._all(sql + " ORDER BY created_us DESC, id LIMIT ?", (*params, limit))
        return [_delivery(r) for r in found]

    def next_delivery_us(self) -> int | None:
        """When the earliest pending delivery is due (None: nothing is pending)."""
        row = self._one("SELECT min(next_us) FROM webhook_deliveries WHERE status = 'pending'")
        return None if row is None or row[0] is None else int(row[0])

    def get_delivery(self, org_id: int, delivery_id: str) -> DeliveryRow | None:
        row = self._one(
            f"SELECT {_DELIVERY_COLUMNS} FROM webhook_deliveries WHERE org_id = ? AND id = ?",
            (org_id, delivery_id),
        )
        return _delivery(row) if row else None


class AlertWrites(AlertReads):
    """Changes, inside the write transaction."""

    # PostgreSQL's backends set these (see the module's docstring).
    lock_row = ""
    skip_locked = ""

    def _run(self, statement: str, params: Params = ()) -> None:
        raise NotImplementedError

    def create_alert_rule(
        self, org_id: int, bucket_id: int, key: str, spec: dict[str, Any], timer: bool, now_us: int
    ) -> None:
        self._run(
            "INSERT INTO alert_rules (org_id, bucket_id, key, spec, timer, created_us) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (org_id, bucket_id, key, json.dumps(spec), int(timer), now_us),
        )

    def update_alert_rule(self, rule_id: int, spec: dict[str, Any], timer: bool) -> None:
        self._run(
            "UPDATE alert_rules SET spec = ?, timer = ? WHERE id = ?",
            (json.dumps(spec), int(timer), rule_id),
        )

    def reset_alert_states(self, rule_id: int, at_us: int) -> int:
        """Every state of the rule not `ok` put back to `ok` (each move kept as an event; the
        last firing kept, for the cooldown): what a rule whose condition changed starts from.
        The number of states moved."""
        moved = self._all(
            "SELECT series_id, state FROM alert_states WHERE rule_id = ? AND state <> 'ok'",
            (rule_id,),
        )
        self._run(
            "INSERT INTO alert_events (rule_id, series_id, from_state, to_state, value, at_us) "
            "SELECT rule_id, series_id, state, 'ok', NULL, ? FROM alert_states "
            "WHERE rule_id = ? AND state <> 'ok' ORDER BY series_id",
            (at_us, rule_id),
        )
        self._run(
            "UPDATE alert_states SET state = 'ok', since_us = ?, value = NULL "
            "WHERE rule_id = ? AND state <> 'ok'",
            (at_us, rule_id),
        )
        return len(moved)

    def delete_alert_rule(self, rule_id: int) -> None:
        self._run("DELETE FROM alert_rules WHERE id = ?", (rule_id,))

    def claim_timer_rules(self, now_us: int, every_us: int) -> list[int]:
        """The timer rules not evaluated for `every_us`, marked evaluated now: this node's to
        evaluate (another node's claim in flight is skipped)."""
        found = self._all(
            "UPDATE alert_rules SET checked_us = ? WHERE id IN (SELECT id FROM alert_rules "
            f"WHERE timer = 1 AND checked_us <= ?{self.skip_locked}) RETURNING id",
            (now_us, now_us - every_us),
        )
        return [int(r[0]) for r in found]

    def swap_setting(self, name: str, value: str) -> str | None:
        """Store `value`; the value it replaces (None: none), read under a row lock on
        PostgreSQL, held until the commit: of two nodes' swaps, the later sees the earlier's
        value (by which alerts/engine.py knows whether it missed another node's change)."""
        before = self._one(f"SELECT value FROM settings WHERE name = ?{self.lock_row}", (name,))
        self._run(
            "INSERT INTO settings (name, value) VALUES (?, ?) "
            "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
            (name, value),
        )
        return None if before is None else str(before[0])

    def lock_alert_state(self, rule_id: int, series_id: int, now_us: int) -> StateRow:
        """The state of (rule, series), created `ok` if new, locked until the commit."""
        self._run(
            "INSERT INTO alert_states (rule_id, series_id, state, since_us) "
            "VALUES (?, ?, 'ok', ?) ON CONFLICT DO NOTHING",
            (rule_id, series_id, now_us),
        )
        row = self._one(
            _STATE + f" WHERE rule_id = ? AND series_id = ?{self.lock_row}", (rule_id, series_id)
        )
        assert row is not None
        return _state(row)

    def put_alert_state(self, state: StateRow, from_state: str, at_us: int) -> None:
        """Store a transition: the state and its event."""
        self._run(
            "UPDATE alert_states SET state = ?, since_us = ?, value = ?, fired_us = ? "
            "WHERE rule_id = ? AND series_id = ?",
            (
                state.state,
                state.since_us,
                state.value,
                state.fired_us,
                state.rule_id,
                state.series_id,
            ),
        )
        self._run(
            "INSERT INTO alert_events (rule_id, series_id, from_state, to_state, value, at_us) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (state.rule_id, state.series_id, from_state, state.state, state.value, at_us),
        )

    def create_webhook(
        self,
        org_id: int,
        bucket_id: int | None,
        key: str,
        url: str,
        events: tuple[str, ...],
        secret: str,
        now_us: int,
    ) -> None:
        self._run(
            "INSERT INTO webhooks (org_id, bucket_id, key, url, events, secret, created_us) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (org_id, bucket_id, key, url, json.dumps(list(events)), secret, now_us),
        )

    def update_webhook(
        self, webhook_id: int, url: str, events: tuple[str, ...], secret: str
    ) -> None:
        self._run(
            "UPDATE webhooks SET url = ?, events = ?, secret = ? WHERE id = ?",
            (url, json.dumps(list(events)), secret, webhook_id),
        )

    def redirect_deliveries(
        self,
        org_id: int,
        url: str | None,
        secret: str,
        *,
        webhook_key: str | None = None,
        rule_key: str | None = None,
    ) -> None:
        """The deliveries not yet made to a webhook (or to a rule's own URL: `rule_key` and no
        `webhook_key`) go to its new URL, signed with its new secret; with no URL (a rule's
        removed) they fail."""
        if webhook_key is not None:
            where, params = "webhook_key = ?", [org_id, webhook_key]
        else:
            where, params = "webhook_key IS NULL AND rule_key = ?", [org_id, rule_key]
        where = "status = 'pending' AND org_id = ? AND " + where
        if url is None:
            self._run(
                "UPDATE webhook_deliveries SET status = 'failed', "
                f"last_error = 'webhook_url removed' WHERE {where}",
                tuple(params),
            )
            return
        self._run(
            f"UPDATE webhook_deliveries SET url = ?, secret = ? WHERE {where}",
            (url, secret, *params),
        )

    def delete_webhook(self, webhook_id: int) -> None:
        """The webhook, and its deliveries not yet made (failed: the log keeps them)."""
        self._run(
            "UPDATE webhook_deliveries SET status = 'failed', last_error = 'webhook deleted' "
            "WHERE status = 'pending' AND (org_id, webhook_key) IN "
            "(SELECT org_id, key FROM webhooks WHERE id = ?)",
            (webhook_id,),
        )
        self._run("DELETE FROM webhooks WHERE id = ?", (webhook_id,))

    def purge_alert_history(self, before_us: int, limit: int) -> tuple[int, int]:
        """At most `limit` events older than `before_us` and `limit` deliveries made before it
        and done (delivered or failed), removed: the history's retention. The numbers removed.

        Events go oldest id first, stopping at the first one not old enough: ids grow with
        time, so no index on the time is needed, and a newer event is never removed.
        Deliveries go by organisation, on the (org_id, created_us) index."""
        oldest = self._all("SELECT id, at_us FROM alert_events ORDER BY id LIMIT ?", (limit,))
        last = None
        for event_id, at_us in oldest:
            if at_us >= before_us:
                break
            last = event_id
        events = 0
        if last is not None:
            events = sum(1 for event_id, _ in oldest if event_id <= last)
            self._run("DELETE FROM alert_events WHERE id <= ?", (last,))
        deliveries = 0
        for (org_id,) in self._all("SELECT id FROM orgs ORDER BY id"):
            done = self._all(
                "DELETE FROM webhook_deliveries WHERE id IN (SELECT id FROM webhook_deliveries "
                "WHERE org_id = ? AND created_us < ? AND status <> 'pending' LIMIT ?) "
                "RETURNING id",
                (org_id, before_us, limit - deliveries),
            )
            deliveries += len(done)
            if deliveries >= limit:
                break
        return events, deliveries

    def add_delivery(self, delivery: DeliveryRow) -> None:
        self._run(
            f"INSERT INTO webhook_deliveries ({_DELIVERY_COLUMNS}) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                delivery.id,
                delivery.org_id,
                delivery.webhook_key,
                delivery.rule_key,
                delivery.url,
                delivery.secret,
                delivery.event,
                delivery.body,
                delivery.created_us,
                delivery.next_us,
                delivery.attempts,
                delivery.status,
                delivery.last_status,
                delivery.last_error,
                delivery.done_us,
            ),
        )

    def claim_deliveries(self, now_us: int, lease_us: int, limit: int) -> list[DeliveryRow]:
        """Due deliveries, leased to the caller for `lease_us` (counted as an attempt): if it
        dies before recording the outcome, they are due again when the lease ends."""
        found = self._all(
            "UPDATE webhook_deliveries SET next_us = ?, attempts = attempts + 1 "
            "WHERE id IN (SELECT id FROM webhook_deliveries WHERE status = 'pending' "
            f"AND next_us <= ? ORDER BY next_us LIMIT ?{self.skip_locked}) "
            f"RETURNING {_DELIVERY_COLUMNS}",
            (now_us + lease_us, now_us, limit),
        )
        return [_delivery(r) for r in found]

    def finish_delivery(
        self,
        delivery_id: str,
        *,
        status: str,
        next_us: int,
        http_status: int | None,
        error: str | None,
        done_us: int | None,
    ) -> None:
        self._run(
            "UPDATE webhook_deliveries SET status = ?, next_us = ?, last_status = ?, "
            "last_error = ?, done_us = ? WHERE id = ? AND status = 'pending'",  # not cancelled
            (status, next_us, http_status, error, done_us, delivery_id),
        )
