"""Every malformed request of the corpus (tests/malformed.py) against every ingest route of every
dialect and the native API, and the routes that take credentials, on both backends: each is
refused with a 4xx in the route's own error shape, naming the part at fault; nothing of it is
stored (points, sources, series, buckets); and the server answers /healthz after each."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from sensorbase.model import TimeRange
from sensorbase.services import Services
from sensorbase.settings import Settings
from tests.conftest import Org, auth
from tests.malformed import CASES, MAX_BODY_BYTES, MAX_POINTS, Request, Route

NOW = (datetime.now(UTC) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
INPUT = "sen0000000001"


@pytest.fixture
def settings(settings: Settings) -> Iterator[Settings]:
    yield settings.model_copy(
        update={"max_body_bytes": MAX_BODY_BYTES, "max_points_per_request": MAX_POINTS}
    )


def native_problem(body: Any) -> bool:
    return isinstance(body, dict) and {"type", "title", "status", "detail"} <= set(body)


def oauth_error(body: Any) -> bool:
    return isinstance(body, dict) and {"error", "error_description"} <= set(body)


def dakkio_error(body: Any) -> bool:
    return isinstance(body, dict) and {"error", "message"} <= set(body)


def jsonapi_errors(body: Any) -> bool:
    return (
        isinstance(body, dict)
        and isinstance(body.get("errors"), list)
        and all({"status", "title", "detail"} <= set(e) for e in body["errors"])
    )


def databoom_error(body: Any) -> bool:
    return isinstance(body, dict) and isinstance(body.get("message"), str)


SHAPES: dict[str, Callable[[Any], bool]] = {
    "native_write": native_problem,
    "native_bucket": native_problem,
    "native_token": oauth_error,
    "diagrams_push": oauth_error,
    "diagrams_token": oauth_error,
    "dakkio_data": dakkio_error,
    "dakkio_batch": dakkio_error,
    "datacooee_upload": jsonapi_errors,
    "databoom_push": databoom_error,
    "databoom_template_push": databoom_error,
    "madevo_insert": dakkio_error,  # {"error", "message", "details"?}: the same keys
    "madevo_login": dakkio_error,
}

DAKKIO_POINT = {
    "dataSourceId": "ds1",
    "timestamp": NOW,
    "values": {"temperature": 22.5},
    "metadata": {"fw": "1.2"},
}
DAKKIO_PARTS: dict[str, tuple[str | int, ...]] = {
    "value": ("values", "temperature"),
    "time": ("timestamp",),
    "source": ("dataSourceId",),
    "field": ("values", "temperature"),
    "meta": ("metadata",),
}
DAKKIO_WORDS = {
    "value": "values",
    "time": "timestamp",
    "source": "data source|dataSourceId",
    "field": "values",
    "meta": "metadata",
}


def routes(org: Org) -> list[Route]:
    key_headers = {"Authorization": f"Bearer {org.admin}", "Content-Type": "application/json"}
    return [
        Route(
            "native_write",
            "/v1/write?precision=s",
            key_headers,
            {
                "bucket": org.bucket,
                "points": [
                    {"source": "s1", "field": "temp", "value": 21.5, "time": NOW, "meta": {"a": 1}}
                ],
            },
            {
                "value": ("points", 0, "value"),
                "time": ("points", 0, "time"),
                "source": ("points", 0, "source"),
                "field": ("points", 0, "field"),
                "meta": ("points", 0, "meta"),
            },
            {
                "value": "value",
                "time": "time",
                "source": "source",
                "field": "field",
                "meta": "meta",
            },
            items=("points",),
        ),
        Route(
            "diagrams_push",
            f"/v0/organisations/{org.key}/data/{org.bucket}",
            key_headers,
            [{"sensorId": "1", "date": NOW, "value": 19.9, "valueName": "t", "labels": {"a": 1}}],
            {
                "value": (0, "value"),
                "time": (0, "date"),
                "source": (0, "sensorId"),
                "field": (0, "valueName"),
                "meta": (0, "labels"),
            },
            {
                "value": "value",
                "time": "date",
                "source": "sensorId",
                "field": "valueName",
                "meta": "labels",
            },
            items=(),
        ),
        Route(
            "dakkio_data",
            "/api/data",
            {"X-API-Key": org.admin, "Content-Type": "application/json"},
            {"bucketId": org.bucket, **DAKKIO_POINT},
            DAKKIO_PARTS,
            DAKKIO_WORDS,
            renames=True,
        ),
        Route(
            "dakkio_batch",
            "/api/data/batch",
            {"X-API-Key": org.admin, "Content-Type": "application/json"},
            {"bucketId": org.bucket, "dataPoints": [dict(DAKKIO_POINT)]},
            {name: ("dataPoints", 0, *path) for name, path in DAKKIO_PARTS.items()},
            DAKKIO_WORDS,
            items=("dataPoints",),
            renames=True,
            max_items=1000,  # dakkio's own cap
        ),
        Route(
            "datacooee_upload",
            f"/api/external/v1/inputs/{INPUT}/inputdata/",
            {
                "organization-id": org.key,
                "organization-api-key": org.admin,
                "content-type": "application/vnd.api+json",
            },
            {
                "data": {
                    "type": "SensorData",
                    "id": "null",
                    "attributes": {"value": "12.5", "timestamp": NOW, "metadata": {"a": 1}},
                    "relationships": {"sensor": {"data": {"type": "Sensor", "id": INPUT}}},
                }
            },
            {
                "value": ("data", "attributes", "value"),
                "time": ("data", "attributes", "timestamp"),
                "meta": ("data", "attributes", "metadata"),
            },
            {"value": "value", "time": "timestamp", "meta": "metadata"},
            accepts=frozenset({"value_numeric_string"}),  # its document sends "12.5"
        ),
        Route(
            "databoom_push",
            "/v1/signals/push",
            key_headers,
            {"device": "dev1", "date": NOW, "signals": [{"name": "t", "value": 1.5}]},
            {
                "value": ("signals", 0, "value"),
                "time": ("date",),
                "source": ("device",),
                "field": ("signals", 0, "name"),
                "meta": ("signals", 0, "meta"),
            },
            {"value": "value", "time": "date", "source": "device", "field": "name", "meta": "meta"},
            items=("signals",),
            # JavaScript ignores extra members; a push without signals is processed (a device
            # reporting in with nothing to say), as docs/dialects/databoom.md records.
            accepts=frozenset({"unknown_name_in_item", "empty_batch"}),
        ),
        Route(
            "databoom_template_push",
            "/v1/signals/push/u1",
            key_headers,
            {
                "type": "data",
                "message": [
                    {"template": "tmpl", "date": NOW, "signals": [{"name": "t", "value": 1.5}]}
                ],
            },
            {
                "value": ("message", 0, "signals", 0, "value"),
                "time": ("message", 0, "date"),
                "source": ("message", 0, "template"),
                "field": ("message", 0, "signals", 0, "name"),
                "meta": ("message", 0, "signals", 0, "meta"),
            },
            {
                "value": "value",
                "time": "date",
                "source": "template",
                "field": "name",
                "meta": "meta",
            },
            items=("message", 0, "signals"),
            # As the plain push's (a refused push makes no device: stored() counts sources).
            accepts=frozenset({"unknown_name_in_item", "empty_batch"}),
        ),
        Route(
            "madevo_insert",
            "/restapi/datasource/insert",
            key_headers,
            {
                "datasource_id": org.bucket,
                "data": [
                    {
                        "timestamp": NOW,
                        "metric": "temperature",
                        "value": 22.5,
                        "entity_id": "e1",
                        "location": "hall",
                    }
                ],
            },
            {
                "value": ("data", 0, "value"),
                "time": ("data", 0, "timestamp"),
                "source": ("data", 0, "entity_id"),
                "field": ("data", 0, "metric"),
                "meta": ("data", 0, "location"),
            },
            {
                "value": "value",
                "time": "timestamp",
                "source": "entity_id",
                "field": "metric",
                "meta": "location",
            },
            items=("data",),
            max_items=1000,  # SENSORBASE_MADEVO_MAX_RECORDS
            # Its document takes numeric strings and integer entity ids; any other column is
            # a dimension.
            accepts=frozenset({"value_numeric_string", "unknown_name_in_item", "source_number"}),
        ),
        Route(
            "native_bucket",
            "/v1/buckets",
            key_headers,
            {"key": "new-bucket", "meta": {"a": 1}},
            {"source": ("key",), "meta": ("meta",)},
            {"source": "key", "meta": "meta"},
        ),
        Route(
            "madevo_login",
            "/restapi/login",
            {"Content-Type": "application/json"},
            {"email": "ada@example.com", "password": "correct horse"},
            {"source": ("email",)},  # (for the cases that spoil a string)
            {},
            writes=False,
        ),
        Route(
            "native_token",
            "/v1/auth/token",
            {"Content-Type": "application/json"},
            {"grant_type": "client_credentials", "client_id": "k0", "client_secret": "s"},
            {"source": ("client_id",)},
            {},
            writes=False,
        ),
        Route(
            "diagrams_token",
            "/v0/oauth2/token",
            {"Content-Type": "application/x-www-form-urlencoded"},
            "grant_type=client_credentials&client_id=k0&client_secret=s",
            {},
            {},
            writes=False,
            form=True,
        ),
    ]


ROUTE_NAMES = list(SHAPES)


class Credentials:
    """The keys the credential cases send instead of the route's own."""

    def __init__(self, org: Org, read_only: str, revoked: str) -> None:
        key_id = org.admin.split("_")[1]
        self.keys = {
            "wrong_secret": f"sb_{key_id}_{'x' * 32}",
            "unknown_key": "sb_k0000000000000000_nope",
            "garbage": "x.y.z",
            "revoked": revoked,
            "read_only": read_only,
        }
        self.admin = org.admin

    def headers(self, route: Route, kind: str) -> dict[str, str]:
        headers = {k: v for k, v in route.headers.items()}
        key = self.keys.get(kind)
        for name, value in route.headers.items():
            if self.admin in value:
                if key is None:
                    del headers[name]
                else:
                    headers[name] = value.replace(self.admin, key)
        return headers


async def stored(services: Services, org_id: int) -> tuple[int, int, int, int]:
    """Points, series, sources and buckets the organisation holds."""

    def count(reader: Any) -> tuple[int, int, int, int]:
        series = reader.list_series(org_id)
        points = sum(reader.count(s.id, TimeRange(None, None)) for s in series)
        buckets, total = reader.list_buckets(org_id, 1000, 0)
        sources = sum(reader.list_sources(b.id, 1000, 0)[1] for b in buckets)
        return points, len(series), sources, total

    return await asyncio.to_thread(lambda: count(services.store.reader()))


async def prepare(client: httpx.AsyncClient, org: Org) -> Credentials:
    for body in (
        {"key": "ds1"},
        {"key": "dev1"},
        {"key": "tmpl", "meta": {"template": True}},
        {"key": INPUT, "schema": {"value": {"type": "number"}}},
    ):
        reply = await client.post(
            f"/v1/buckets/{org.bucket}/sources", json=body, headers=org.headers
        )
        assert reply.status_code == 201, reply.text
    read_only = (await org.new_key(client, ["data:read"]))["key"]
    revoked = await org.new_key(client, ["data:write"])
    reply = await client.delete(f"/v1/keys/{revoked['id']}", headers=org.headers)
    assert reply.status_code == 204
    return Credentials(org, read_only, revoked["key"])


def _request_of(
    route: Route, made: Request, credentials: Credentials
) -> tuple[bytes, dict[str, str]]:
    headers = dict(route.headers)
    extra = dict(made.headers)
    kind = extra.pop("X-Credential", None)
    if kind is not None:
        headers = credentials.headers(route, kind)
    for name, value in extra.items():  # replacing the route's own, whatever its case
        headers = {k: v for k, v in headers.items() if k.lower() != name.lower()}
        headers[name] = value
    return made.body, headers


@pytest.mark.parametrize("route_name", ROUTE_NAMES)
async def test_every_malformed_request_is_refused_and_stores_nothing(
    client: httpx.AsyncClient, org: Org, services: Services, route_name: str
) -> None:
    credentials = await prepare(client, org)
    route = next(r for r in routes(org) if r.name == route_name)
    org_id = credentials_org_id(services, org)
    before = await stored(services, org_id)
    failures: list[str] = []
    sent = 0
    for case in CASES:
        made = case.make(route)
        if made is None or case.name in route.accepts:
            continue
        sent += 1
        body, headers = _request_of(route, made, credentials)
        reply = await client.post(route.path, content=body, headers=headers)
        problem = _judge(route, case.part, reply)
        if problem:
            failures.append(f"{case.name}: {problem}")
        after = await stored(services, org_id)
        if after != before:
            failures.append(f"{case.name}: stored something: {before} -> {after}")
            before = after
        health = await client.get("/healthz")
        if health.status_code != 200:
            failures.append(f"{case.name}: /healthz answered {health.status_code}")
    assert sent >= (40 if route.writes else 10 if route.form else 25)
    assert not failures, "\n".join(failures)


def credentials_org_id(services: Services, org: Org) -> int:
    found = services.store.reader().get_org(org.key)
    assert found is not None
    return found.id


def _judge(route: Route, part: str | None, reply: httpx.Response) -> str | None:
    """What is wrong with a refusal, or None."""
    if not 400 <= reply.status_code < 500:
        return f"status {reply.status_code}: {reply.text[:300]}"
    try:
        body = reply.json()
    except json.JSONDecodeError:
        return f"not JSON ({reply.headers.get('content-type')}): {reply.text[:200]}"
    if not SHAPES[route.name](body):
        return f"not in the route's error shape: {reply.text[:300]}"
    if len(reply.content) > 64 * 1024:
        return f"a refusal of {len(reply.content)} bytes"
    words = route.words.get(part or "")
    if words and not any(w.lower() in reply.text.lower() for w in words.split("|")):
        return f"does not name {words!r}: {reply.text[:300]}"
    return None


def test_the_corpus_has_sixty_classes_or_more() -> None:
    assert len({c.name for c in CASES}) == len(CASES) >= 60


def test_the_auth_helper_builds_headers() -> None:
    org = Org("acme", "sb_kabc_secret", "farm")
    credentials = Credentials(org, "sb_kro_x", "sb_krev_y")
    route = routes(org)[0]
    assert "Authorization" not in credentials.headers(route, "none")
    assert credentials.headers(route, "read_only")["Authorization"] == "Bearer sb_kro_x"
    assert auth("k") == {"Authorization": "Bearer k"}
