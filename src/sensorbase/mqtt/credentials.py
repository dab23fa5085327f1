"""Device credentials: every API key that may write (data:write or admin) is a client of the
broker, username its key id and password the whole key (`sb_<id>_<secret>`), with one role that
lets it publish under its organisation's topics only (`<prefix>/<org>/#`, or
`<prefix>/<org>/<bucket>/#` for a key limited to a bucket). Revoking the key deletes the
client, which the broker disconnects at once.

The broker hashes passwords itself, so a client can be made only when the key's secret is in
hand: when the key is created. One created while the broker was unreachable is kept (in this
process's memory) and made when the broker is back; at every (re)connection the broker's
clients are also checked against the keys, and those of revoked or deleted keys deleted; so
they are after every delete this node makes (an organisation or a bucket takes its keys with
it), at once rather than at the next reconnection."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from starlette.concurrency import run_in_threadpool

from sensorbase.auth.keys import NewKey
from sensorbase.model import ApiKey
from sensorbase.mqtt import topics
from sensorbase.mqtt.dynsec import TIMEOUT_S, BrokerUnreachable, Dynsec
from sensorbase.services import Services

log = logging.getLogger("sensorbase.mqtt")

TEXT_NAME = "sensorbase key"  # marks the broker clients Sensorbase manages
SERVICE_ROLE = "sensorbase-service"
START_WAIT_S = 3.0


class BrokerCredentials:
    def __init__(self, services: Services) -> None:
        self._svc = services
        self._prefix = services.settings.mqtt_topic_prefix
        self._own_user = services.settings.mqtt_username
        self._dynsec = Dynsec(services.settings)
        self._dynsec.on_ready.append(self.sync)
        self._pending: dict[str, tuple[ApiKey, NewKey]] = {}
        services.catalog.keys.on_create(self.created)
        services.catalog.keys.on_revoke(self.revoked)
        services.catalog.work.on_delete(self.deleted)
        # One thread for the syncs after deletes: they queue rather than race, and reuse its
        # store connection (a reader is made per thread).
        self._after_deletes = ThreadPoolExecutor(1, thread_name_prefix="sensorbase-mqtt-sync")

    async def start(self) -> None:
        self._dynsec.start()
        # The sync runs when the connection is up (Dynsec.on_ready), in the background: a
        # broker that is down delays the start by START_WAIT_S at most.
        await run_in_threadpool(self._dynsec.wait_ready, START_WAIT_S)

    def stop(self) -> None:
        self._after_deletes.shutdown(wait=False, cancel_futures=True)
        self._dynsec.stop()

    def wait_ready(self, timeout_s: float) -> bool:
        return self._dynsec.wait_ready(timeout_s)

    async def created(self, key: ApiKey, made: NewKey) -> None:
        if not _writes(key):
            return
        self._pending[key.key_id] = (key, made)
        try:
            await run_in_threadpool(self._dynsec.wait_ready, TIMEOUT_S)
            await run_in_threadpool(self._make, key, made)
        except BrokerUnreachable as exc:
            log.warning("MQTT client for key %s waits for the broker: %s", key.key_id, exc)

    async def revoked(self, key: ApiKey) -> None:
        self._pending.pop(key.key_id, None)
        try:
            await run_in_threadpool(self._dynsec.run, _delete(key.key_id))
        except BrokerUnreachable as exc:  # the next sync deletes it
            log.warning("MQTT client of revoked key %s not yet deleted: %s", key.key_id, exc)

    def deleted(self, _: str) -> None:
        """After a delete: the broker's clients of the keys it took deleted (the event loop
        does not wait on the broker)."""
        if self._dynsec.wait_ready(0):
            self._after_deletes.submit(self.sync)

    def sync(self) -> None:
        """The broker's clients in step with the keys (on a thread of its own)."""
        try:
            self._sync()
        except BrokerUnreachable as exc:
            log.warning("MQTT credentials not synchronised: %s", exc)
        except Exception:
            log.exception("MQTT credentials not synchronised")

    def _sync(self) -> None:
        self._service_role()
        for key, made in list(self._pending.values()):
            self._make(key, made)
        keys = self._svc.catalog.work.read_now(_all_keys)
        (answer,) = self._dynsec.run({"command": "listClients", "verbose": True, "count": -1})
        clients = answer.get("data", {}).get("clients", [])
        ours = {c["username"] for c in clients if c.get("textname") == TEXT_NAME}
        active = {k.key_id for k in keys if k.revoked_us is None and _writes(k)}
        stale = sorted(ours - active)
        if stale:
            self._dynsec.run(*(_delete(name) for name in stale))
        missing = sorted(active - ours)
        if missing:
            # Their secrets are only hashes here: such a key needs replacing to publish.
            log.info(
                "%d writing key(s) have no MQTT client (made before MQTT was set up): %s",
                len(missing),
                ", ".join(missing[:20]),
            )
        log.info("MQTT credentials synchronised: %d stale client(s) deleted", len(stale))

    def _service_role(self) -> None:
        """Sensorbase's own user may publish refusals on each organisation's error topic."""
        if not self._own_user:
            return
        acl = {
            "acltype": "publishClientSend",
            "topic": topics.errors_topic(self._prefix, "+"),
            "allow": True,
        }
        self._dynsec.run(
            {"command": "createRole", "rolename": SERVICE_ROLE, "acls": [acl]},
            {"command": "addClientRole", "username": self._own_user, "rolename": SERVICE_ROLE},
        )

    def _make(self, key: ApiKey, made: NewKey) -> None:
        org, bucket = self._svc.catalog.work.read_now(lambda r: _names(r, key))
        if org is None:
            self._pending.pop(key.key_id, None)
            return
        if bucket is None:
            role = f"sb-org-{org}"
            acls = [
                _acl("publishClientSend", f"{self._prefix}/{org}/#"),
                _acl("subscribeLiteral", topics.errors_topic(self._prefix, org)),
                _acl("publishClientReceive", topics.errors_topic(self._prefix, org)),
            ]
        else:
            role = f"sb-bucket-{org}-{bucket}"
            acls = [_acl("publishClientSend", f"{self._prefix}/{org}/{bucket}/#")]
        answers = self._dynsec.run(
            {"command": "createRole", "rolename": role, "acls": acls},
            {
                "command": "createClient",
                "username": key.key_id,
                "password": made.token,
                "textname": TEXT_NAME,
                "roles": [{"rolename": role}],
            },
        )
        failed = answers[1].get("error")
        if failed and "already exists" not in failed:
            raise BrokerUnreachable(f"the broker refused key {key.key_id}'s client: {failed}")
        self._pending.pop(key.key_id, None)


def _writes(key: ApiKey) -> bool:
    return "data:write" in key.scopes or "admin" in key.scopes


def _delete(username: str) -> dict[str, Any]:
    return {"command": "deleteClient", "username": username}


def _acl(kind: str, topic: str) -> dict[str, Any]:
    return {"acltype": kind, "topic": topic, "allow": True}


def _names(reader: Any, key: ApiKey) -> tuple[str | None, str | None]:
    org = reader.get_org_by_id(key.org_id)
    if org is None:
        return None, None
    if key.bucket_id is None:
        return org.key, None
    bucket = reader.get_bucket_by_id(key.org_id, key.bucket_id)
    return (org.key, bucket.key) if bucket is not None else (None, None)


def _all_keys(reader: Any) -> list[ApiKey]:
    return [k for org in reader.list_orgs() for k in reader.list_keys(org.id)]
