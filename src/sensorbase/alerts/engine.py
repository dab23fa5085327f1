"""Evaluation: on the write path for value rules, on a timer for the rest.

After a write is acknowledged (its commit durable), `observe` looks at the newest point of each
series it wrote, against the rules that match the series and the state this node last knew,
all at once as arrays (alerts/watch.py). Only a point that could change a state is queued, so
a write that breaks nothing costs a few array operations; the evaluator task then makes the
transitions in one transaction, each state row read again (on PostgreSQL: locked) inside it,
so that two nodes observing the same point make one transition, and writes their deliveries
in the same transaction (alerts/outbox.py). A state change is therefore never without its
deliveries.

The timer (every `alerts_check_s`) evaluates rules that time alone can break or resolve (no
data for a while, held for a duration, a window aggregate), each claimed by one node, and
reloads rules and states changed by other nodes. At start it evaluates every rule once: a
point acknowledged just before a crash, whose transition never committed, fires then.

A change made on this node (alerts/admin.py) is applied by itself (`changed_here`): that rule's
index entries, pairs and states, or that organisation's webhooks, read again. Each change
stores a new `alerts_version` and reads the one it replaces, under a lock: if that is not the
version this node last loaded, another node changed something meanwhile, and everything is
reloaded. Reloading everything (at start, on another node's change) keeps the rules of rows
whose stored spec did not change. Measured in process on SQLite (benchmarks/alerts.py
--creates-only): creating 1,000 rules through the API took 13.5-14 CPU-seconds when each change
reloaded everything (5-9 ms a rule at first, 28-68 ms at the end), 2.0-2.4 applied by itself
(~2.3 ms a rule throughout); a full reload of 1,000 rules 17.5 -> 6.9 CPU-ms."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from starlette.concurrency import run_in_threadpool

from sensorbase.alerts.deliver import Deliverer
from sensorbase.alerts.index import RuleIndex, rule_of, rules_of
from sensorbase.alerts.outbox import alert_payload, deliveries, subscribed
from sensorbase.alerts.rules import US, Rule, step
from sensorbase.alerts.watch import Watch
from sensorbase.auth.keys import Principal
from sensorbase.model import Bucket, SeriesKey, TimeRange
from sensorbase.settings import Settings
from sensorbase.storage.alerts_queries import RuleRow, StateRow, WebhookRow
from sensorbase.storage.base import Store, WriteTx
from sensorbase.storage.write_queue import Committer
from sensorbase.times import format_us, now_us

log = logging.getLogger(__name__)
ALERTS_VERSION = "alerts_version"  # a setting changed with every rule or webhook change
_Name = tuple[str, str, str]  # bucket, source, field


@dataclass(frozen=True, slots=True)
class Change:
    """What a change on this node touched: a rule (its id and key) or, without a rule, the
    organisation's webhooks."""

    org_id: int
    rule_id: int | None = None
    rule_key: str = ""


@dataclass(slots=True)
class Observation:
    rule: Rule
    series_id: int
    series: _Name
    breaking: bool | None  # None: to be read (a window aggregate)
    value: float | None


class Engine:
    def __init__(self, store: Store, committer: Committer, settings: Settings) -> None:
        self.store = store
        self.committer = committer
        self.settings = settings
        self.deliverer = Deliverer(store, committer, settings)
        self.index = RuleIndex()
        self.watch = Watch(self.index, {})  # the index's pairs and their states, as arrays
        self._version: str | None = None
        self._rows: dict[RuleRow, Rule] = {}  # the last full load's, kept by the next
        self._loading = asyncio.Lock()  # one reload or change applied at a time
        self._pending: dict[tuple[int, int], Observation] = {}
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    # -- lifecycle ---------------------------------------------------------------------

    def load(self) -> None:
        """Rules, webhooks and states as stored (on any thread)."""
        reader = self.store.reader()
        version = reader.get_setting(ALERTS_VERSION)
        rows = rules_of(reader.list_alert_rules(), self._rows)
        index = RuleIndex.build(rows.values(), reader.list_webhooks())
        states = {(s.rule_id, s.series_id): s for s in reader.list_alert_states()}
        self.index, self.watch, self._rows = index, Watch(index, states), rows
        self._version = version

    async def changed_here(self, change: Change, before: str | None, after: str) -> None:
        """After this node's change, committed with the version `after` in place of `before`:
        the rule or the webhooks it touched read again and put in place, if this node had
        loaded `before` (else another node changed something too: everything reloaded)."""
        async with self._loading:
            if self._version == after:  # a reload saw it already
                return
            if before is None or self._version != before:
                await run_in_threadpool(self.load)
                return
            reader = self.store.reader
            if change.rule_id is None:
                hooks = await run_in_threadpool(lambda: reader().list_webhooks(change.org_id))
                self.index.set_webhooks(change.org_id, hooks)
            else:
                rule_id = change.rule_id
                row, states = await run_in_threadpool(
                    lambda: (
                        reader().get_alert_rule(change.org_id, change.rule_key),
                        reader().list_alert_states(rule_id),
                    )
                )
                if row is None or row.id != rule_id:  # deleted
                    self.index.remove(rule_id)
                    self.watch.drop_rule(rule_id)
                else:
                    rule = rule_of(row)
                    self.index.put(rule)
                    self.watch.put_rule(rule, states)
            self._version = after

    async def start(self) -> None:
        await run_in_threadpool(self.load)
        self._wake = asyncio.Event()
        self.deliverer.start()
        self._tasks = [
            asyncio.create_task(self._evaluator(), name="sensorbase-alerts"),
            asyncio.create_task(self._timer(), name="sensorbase-alert-timer"),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        await self.deliverer.stop()

    # -- the write path ----------------------------------------------------------------

    def in_commit(
        self, tx: WriteTx, who: Principal, keys: Sequence[SeriesKey], points: int
    ) -> None:
        """Inside a write's transaction: a data.received delivery per subscribed webhook."""
        hooks = self.index.data_hooks.get(who.org_id)
        if not hooks or not points:
            return
        now = now_us()
        buckets = sorted({k.bucket for k in keys})
        for bucket_key in buckets:
            bucket = tx.get_bucket(who.org_id, bucket_key)
            if bucket is None:
                continue
            sources = sorted({k.source for k in keys if k.bucket == bucket_key})
            payload = {"bucket": bucket_key, "points": points, "sources": sources[:100]}
            targets = subscribed(hooks, "data.received", bucket.id)
            for delivery in deliveries(who.org_id, "data.received", payload, targets, now):
                tx.add_delivery(delivery)

    def bucket_changed(self, tx: WriteTx, bucket: Bucket, change: str) -> None:
        """Inside the transaction changing a bucket: bucket.updated deliveries."""
        targets = subscribed(tx.list_webhooks(bucket.org_id), "bucket.updated", bucket.id)
        if not targets:
            return
        payload = {"bucket": bucket.key, "change": change}
        for delivery in deliveries(bucket.org_id, "bucket.updated", payload, targets, now_us()):
            tx.add_delivery(delivery)
        self.deliverer.wake_after_commit()

    def observe(
        self,
        who: Principal,
        keys: Sequence[SeriesKey],
        ids: npt.NDArray[np.int64],
        used: npt.NDArray[np.int32],
        time_us: npt.NDArray[np.int64],
        value: npt.NDArray[np.float64],
    ) -> None:
        """After a write's commit: queue what its newest points may change. Never raises: the
        write is durable, and its reply must say so (a failure here is logged; the timer's
        next start-up pass or the next point catches up)."""
        try:
            self._observe(who, keys, ids, used, time_us, value)
        except Exception:
            log.exception("alert observation failed")

    def observe_one(
        self, who: Principal, keys: Sequence[SeriesKey], series_id: int, time_us: int, value: float
    ) -> None:
        """`observe` of a one-point write (`keys`: its one key), whose arrays are made only
        when its organisation has webhooks or rules to tell."""
        org_id = who.org_id
        if org_id in self.index.data_hooks or org_id in self.index.orgs:
            self.observe(
                who,
                keys,
                np.array([series_id], np.int64),
                np.zeros(1, np.int32),
                np.array([time_us], np.int64),
                np.array([value], np.float64),
            )

    def _observe(
        self,
        who: Principal,
        keys: Sequence[SeriesKey],
        ids: npt.NDArray[np.int64],
        used: npt.NDArray[np.int32],
        time_us: npt.NDArray[np.int64],
        value: npt.NDArray[np.float64],
    ) -> None:
        if who.org_id in self.index.data_hooks:
            self.deliverer.wake()  # in_commit made deliveries
        if who.org_id not in self.index.orgs or not len(used):
            return
        found = self.watch.candidates(who.org_id, keys, ids, used, time_us, value, now_us())
        for c in found:
            name = (c.key.bucket, c.key.source, c.key.field)
            self._pending[(c.rule.id, c.series_id)] = Observation(
                c.rule, c.series_id, name, c.breaking, c.value
            )
        if found:
            self._wake.set()

    # -- evaluation --------------------------------------------------------------------

    async def _evaluator(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            batch, self._pending = list(self._pending.values()), {}
            try:
                unread = [o for o in batch if o.breaking is None]
                if unread:
                    await run_in_threadpool(self._read_windows, unread)
                await self.transition(batch)
            except asyncio.CancelledError:
                raise
            except Exception:  # the next point or the timer's start-up pass catches up
                log.exception("alert evaluation failed")

    def _read_windows(self, observations: list[Observation]) -> None:
        reader = self.store.reader()
        now = now_us()
        for o in observations:
            rule = o.rule
            assert rule.aggregate is not None
            span = TimeRange(now - rule.window_s * US, now + 1)
            found = reader.aggregate(o.series_id, span, (rule.aggregate,)).values
            v = found.get(rule.aggregate)
            o.value = None if v is None else float(v)
            o.breaking = False if o.value is None else rule.breaks(o.value)

    async def transition(self, observations: list[Observation]) -> None:
        """Make the transitions `observations` call for, with their deliveries, in one
        transaction; remember the states."""
        todo = sorted(
            (o for o in observations if o.breaking is not None),
            key=lambda o: (o.rule.id, o.series_id),  # one lock order for every node
        )
        if not todo:
            return
        now = now_us()

        def job(tx: WriteTx) -> tuple[list[StateRow], int]:
            seen: list[StateRow] = []
            made = 0
            rules: dict[int, Rule | None] = {}
            hooks: dict[int, list[WebhookRow]] = {}
            for o in todo:
                if o.rule.id not in rules:  # as stored now (deleted or changed meanwhile?)
                    row = tx.get_alert_rule(o.rule.org_id, o.rule.key)
                    rules[o.rule.id] = rule_of(row) if row and row.id == o.rule.id else None
                rule = rules[o.rule.id]
                if rule is None or not rule.enabled:
                    continue
                assert o.breaking is not None
                state = tx.lock_alert_state(rule.id, o.series_id, now)
                new = step(rule, state, o.breaking, o.value, now)
                if new is None:
                    seen.append(state)
                    continue
                tx.put_alert_state(new, state.state, now)
                seen.append(new)
                event = {"firing": "alert.triggered", "resolved": "alert.resolved"}.get(new.state)
                if event is None:
                    continue
                if rule.org_id not in hooks:
                    hooks[rule.org_id] = tx.list_webhooks(rule.org_id)
                payload = alert_payload(rule, o.series, new.state, state.state, o.value)
                payload["at"] = format_us(now)
                targets = subscribed(hooks[rule.org_id], event, rule.bucket_id)
                for delivery in deliveries(rule.org_id, event, payload, targets, now, rule):
                    tx.add_delivery(delivery)
                    made += 1
            return seen, made

        seen, made = await self.committer.run(job)
        for state in seen:
            self.watch.remember(state)
        if made:
            self.deliverer.wake()

    # -- the timer ---------------------------------------------------------------------

    async def _timer(self) -> None:
        first = True
        every_us = int(self.settings.alerts_check_s * US)
        while True:
            try:
                async with self._loading:
                    if await run_in_threadpool(self._changed):
                        await run_in_threadpool(self.load)
                if first:  # every rule once: catch up with what a crash left unevaluated
                    rules = list(self.index.rules.values())
                elif any(r.timer for r in self.index.rules.values()):
                    claimed = await self.committer.run(
                        lambda tx: tx.claim_timer_rules(now_us(), every_us)
                    )
                    rules = [self.index.rules[i] for i in claimed if i in self.index.rules]
                else:
                    rules = []
                if rules:
                    await self.evaluate_now(rules)
                if not first:
                    await self._restate()
                first = False
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("alert timer failed")
            await asyncio.sleep(self.settings.alerts_check_s)

    async def _restate(self) -> None:
        """States other nodes changed (a node only knows its own transitions otherwise)."""
        states = await run_in_threadpool(lambda: self.store.reader().list_alert_states())
        self.watch.restate({(s.rule_id, s.series_id): s for s in states})

    def _changed(self) -> bool:
        return self.store.reader().get_setting(ALERTS_VERSION) != self._version

    async def evaluate_now(self, rules: list[Rule]) -> None:
        """Every series of each rule against its newest points, now, and the transitions."""
        found = await run_in_threadpool(self.evaluate_fully, rules)
        await self.transition(found)

    def evaluate_fully(self, rules: list[Rule]) -> list[Observation]:
        """Every series each rule matches, observed now (on a worker thread)."""
        reader = self.store.reader()
        now = now_us()
        found: list[Observation] = []
        for rule in rules:
            narrow = ([rule.source], [rule.field]) if rule.exact else (None, None)
            series = [
                s
                for s in reader.list_series(rule.org_id, rule.bucket_id, *narrow)
                if rule.matches(s.source, s.field)
            ]
            if not series:
                continue
            if rule.aggregate is not None:
                observations = [
                    Observation(rule, s.id, (s.bucket, s.source, s.field), None, None)
                    for s in series
                ]
                self._read_windows(observations)
                found.extend(observations)
                continue
            latest = reader.read_latest([s.id for s in series], 1)
            for s, points in zip(series, latest, strict=True):
                name = (s.bucket, s.source, s.field)
                has = len(points.time_us) > 0
                v = float(points.value[0]) if has else None
                if rule.no_data_s is not None:
                    quiet = not has or now - int(points.time_us[0]) >= rule.no_data_s * US
                    found.append(Observation(rule, s.id, name, quiet, v))
                elif v is not None:
                    found.append(Observation(rule, s.id, name, rule.breaks(v), v))
        return found
