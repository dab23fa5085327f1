"""InfluxDB line-protocol writes, ping and health: InfluxData's own Python clients (`influxdb`
for 1.x, `influxdb-client` for 2.x) against a real HTTP server (uvicorn serving the app over
the test's store, on both backends), and raw requests for the error shapes; every write
checked by reading back through the native API (`/v1/query`, `/v1/buckets/.../sources`)."""

from __future__ import annotations

import asyncio
import gzip
import json
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import httpx
import pytest
import uvicorn
from influxdb import InfluxDBClient
from influxdb.exceptions import InfluxDBClientError
from influxdb_client import InfluxDBClient as InfluxDBClient2
from influxdb_client import Point, WritePrecision
from influxdb_client.client.exceptions import InfluxDBError
from influxdb_client.client.write_api import SYNCHRONOUS

from sensorbase.api.app import build_app
from sensorbase.dialects.influx import SAMPLE, lineproto
from sensorbase.services import Services
from tests.conftest import Org, auth

T = TypeVar("T")
T0 = 1_700_000_000  # 2023-11-14T22:13:20Z


@pytest.fixture
async def server(services: Services) -> AsyncIterator[str]:
    """The app over this test's store, served by uvicorn on a free port in the test's loop (the
    synchronous clients run in threads beside it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = uvicorn.Config(
        build_app(services, manage_lifecycle=False),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        lifespan="off",
    )
    served = uvicorn.Server(config)
    task = asyncio.create_task(served.serve())
    while not served.started:
        await asyncio.sleep(0.01)
    yield f"http://127.0.0.1:{port}"
    served.should_exit = True
    await task


def threaded(call: Callable[[], T]) -> Awaitable[T]:
    return asyncio.to_thread(call)


async def points(
    client: httpx.AsyncClient, org: Org, source: str, field: str
) -> list[tuple[str, float]]:
    """The points of one series, read through the native API (the whole bucket: the native
    `source` and `field` parameters take comma-separated lists, and series keys hold commas)."""
    reply = await client.get(
        "/v1/query",
        params={"bucket": org.bucket, "limit": 1000},
        headers=org.headers,
    )
    if reply.status_code == 404:
        return []
    assert reply.status_code == 200, reply.text
    series = [s for s in reply.json()["series"] if (s["source"], s["field"]) == (source, field)]
    return [(p["time"], p["value"]) for s in series for p in s["points"]]


async def source_of(client: httpx.AsyncClient, org: Org, source: str) -> dict[str, Any]:
    reply = await client.get(
        f"/v1/buckets/{org.bucket}/sources/{source}", headers=org.headers
    )  # a key with a comma or space goes in the path percent-encoded by httpx
    assert reply.status_code == 200, reply.text
    return dict(reply.json())


def iso(epoch_s: float) -> str:
    return datetime.fromtimestamp(epoch_s, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# --- InfluxData's clients ---------------------------------------------------------------------


async def test_1x_client_writes_points_with_tags_precision_and_batches(
    server: str, client: httpx.AsyncClient, org: Org
) -> None:
    influx = InfluxDBClient(
        host="127.0.0.1", port=int(server.rsplit(":", 1)[1]), username="any",
        password=org.admin, database=org.bucket,
    )  # fmt: skip
    version = await threaded(influx.ping)
    assert version == "1.8.10"
    # Home Assistant's connection test when it starts: a write of nothing, which influxd 1.x
    # answers 204 (2.x refuses it: test_limits_gzip_and_empty_bodies).
    assert await threaded(lambda: influx.write_points([]))
    body = [
        {
            "measurement": "weather",
            "tags": {"station": "KX1", "location": "us-midwest"},
            "time": T0 + i,
            "fields": {"temperature": 20.5 + i, "humidity": 70 + i, "ok": i % 2 == 0},
        }
        for i in range(7)
    ]
    assert await threaded(lambda: influx.write_points(body, time_precision="s", batch_size=3))
    key = "weather,location=us-midwest,station=KX1"
    assert await points(client, org, key, "temperature") == [
        (iso(T0 + i), 20.5 + i) for i in range(7)
    ]
    assert [v for _, v in await points(client, org, key, "humidity")] == [
        70.0 + i for i in range(7)
    ]
    assert [v for _, v in await points(client, org, key, "ok")] == [1.0, 0.0] * 3 + [1.0]
    found = await source_of(client, org, key)
    assert found["meta"] == {
        "influx": {"measurement": "weather", "tags": {"location": "us-midwest", "station": "KX1"}}
    }
    # Milliseconds, and the `u`/`p` query parameters the client sends.
    stamp_ms = T0 * 1000 + 250
    line = f"cpu,host=a usage=3.5 {stamp_ms}"
    assert await threaded(lambda: influx.write_points([line], time_precision="ms", protocol="line"))
    assert await points(client, org, "cpu,host=a", "usage") == [(iso(T0 + 0.25), 3.5)]


def home_assistant_points(t: int) -> list[dict[str, Any]]:
    """What Home Assistant's InfluxDB integration writes on a state change (2024.1): the state
    as `value` when it is a number (else `state`, a string, and `value` 0/1 for on/off), and
    every attribute as a field, `_str` after the name of a string one."""
    return [
        {
            "measurement": "°C",
            "tags": {"domain": "input_number", "entity_id": "freezer"},
            "time": t,
            "fields": {"value": -17.5, "min": -30.0, "friendly_name_str": "Freezer"},
        },
        {
            "measurement": "state",
            "tags": {"domain": "automation", "entity_id": "warm_up"},
            "time": t,
            "fields": {"state": "on", "value": 1.0, "mode_str": "single"},
        },
        {
            "measurement": "state",
            "tags": {"domain": "sun", "entity_id": "sun"},
            "time": t,
            "fields": {"state": "above_horizon", "friendly_name_str": "Sun"},
        },
    ]


async def test_home_assistant_string_fields(
    server: str, client: httpx.AsyncClient, org: Org, services: Services
) -> None:
    """Refused with every line named by default; with SENSORBASE_INFLUX_STRING_FIELDS=skip the
    numeric fields are stored and the reply is 204 (Home Assistant logs every 400)."""
    influx = InfluxDBClient(
        host="127.0.0.1", port=int(server.rsplit(":", 1)[1]), username="homeassistant",
        password=org.admin, database=org.bucket,
    )  # fmt: skip
    with pytest.raises(InfluxDBClientError) as refused:
        await threaded(lambda: influx.write_points(home_assistant_points(T0), time_precision="s"))
    assert refused.value.code == 400
    reason = json.loads(refused.value.content)["error"]
    assert [line.split(":")[0] for line in reason.split("\n")] == ["line 1", "line 2", "line 3"]
    assert "string fields are not stored" in reason
    assert await points(client, org, "°C,domain=input_number,entity_id=freezer", "value") == []
    services.settings.influx_string_fields = "skip"
    assert await threaded(
        lambda: influx.write_points(home_assistant_points(T0), time_precision="s")
    )
    freezer = "°C,domain=input_number,entity_id=freezer"
    assert await points(client, org, freezer, "value") == [(iso(T0), -17.5)]
    assert await points(client, org, freezer, "min") == [(iso(T0), -30.0)]
    assert await points(client, org, freezer, "friendly_name_str") == []
    automation = "state,domain=automation,entity_id=warm_up"
    assert await points(client, org, automation, "value") == [(iso(T0), 1.0)]
    assert await points(client, org, automation, "state") == []
    # A body of string fields only stores nothing, and is not an error.
    sun = "state,domain=sun,entity_id=sun"
    assert await threaded(
        lambda: influx.write_points(home_assistant_points(T0)[2:], time_precision="s")
    )
    reply = await client.get(f"/v1/buckets/{org.bucket}/sources/{sun}", headers=org.headers)
    assert reply.status_code == 404
    # A malformed value is still refused, its line named.
    reply = await client.post(
        "/write", content=b'm,t=1 a=1,b="open', params={"db": org.bucket, "p": org.admin}
    )
    assert reply.status_code == 400 and "line 1" in reply.json()["error"]


async def test_2x_client_writes_lines_points_and_gzip(
    server: str, client: httpx.AsyncClient, org: Org
) -> None:
    for gzipped in (False, True):
        influx = InfluxDBClient2(url=server, token=org.admin, org="acme", enable_gzip=gzipped)
        api = influx.write_api(write_options=SYNCHRONOUS)
        field = "gz" if gzipped else "plain"
        lines = [f"room,floor=1 {field}=1.5 {T0}", f"room,floor=1 {field}=2i {T0 + 60}"]
        await asyncio.to_thread(api.write, org.bucket, record=lines, write_precision="s")
        point = (
            Point("room").tag("floor", "2").field(field, 7.25).time(T0 * 10**9, WritePrecision.NS)
        )
        await asyncio.to_thread(api.write, org.bucket, record=point)
        assert await points(client, org, "room,floor=1", field) == [
            (iso(T0), 1.5),
            (iso(T0 + 60), 2.0),
        ]
        assert await points(client, org, "room,floor=2", field) == [(iso(T0), 7.25)]
        assert await threaded(influx.ping)
        assert await threaded(influx.version) == "1.8.10"
        assert await threaded(influx.build) == "OSS"
        influx.close()


async def test_2x_client_errors_are_influxdb_errors(
    server: str, client: httpx.AsyncClient, org: Org, other_org: Org
) -> None:
    """Bad lines named, a wrong token, another organisation's bucket: the 2.x client raises
    its own error carrying InfluxDB's code and message."""
    influx = InfluxDBClient2(url=server, token=org.admin, org="acme")
    api = influx.write_api(write_options=SYNCHRONOUS)
    with pytest.raises(InfluxDBError) as bad:
        await threaded(lambda: api.write(bucket=org.bucket, record="m v=1\nm v=\nm v=2"))
    assert bad.value.response.status == 400
    assert "line 2: missing field value" in bad.value.message
    assert "dropped=1" in bad.value.message
    with pytest.raises(InfluxDBError) as elsewhere:
        await threaded(lambda: api.write(bucket=other_org.bucket, record="m v=1"))
    assert elsewhere.value.response.status == 404
    assert elsewhere.value.message == f'bucket "{other_org.bucket}" not found'
    wrong = InfluxDBClient2(url=server, token=org.admin[:-2] + "xx", org="acme")
    with pytest.raises(InfluxDBError) as unauthorized:
        await threaded(
            lambda: wrong.write_api(write_options=SYNCHRONOUS).write(org.bucket, record="m v=1")
        )
    assert unauthorized.value.response.status == 401
    influx.close()
    wrong.close()


async def test_1x_client_errors(server: str, org: Org) -> None:
    port = int(server.rsplit(":", 1)[1])
    influx = InfluxDBClient(host="127.0.0.1", port=port, password=org.admin, database="nope")
    with pytest.raises(InfluxDBClientError) as missing:
        await threaded(lambda: influx.write_points(["m v=1"], protocol="line"))
    assert missing.value.code == 404
    assert 'database not found: \\"nope\\"' in missing.value.content or "nope" in str(missing.value)
    wrong = InfluxDBClient(host="127.0.0.1", port=port, password="sb_kwrong", database=org.bucket)
    with pytest.raises(InfluxDBClientError) as unauthorized:
        await threaded(lambda: wrong.write_points(["m v=1"], protocol="line"))
    assert unauthorized.value.code == 401


# --- the wire: shapes, partial writes, credentials, tenancy -------------------------------------


async def test_partial_write_keeps_the_good_lines_and_names_the_bad(
    client: httpx.AsyncClient, org: Org
) -> None:
    body = (
        f"ok v=1 {T0}\n"
        f"bad v=abc {T0}\n"
        f'str,t=x s="text",v=2 {T0}\n'
        f"ok v=2 {T0 + 1}\n"
        f"old v=1 -2208988800\n"
        "no_fields\n"
    )
    reply = await client.post(
        f"/write?db={org.bucket}&precision=s", content=body, headers=org.headers
    )
    assert reply.status_code == 400
    error = reply.json()["error"]
    assert error.startswith("partial write: line 2: invalid field value 'abc' ('bad v=abc")
    assert f"line 3: {lineproto.STRING_FIELD}" in error
    assert "line 5: timestamp: " in error  # before the accepted window
    assert "line 6: missing fields ('no_fields')" in error
    assert error.endswith(" dropped=4")
    assert reply.headers["X-Influxdb-Error"].startswith("partial write: line 2")
    assert await points(client, org, "ok", "v") == [(iso(T0), 1.0), (iso(T0 + 1), 2.0)]
    reply = await client.get(f"/v1/buckets/{org.bucket}/sources", headers=org.headers)
    assert [s["key"] for s in reply.json()["sources"]] == ["ok"]  # nothing of the bad lines

    reply = await client.post(
        f"/api/v2/write?bucket={org.bucket}&precision=s",
        content="ok v=3 1700000002\nx y=\n",
        headers={"Authorization": f"Token {org.admin}"},
    )
    assert reply.status_code == 400
    assert reply.json() == {
        "code": "invalid",
        "line": 2,
        "message": "partial write: line 2: missing field value ('x y=') dropped=1",
    }
    assert len(await points(client, org, "ok", "v")) == 3
    # Every line bad: the same message, without "partial write".
    reply = await client.post(f"/write?db={org.bucket}", content="m v=t1\n", headers=org.headers)
    assert reply.json() == {"error": "line 1: invalid field value 't1' ('m v=t1')"}


NUMBERS = [  # (field value as sent, stored value): every numeric type of line protocol
    ("1.5", 1.5),
    ("-1.5e3", -1500.0),
    (".5", 0.5),
    ("42", 42.0),
    ("-42i", -42.0),
    ("9223372036854775807i", 9.223372036854776e18),
    ("18446744073709551615u", 1.8446744073709552e19),
    *[(b, 1.0) for b in ("t", "T", "true", "True", "TRUE")],
    *[(b, 0.0) for b in ("f", "F", "false", "False", "FALSE")],
]


async def test_every_numeric_field_type(client: httpx.AsyncClient, org: Org) -> None:
    body = "".join(f"m f{i}={text} {T0}\n" for i, (text, _) in enumerate(NUMBERS))
    body += "m " + ",".join(f"g{i}={text}" for i, (text, _) in enumerate(NUMBERS)) + f" {T0}"
    reply = await client.post(
        f"/write?db={org.bucket}&precision=s", content=body, headers=org.headers
    )
    assert reply.status_code == 204, reply.text
    for i, (_, value) in enumerate(NUMBERS):
        assert await points(client, org, "m", f"f{i}") == [(iso(T0), value)]
        assert await points(client, org, "m", f"g{i}") == [(iso(T0), value)]


BAD_LINES = [  # (line, its reason): each refused, named, the good lines beside them written
    ("m f=9223372036854775808i", "out of range"),
    ("m f=-1u", "invalid unsigned integer"),
    ("m f=1.5i", "invalid integer"),
    ('m f="unterminated', "unbalanced quotes"),
    ("m f=nan", "invalid number"),
    ("m f=+1", "invalid number"),
    ("m f=1e400", "invalid number"),
    ("m,t f=1", "missing tag value"),
    ("m,a=1,a=2 f=1", "duplicate tags"),
    ("m f=1 12x", "bad timestamp"),
    ("m f=1 1 2", "bad timestamp"),
    ("m time=1", "invalid field key 'time'"),
    (",t=1 f=1", "missing measurement"),
    ("m =1", "missing field key"),
    ("m f", "invalid field format 'f'"),
    ('m s="text"', lineproto.STRING_FIELD),
    ("m f=1 99999999999999999999", "bad timestamp"),
]


async def test_bad_lines_are_named(client: httpx.AsyncClient, org: Org) -> None:
    body = "".join(f"ok f={i} {T0 + i}\n{line}\n" for i, (line, _) in enumerate(BAD_LINES))
    reply = await client.post(
        f"/write?db={org.bucket}&precision=s", content=body, headers=org.headers
    )
    assert reply.status_code == 400
    error = reply.json()["error"]
    assert error.startswith("partial write: ") and error.endswith(f" dropped={len(BAD_LINES)}")
    named = error.removeprefix("partial write: ").rsplit(" dropped=", 1)[0].split("\n")
    assert len(named) == len(BAD_LINES)
    for i, ((line, reason), said) in enumerate(zip(BAD_LINES, named, strict=True)):
        assert said.startswith(f"line {2 * i + 2}: ") and reason in said, said
        assert said.endswith(f"('{line}')"), said
    assert len(await points(client, org, "ok", "f")) == len(BAD_LINES)


async def test_a_timestamp_holding_a_comma_is_refused(client: httpx.AsyncClient, org: Org) -> None:
    """Timestamps are decoded at once as one JSON array when every line has one: a stamp of
    `5,0` must not read as two (the body's other stamps all good, so that path is taken)."""
    body = f"ok f=0 {T0}\nm f=1 {T0},5\nok f=2 {T0 + 2}\nm f=3 -1,0\n"
    reply = await client.post(
        f"/write?db={org.bucket}&precision=s", content=body, headers=org.headers
    )
    assert reply.status_code == 400
    error = reply.json()["error"]
    assert error.endswith(" dropped=2"), error
    assert f"line 2: bad timestamp '{T0},5'" in error and "line 4: bad timestamp '-1,0'" in error
    assert await points(client, org, "ok", "f") == [(iso(T0), 0.0), (iso(T0 + 2), 2.0)]
    assert (
        await client.get(f"/v1/buckets/{org.bucket}/sources/m", headers=org.headers)
    ).status_code == 404


async def test_escaping_round_trips(client: httpx.AsyncClient, org: Org) -> None:
    """Commas, spaces, equals signs and backslashes escaped in the measurement, tags and field
    keys come back unescaped in the source's meta and field, and the source key is the
    canonical series key (tags sorted, escaped again)."""
    line = r'my\ meas\,ure,z\=k=v\,1,a\ b=c\ d f\=1\,x=2,s\ x=3i,q="a \"quote\" \\ and, space" '
    reply = await client.post(
        f"/write?db={org.bucket}&precision=s", content=f"{line}{T0}\n", headers=org.headers
    )
    assert reply.status_code == 400  # the string field refuses the line...
    assert lineproto.STRING_FIELD in reply.json()["error"]
    reply = await client.post(
        f"/write?db={org.bucket}&precision=s",
        content=line.replace(',q="a \\"quote\\" \\\\ and, space"', "") + f"{T0}\n",
        headers=org.headers,
    )
    assert reply.status_code == 204, reply.text  # ...and without it, the line is written
    key = r"my\ meas\,ure,a\ b=c\ d,z\=k=v\,1"
    found = await source_of(client, org, key)
    assert found["meta"] == {
        "influx": {"measurement": "my meas,ure", "tags": {"a b": "c d", "z=k": "v,1"}}
    }
    assert await points(client, org, key, "f=1,x") == [(iso(T0), 2.0)]
    assert await points(client, org, key, "s x") == [(iso(T0), 3.0)]


async def test_precisions_and_server_time(client: httpx.AsyncClient, org: Org) -> None:
    for precision, stamp in [
        ("n", T0 * 10**9), ("ns", T0 * 10**9), ("u", T0 * 10**6), ("ms", T0 * 1000),
        ("s", T0), ("m", T0 // 60), ("h", T0 // 3600),
    ]:  # fmt: skip
        reply = await client.post(
            f"/write?db={org.bucket}&precision={precision}",
            content=f"p,unit={precision} v=1 {stamp}",
            headers=org.headers,
        )
        assert reply.status_code == 204, reply.text
        expected = T0 if precision not in ("m", "h") else stamp * {"m": 60, "h": 3600}[precision]
        assert await points(client, org, f"p,unit={precision}", "v") == [(iso(expected), 1.0)]
    reply = await client.post(
        f"/api/v2/write?bucket={org.bucket}&precision=h",
        content="p v=1",
        headers={"Authorization": f"Token {org.admin}"},
    )
    assert reply.status_code == 400
    assert reply.json()["code"] == "invalid" and "precision" in reply.json()["message"]
    before = time.time()
    reply = await client.post(
        f"/write?db={org.bucket}", content="now a=1\nnow b=2\n", headers=org.headers
    )
    assert reply.status_code == 204
    (stamp_a, _), (stamp_b, _) = (
        (await points(client, org, "now", "a"))[0],
        (await points(client, org, "now", "b"))[0],
    )
    assert stamp_a == stamp_b  # one time of arrival for every line of the request
    arrived = datetime.fromisoformat(stamp_a.replace("Z", "+00:00")).timestamp()
    assert before - 1 <= arrived <= time.time() + 1


async def test_credentials_every_way(client: httpx.AsyncClient, org: Org) -> None:
    url = "/write"
    query = {"db": org.bucket, "precision": "s"}
    ways: list[dict[str, Any]] = [
        {"params": {**query, "u": "anyone", "p": org.admin}},
        {"params": query, "auth": ("anyone", org.admin)},
        {"params": query, "headers": {"Authorization": f"Token {org.admin}"}},
    ]
    for i, way in enumerate(ways):
        reply = await client.post(url, content=f"cred v={i} {T0 + i}", **way)
        assert reply.status_code == 204, reply.text
    assert len(await points(client, org, "cred", "v")) == 3
    for way in (
        {"params": query},
        {"params": {**query, "u": "x", "p": "sb_knope_nope"}},
        {"params": query, "headers": {"Authorization": "Token wrong"}},
    ):
        reply = await client.post(url, content="cred v=9", **way)
        assert reply.status_code == 401
        assert reply.json() == {"error": "authorization failed"}
    reply = await client.post(
        f"/api/v2/write?bucket={org.bucket}", content="cred v=9", headers=auth("wrong")
    )
    assert reply.status_code == 401
    assert reply.json() == {"code": "unauthorized", "message": "unauthorized access"}


async def test_tenancy_and_scopes(client: httpx.AsyncClient, org: Org, other_org: Org) -> None:
    """Another organisation's bucket answers exactly as a bucket that does not exist; a key
    without data:write is refused with 403; a key limited to another bucket too."""
    token = {"Authorization": f"Token {org.admin}"}
    for bucket in (other_org.bucket, "does-not-exist"):
        for body in ("m v=1", ""):  # an empty 1.x write still looks the database up
            reply = await client.post(f"/write?db={bucket}", content=body, headers=token)
            assert (reply.status_code, reply.json()) == (
                404,
                {"error": f'database not found: "{bucket}"'},
            )
        reply = await client.post(f"/api/v2/write?bucket={bucket}", content="m v=1", headers=token)
        assert (reply.status_code, reply.json()) == (
            404,
            {"code": "not found", "message": f'bucket "{bucket}" not found'},
        )
    reply = await client.post(
        f"/api/v2/write?bucket={org.bucket}&org={other_org.key}", content="m v=1", headers=token
    )
    assert reply.status_code == 404
    assert reply.json()["message"] == f'organization name "{other_org.key}" not found'
    reply = await client.post(
        f"/api/v2/write?bucket={org.bucket}&org={org.key}", content=f"m v=1 {T0}", headers=token
    )
    assert reply.status_code == 204, reply.text
    reader = await org.new_key(client, ["data:read"])
    for body in ("m v=1", ""):
        reply = await client.post(
            "/write", content=body, params={"db": org.bucket, "p": reader["key"]}
        )
        assert reply.status_code == 403 and "data:write" in reply.json()["error"]
    reply = await client.post("/v1/buckets", json={"key": "second"}, headers=org.headers)
    limited = await org.new_key(client, ["data:write"], bucket="second")
    reply = await client.post(
        f"/api/v2/write?bucket={org.bucket}",
        content="m v=1",
        headers={"Authorization": f"Token {limited['key']}"},
    )
    assert reply.status_code == 403 and reply.json()["code"] == "forbidden"
    reply = await client.post(f"/write?db={org.bucket}&p={limited['key']}", content="")
    assert reply.status_code == 403, reply.text
    # Nothing reached the other organisation.
    reply = await client.get(f"/v1/buckets/{other_org.bucket}/sources", headers=other_org.headers)
    assert reply.json()["sources"] == []


async def test_limits_gzip_and_empty_bodies(
    client: httpx.AsyncClient, org: Org, services: Services
) -> None:
    token = {"Authorization": f"Token {org.admin}"}
    reply = await client.post(
        f"/write?db={org.bucket}&precision=s",
        content=gzip.compress(SAMPLE),
        headers={**token, "Content-Encoding": "gzip"},
    )
    assert reply.status_code == 204, reply.text
    assert [v for _, v in await points(client, org, "mem,host=host1", "used_percent")] == [
        23.43234543
    ]
    reply = await client.post(
        f"/write?db={org.bucket}",
        content=b"\x1f\x8b broken",
        headers={**token, "Content-Encoding": "gzip"},
    )
    assert reply.status_code == 400 and "gzip" in reply.json()["error"]
    big = b"m v=1\n" * (services.settings.max_body_bytes // 6 + 1)
    reply = await client.post(f"/api/v2/write?bucket={org.bucket}", content=big, headers=token)
    assert reply.status_code == 413 and reply.json()["code"] == "request too large"
    reply = await client.post(f"/write?db={org.bucket}", content=b"", headers=token)
    assert reply.status_code == 204, reply.text  # influxd 1.6.7 and 1.8 alike
    reply = await client.post(f"/write?db={org.bucket}", content=b"\n\n", headers=token)
    assert reply.status_code == 204, reply.text
    reply = await client.post(f"/api/v2/write?bucket={org.bucket}", content=b"", headers=token)
    assert reply.status_code == 400 and reply.json()["message"] == "writing requires points"
    paths = (await client.get("/openapi.json")).json()["paths"]  # and the document says so
    assert paths["/write"]["post"]["requestBody"]["required"] is False
    assert paths["/api/v2/write"]["post"]["requestBody"]["required"] is True
    reply = await client.post(f"/write?db={org.bucket}", content=b"\x1b\xff", headers=token)
    assert reply.status_code == 400  # a control byte in the line, none in the header
    assert reply.headers["X-Influxdb-Error"] == "line 1: missing fields ('??')"
    reply = await client.post(f"/api/v2/write?bucket={org.bucket}", content=b"\n", headers=token)
    assert reply.status_code == 400 and reply.json()["message"] == "writing requires points"
    reply = await client.post("/write", content=b"m v=1", headers=token)
    assert reply.status_code == 400 and reply.json() == {"error": "database is required"}
    long_key = "m,t=" + "x" * 200
    reply = await client.post(
        f"/write?db={org.bucket}&precision=s", content=f"{long_key} v=1 {T0}", headers=token
    )
    assert reply.status_code == 400
    assert reply.json()["error"].startswith("line 1: series key: 'm,t=xxx")
    assert "must be at most 200 characters (got 204)" in reply.json()["error"]


async def test_ping_and_health(client: httpx.AsyncClient) -> None:
    for method in ("GET", "HEAD"):
        reply = await client.request(method, "/ping")
        assert reply.status_code == 204
        assert reply.headers["X-Influxdb-Version"] == "1.8.10"
        assert reply.headers["X-Influxdb-Build"] == "OSS"
    reply = await client.get("/ping?verbose=true")
    assert (reply.status_code, reply.json()) == (200, {"version": "1.8.10"})
    reply = await client.get("/health")
    assert reply.status_code == 200
    assert reply.json()["status"] == "pass"
    assert reply.json()["message"] == "ready for queries and writes"
