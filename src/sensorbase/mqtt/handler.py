"""Messages: their topics read, their payloads decoded, their points written through the one
write path (`Ingest.write`, which returns once they are committed), or their refusals recorded.

A burst (the messages taken from the broker together) is written in as few writes as it can:
the messages of one organisation that need nothing of their own from the write path are folded
into one (mqtt/fold.py), each message a group that stands or falls alone. A message the folded
write refuses is written again alone, so that its refusal lists every problem of its own, in
its dialect's words, exactly as it would have been alone; a folded write refused as a whole
(its bucket deleted, say) is written again message by message.

The broker tells subscribers nothing of who published (MQTT 3.1.1 and 5 carry no publisher
identity), so the broker's rules (mqtt/credentials.py) are what keeps a key inside its
organisation and bucket; here the topic's organisation is the tenant the write is checked for,
with the data:write scope, and a payload may not name a bucket other than its topic's."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass

from sensorbase.auth.keys import Principal
from sensorbase.errors import NotFound, Problem, SensorbaseError, Unavailable
from sensorbase.ingest.pipeline import WriteOptions, WriteOutcome
from sensorbase.model import PointBatch
from sensorbase.mqtt.fold import fold, refused_messages
from sensorbase.mqtt.payloads import decode_native
from sensorbase.mqtt.refusals import WRITES, Refusal, Refusals
from sensorbase.mqtt.topics import TopicError, parse
from sensorbase.mqtt.vendors import Vendor, decode_vendor
from sensorbase.services import Services

log = logging.getLogger("sensorbase.mqtt")

# A commit that cannot be made now (overload, a storage fault) is tried again, never dropped:
# the message stays unacknowledged meanwhile, so the broker keeps it.
RETRY_S = 0.5


@dataclass(slots=True)
class _Message:
    topic: str
    org: str
    who: Principal
    batch: PointBatch
    options: WriteOptions
    words: Callable[[], AbstractContextManager[None]] = nullcontext

    def foldable(self) -> bool:
        """Whether the write path needs nothing of this message but its rows."""
        o = self.options
        return (
            len(self.batch) > 0
            and self.words is nullcontext
            and not (o.partial or o.series_meta or o.source_meta or o.bucket_meta)
            and not o.known_problems
        )


class Handler:
    def __init__(
        self,
        services: Services,
        refusals: Refusals,
        publish_refusal: Callable[[str, Refusal], None],
    ) -> None:
        self._svc = services
        self._settings = services.settings
        self._refusals = refusals
        self._publish_refusal = publish_refusal
        self._orgs: dict[str, tuple[Principal | None, float]] = {}
        self.stopping = False

    async def burst(self, messages: list[tuple[str, bytes]]) -> None:
        """Every message stored or refused; raises (leaving them all unacknowledged) only when
        stopping."""
        orgs: dict[str, Principal] = {}  # looked up once a burst
        decoded = [await self._decode(topic, payload, orgs) for topic, payload in messages]
        folds: dict[tuple[str, bool], list[_Message]] = {}
        alone: list[_Message] = []
        for message in decoded:
            if message is None:
                continue
            if message.foldable():
                folds.setdefault((message.org, message.options.create_sources), []).append(message)
            else:
                alone.append(message)
        writes = [self._alone(m) for m in alone]
        for group in folds.values():
            writes.append(self._folded(group) if len(group) > 1 else self._alone(group[0]))
        await asyncio.gather(*writes)

    async def _decode(
        self, topic_name: str, payload: bytes, orgs: dict[str, Principal]
    ) -> _Message | None:
        """The message ready to write, or None when it was refused."""
        org: str | None = None
        try:
            topic = parse(self._settings.mqtt_topic_prefix, topic_name)
            org = topic.org
            who = orgs.get(org) or await self._principal(org)
            orgs[org] = who
            settings = self._settings
            if topic.dialect is not None:
                vendor: Vendor = await decode_vendor(payload, topic, self._svc, who)
                return _Message(topic_name, org, who, vendor.batch, vendor.options, vendor.words)
            native = decode_native(
                payload,
                topic,
                settings.mqtt_time_precision,
                settings.max_points_per_request,
                settings.max_body_bytes,
            )
            options = WriteOptions(origin=native.origin, known_problems=native.problems)
            return _Message(topic_name, org, who, native.batch, options)
        except TopicError as exc:
            self._refuse(org, topic_name, str(exc), [Problem(str(exc), "topic")])
        except SensorbaseError as exc:
            self._refuse(org, topic_name, exc.detail, exc.problems)
        except Exception:
            log.exception("MQTT message on '%s' could not be decoded", topic_name)
            self._refuse(org, topic_name, "internal error", [])
        return None

    async def _folded(self, messages: list[_Message]) -> None:
        WRITES.labels("folded").inc()
        try:
            folded = fold([(m.batch, m.options.origin) for m in messages])
            options = WriteOptions(
                partial=True,
                create_sources=messages[0].options.create_sources,
                origin=folded.origin,
                groups=folded.groups,
            )
            outcome = await self._write(messages[0].who, folded.batch, options)
        except Unavailable:
            raise  # stopping
        except Exception as exc:  # refused as a whole: each message finds its own reason
            if not isinstance(exc, SensorbaseError):  # (never left unacknowledged: acks wait)
                log.exception("MQTT folded write failed; writing its messages one by one")
            await asyncio.gather(*(self._alone(m) for m in messages))
            return
        refused = refused_messages(folded, outcome.rejected)
        self._refusals.stored(len(messages) - len(refused))
        await asyncio.gather(*(self._alone(messages[number]) for number in sorted(refused)))

    async def _alone(self, message: _Message) -> None:
        WRITES.labels("alone").inc()
        try:
            with message.words():
                await self._write(message.who, message.batch, message.options)
        except Unavailable:
            raise  # stopping: left unacknowledged, the broker sends it again
        except SensorbaseError as exc:
            self._refuse(message.org, message.topic, exc.detail, exc.problems)
        except Exception:
            log.exception("MQTT message on '%s' could not be handled", message.topic)
            self._refuse(message.org, message.topic, "internal error", [])
        else:
            self._refusals.stored()

    async def _write(
        self, who: Principal, batch: PointBatch, options: WriteOptions
    ) -> WriteOutcome:
        while True:
            try:
                return await self._svc.ingest.write(who, batch, options)
            except Unavailable as exc:
                if self.stopping:
                    raise
                await asyncio.sleep(exc.retry_after_s or RETRY_S)

    def _refuse(self, org: str | None, topic: str, reason: str, problems: list[Problem]) -> None:
        refusal = self._refusals.refused(org, topic, reason, problems)
        if org is not None:
            self._publish_refusal(org, refusal)

    async def _principal(self, org: str) -> Principal:
        """The topic's organisation as the writer, looked up at most once per `key_cache_s`."""
        now = time.monotonic()
        hit = self._orgs.get(org)
        if hit is None or now - hit[1] >= self._settings.key_cache_s:
            found = await self._svc.catalog.orgs.named(org)
            who = None
            if found is not None:
                who = Principal(f"mqtt:{org}", found.id, ("data:write",), None, False)
            if len(self._orgs) > 10_000:
                self._orgs.clear()
            hit = self._orgs[org] = (who, now)
        if hit[0] is None:
            raise NotFound(f"organisation '{org}' not found", what="organisation", name=org)
        return hit[0]
