"""One message: its topic read, its payload decoded, its points written through the one write
path (`Ingest.write`, which returns once they are committed), or its refusal recorded.

The broker tells subscribers nothing of who published (MQTT 3.1.1 and 5 carry no publisher
identity), so the broker's rules (mqtt/credentials.py) are what keeps a key inside its
organisation and bucket; here the topic's organisation is the tenant the write is checked for,
with the data:write scope, and a payload may not name a bucket other than its topic's."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from sensorbase.auth.keys import Principal
from sensorbase.errors import NotFound, Problem, SensorbaseError, Unavailable
from sensorbase.ingest.pipeline import WriteOptions
from sensorbase.mqtt.payloads import decode_native
from sensorbase.mqtt.refusals import Refusal, Refusals
from sensorbase.mqtt.topics import TopicError, parse
from sensorbase.mqtt.vendors import decode_vendor
from sensorbase.services import Services

log = logging.getLogger("sensorbase.mqtt")

# A commit that cannot be made now (overload, a storage fault) is tried again, never dropped:
# the message stays unacknowledged meanwhile, so the broker keeps it.
RETRY_S = 0.5


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

    async def __call__(self, topic_name: str, payload: bytes) -> None:
        org: str | None = None
        try:
            topic = parse(self._settings.mqtt_topic_prefix, topic_name)
            org = topic.org
            who = await self._principal(topic.org)
            settings = self._settings
            if topic.dialect is None:
                decoded = decode_native(
                    payload,
                    topic,
                    settings.mqtt_time_precision,
                    settings.max_points_per_request,
                    settings.max_body_bytes,
                )
                batch = decoded.batch
                options = WriteOptions(origin=decoded.origin, known_problems=decoded.problems)
            else:
                batch, options = decode_vendor(payload, topic, settings)
            while True:
                try:
                    await self._svc.ingest.write(who, batch, options)
                    break
                except Unavailable as exc:
                    if self.stopping:
                        raise
                    await asyncio.sleep(exc.retry_after_s or RETRY_S)
        except TopicError as exc:
            self._refuse(org, topic_name, str(exc), [Problem(str(exc), "topic")])
        except Unavailable:
            raise  # stopping: left unacknowledged, the broker sends it again
        except SensorbaseError as exc:
            self._refuse(org, topic_name, exc.detail, exc.problems)
        except Exception:
            log.exception("MQTT message on '%s' could not be handled", topic_name)
            self._refuse(org, topic_name, "internal error", [])
        else:
            self._refusals.stored()

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
