"""`GET|POST /query` over HTTP on both backends: every SHOW, raw and aggregate SELECTs, GROUP BY
time and tags, each fill, LIMIT/SLIMIT, several statements, errors, credentials and tenancy.

The data (`farm`) is the same as was written to InfluxDB 1.6.7 on this machine as line protocol;
the expected answers are InfluxDB's own answers to the same queries (taken by hand from a
scratch influxd, epoch=s), so these tests pin InfluxDB's behaviour, not ours."""

from __future__ import annotations

import asyncio
import base64
import urllib.parse
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from influxdb import InfluxDBClient
from influxdb.exceptions import InfluxDBClientError

from tests.conftest import Org, auth, make_org
from tests.live import live_server

T0 = 1_577_836_800  # 2020-01-01T00:00:00Z


def influx_meta(measurement: str, tags: dict[str, str]) -> dict[str, Any]:
    return {"influx": {"measurement": measurement, "tags": tags}}


async def load_farm(client: httpx.AsyncClient, org: Org) -> None:
    """cpu,host=a,region=eu value=i,idle=100-i every 10 min (12 points); cpu,host=b,region=us
    value=10+i every 20 min from 00:05 (6 points); mem (a source without influx meta) value=i
    every 30 min (3 points)."""
    for key, tags in (
        ("cpu,host=a,region=eu", {"host": "a", "region": "eu"}),
        ("cpu,host=b,region=us", {"host": "b", "region": "us"}),
    ):
        reply = await client.post(
            f"/v1/buckets/{org.bucket}/sources",
            json={"key": key, "meta": influx_meta("cpu", tags)},
            headers=org.headers,
        )
        assert reply.status_code == 201, reply.text
    points = [
        {"source": "cpu,host=a,region=eu", "fields": {"value": i, "idle": 100 - i},
         "time": T0 + i * 600}
        for i in range(12)
    ]  # fmt: skip
    points += [
        {"source": "cpu,host=b,region=us", "field": "value", "value": 10 + i,
         "time": T0 + 300 + i * 1200}
        for i in range(6)
    ]  # fmt: skip
    points += [
        {"source": "mem", "field": "value", "value": i, "time": T0 + i * 1800} for i in range(3)
    ]
    reply = await client.post(
        "/v1/write?precision=s", json={"bucket": org.bucket, "points": points}, headers=org.headers
    )
    assert reply.status_code == 200, reply.text


@pytest.fixture
async def farm(client: httpx.AsyncClient, org: Org) -> Org:
    await load_farm(client, org)
    return org


def token(org: Org) -> dict[str, str]:
    return {"Authorization": f"Token {org.admin}"}


async def influxql(
    client: httpx.AsyncClient, org: Org, q: str, epoch: str | None = "s", **params: str
) -> Any:
    query = {"db": org.bucket, "q": q, **params}
    if epoch:
        query["epoch"] = epoch
    reply = await client.get("/query", params=query, headers=token(org))
    assert reply.status_code == 200, reply.text
    assert reply.headers["content-type"] == "application/json"
    return reply.json()


async def series(client: httpx.AsyncClient, org: Org, q: str, **params: str) -> Any:
    body = await influxql(client, org, q, **params)
    (result,) = body["results"]
    assert "error" not in result, result
    return result.get("series", [])


async def test_show_statements(client: httpx.AsyncClient, farm: Org) -> None:
    assert await series(client, farm, "SHOW DATABASES") == [
        {"name": "databases", "columns": ["name"], "values": [["farm"]]}
    ]
    assert await series(client, farm, "SHOW MEASUREMENTS") == [
        {"name": "measurements", "columns": ["name"], "values": [["cpu"], ["mem"]]}
    ]
    assert await series(client, farm, "SHOW MEASUREMENTS WITH MEASUREMENT =~ /^m/ LIMIT 1") == [
        {"name": "measurements", "columns": ["name"], "values": [["mem"]]}
    ]
    assert await series(client, farm, "SHOW TAG KEYS") == [
        {"name": "cpu", "columns": ["tagKey"], "values": [["host"], ["region"]]}
    ]
    assert await series(client, farm, 'SHOW TAG VALUES WITH KEY = "host"') == [
        {"name": "cpu", "columns": ["key", "value"], "values": [["host", "a"], ["host", "b"]]}
    ]
    assert await series(
        client, farm, "SHOW TAG VALUES FROM cpu WITH KEY IN (host, region) WHERE region = 'us'"
    ) == [{"name": "cpu", "columns": ["key", "value"], "values": [["host", "b"], ["region", "us"]]}]
    assert await series(client, farm, "SHOW TAG VALUES WITH KEY =~ /reg/") == [
        {"name": "cpu", "columns": ["key", "value"], "values": [["region", "eu"], ["region", "us"]]}
    ]
    assert await series(client, farm, "SHOW FIELD KEYS") == [
        {"name": "cpu", "columns": ["fieldKey", "fieldType"],
         "values": [["idle", "float"], ["value", "float"]]},
        {"name": "mem", "columns": ["fieldKey", "fieldType"], "values": [["value", "float"]]},
    ]  # fmt: skip
    assert await series(client, farm, "SHOW SERIES") == [
        {"columns": ["key"],
         "values": [["cpu,host=a,region=eu"], ["cpu,host=b,region=us"], ["mem"]]}
    ]  # fmt: skip
    assert await series(client, farm, "SHOW SERIES FROM cpu WHERE host =~ /b/") == [
        {"columns": ["key"], "values": [["cpu,host=b,region=us"]]}
    ]
    assert await series(client, farm, "SHOW RETENTION POLICIES") == [
        {"columns": ["name", "duration", "shardGroupDuration", "replicaN", "default"],
         "values": [["autogen", "0s", "168h0m0s", 1, True]]}
    ]  # fmt: skip


async def test_raw_selects(client: httpx.AsyncClient, farm: Org) -> None:
    assert await series(client, farm, "SELECT * FROM cpu LIMIT 3") == [
        {"name": "cpu", "columns": ["time", "host", "idle", "region", "value"],
         "values": [[T0, "a", 100, "eu", 0], [T0 + 300, "b", None, "us", 10],
                    [T0 + 600, "a", 99, "eu", 1]]}
    ]  # fmt: skip
    assert await series(client, farm, "SELECT value, host FROM cpu ORDER BY time DESC LIMIT 2") == [
        {"name": "cpu", "columns": ["time", "value", "host"],
         "values": [[T0 + 6600, 11, "a"], [T0 + 6300, 15, "b"]]}
    ]  # fmt: skip
    assert await series(client, farm, "SELECT value FROM cpu, mem LIMIT 1") == [
        {"name": "cpu", "columns": ["time", "value"], "values": [[T0, 0]]},
        {"name": "mem", "columns": ["time", "value"], "values": [[T0, 0]]},
    ]
    found = await series(client, farm, "SELECT value AS v, value * 2 FROM cpu WHERE host = 'b'")
    assert found[0]["columns"] == ["time", "v", "value"]
    assert found[0]["values"][:2] == [[T0 + 300, 10, 20], [T0 + 1500, 11, 22]]
    assert await series(client, farm, "SELECT value FROM cpu LIMIT 2 OFFSET 16") == [
        {"name": "cpu", "columns": ["time", "value"], "values": [[T0 + 6300, 15], [T0 + 6600, 11]]}
    ]


async def test_tag_conditions(client: httpx.AsyncClient, farm: Org) -> None:
    async def hosts(condition: str) -> list[str]:
        found = await series(client, farm, f"SELECT count(value) FROM cpu WHERE {condition} "
                             "GROUP BY host")  # fmt: skip
        return [s["tags"]["host"] for s in found]

    assert await hosts("host = 'a'") == ["a"]
    assert await hosts("host != 'a'") == ["b"]
    assert await hosts('"host" =~ /^(a|b)$/') == ["a", "b"]
    assert await hosts("host !~ /a/") == ["b"]
    assert await hosts("(host = 'a' OR region = 'us') AND time >= 0") == ["a", "b"]
    assert await hosts("host = 'a' AND region = 'us'") == []
    assert await hosts("missing = ''") == ["a", "b"]  # a tag a series lacks is ''


async def test_group_by_time_and_fill(client: httpx.AsyncClient, farm: Org) -> None:
    window = "time >= '2020-01-01T00:00:00Z' AND time < '2020-01-01T03:00:00Z'"
    found = await series(client, farm, f"SELECT mean(value), count(value) FROM cpu WHERE "
                         f"{window} GROUP BY time(30m), host fill(null)")  # fmt: skip
    assert found == [
        {"name": "cpu", "tags": {"host": "a"}, "columns": ["time", "mean", "count"],
         "values": [[T0, 1, 3], [T0 + 1800, 4, 3], [T0 + 3600, 7, 3], [T0 + 5400, 10, 3],
                    [T0 + 7200, None, 0], [T0 + 9000, None, 0]]},
        {"name": "cpu", "tags": {"host": "b"}, "columns": ["time", "mean", "count"],
         "values": [[T0, 10.5, 2], [T0 + 1800, 12, 1], [T0 + 3600, 13.5, 2], [T0 + 5400, 15, 1],
                    [T0 + 7200, None, 0], [T0 + 9000, None, 0]]},
    ]  # fmt: skip

    async def fill(how: str, group: str = "time(30m)") -> list[Any]:
        q = f"SELECT mean(value) FROM cpu WHERE {window} GROUP BY {group} fill({how})"
        return [row[1:] for row in (await series(client, farm, q))[0]["values"]]

    assert await fill("linear") == [[4.8], [6], [9.6], [11.25], [None], [None]]
    assert await fill("none") == [[4.8], [6], [9.6], [11.25]]
    assert await fill("previous") == [[4.8], [6], [9.6], [11.25], [11.25], [11.25]]
    assert await fill("-1") == [[4.8], [6], [9.6], [11.25], [-1], [-1]]
    found = await series(client, farm, f"SELECT mean(value) FROM cpu WHERE {window} "
                         "GROUP BY time(1h, 15m) fill(previous)")  # fmt: skip
    assert found[0]["values"] == [
        [T0 - 2700, pytest.approx(3.6666666666666665)], [T0 + 900, 7],
        [T0 + 4500, pytest.approx(11.166666666666666)],
        [T0 + 8100, pytest.approx(11.166666666666666)],
    ]  # fmt: skip
    # The first interval is the one holding the lower bound, labelled by its own start.
    found = await series(client, farm, "SELECT count(value) FROM cpu WHERE time >= "
                         "'2020-01-01T00:10:00Z' AND time < '2020-01-01T01:00:00Z' "
                         "GROUP BY time(30m)")  # fmt: skip
    assert found[0]["values"] == [[T0, 3], [T0 + 1800, 4]]


async def test_functions(client: httpx.AsyncClient, farm: Org) -> None:
    found = await series(client, farm, "SELECT median(value), percentile(value, 90), "
                         "stddev(value), spread(value) FROM cpu WHERE time >= 1577836800000ms "
                         "and time <= 1577844000000ms GROUP BY time(1h)")  # fmt: skip
    assert found == [
        {"name": "cpu", "columns": ["time", "median", "percentile", "stddev", "spread"],
         "values": [[T0, 4, 11, pytest.approx(4.527692569068709), 12],
                    [T0 + 3600, 10, 14, pytest.approx(3.162277660168379), 9],
                    [T0 + 7200, None, None, None, None]]}
    ]  # fmt: skip
    # host a: value i at i x 10 min; the line joining them is cut at 01:00 (value 6 there).
    found = await series(client, farm, "SELECT integral(value, 1h), integral(value) FROM cpu "
                         "WHERE host = 'a' AND time >= 1577836800000ms and time < 1577844000000ms "
                         "GROUP BY time(1h)")  # fmt: skip
    assert found[0]["columns"] == ["time", "integral", "integral_1"]
    assert found[0]["values"] == [
        [T0, pytest.approx(3.0), pytest.approx(3.0 * 3600)],
        [T0 + 3600, pytest.approx(8.5 * 3000 / 3600), pytest.approx(8.5 * 3000)],
    ]
    found = await series(client, farm, "SELECT integral(value, 30m) FROM cpu WHERE host = 'a'")
    assert found[0]["values"] == [[0, pytest.approx(5.5 * 6600 / 1800)]]
    single = {
        "SELECT max(value) FROM cpu": [T0 + 6300, 15],  # a lone selector: its point's time
        "SELECT first(value) FROM cpu": [T0, 0],
        "SELECT percentile(value, 50) FROM cpu": [T0 + 4800, 8],
        "SELECT max(value), min(value) FROM cpu": [0, 15, 0],
        "SELECT mean(value) FROM cpu": [0, pytest.approx(7.833333333333333)],
        "SELECT sum(value), last(value), count(idle) FROM cpu": [0, 141, 11, 12],
    }
    for q, row in single.items():
        assert (await series(client, farm, q))[0]["values"] == [row], q
    found = await series(client, farm, "SELECT mean(value) * 2, mean(value) FROM cpu "
                         "WHERE time < '2020-01-01T01:00:00Z'")  # fmt: skip
    assert found[0]["columns"] == ["time", "mean", "mean_1"]
    assert found[0]["values"] == [[0, pytest.approx(10.666666666666666), pytest.approx(5.3333333)]]
    # No lower bound: from the interval of the earliest point, to now.
    found = await series(client, farm, "SELECT mean(value) FROM cpu GROUP BY time(1h) fill(none)")
    assert found[0]["values"] == [[T0, pytest.approx(5.333333333333333)],
                                  [T0 + 3600, pytest.approx(10.333333333333334)]]  # fmt: skip


async def test_slimit_soffset_and_group_by_star(client: httpx.AsyncClient, farm: Org) -> None:
    found = await series(client, farm, "SELECT mean(value) FROM cpu WHERE time >= 0 "
                         "GROUP BY * SLIMIT 1")  # fmt: skip
    assert found == [{"name": "cpu", "tags": {"host": "a", "region": "eu"},
                      "columns": ["time", "mean"], "values": [[0, 5.5]]}]  # fmt: skip
    found = await series(client, farm, "SELECT last(value) FROM cpu GROUP BY host SOFFSET 1")
    assert [s["tags"] for s in found] == [{"host": "b"}]


async def test_times_and_epochs(client: httpx.AsyncClient, farm: Org) -> None:
    q = "SELECT value FROM mem WHERE time > now() - 100000d LIMIT 2"
    rfc = await influxql(client, farm, q, epoch=None)
    assert rfc["results"][0]["series"][0]["values"] == [
        ["2020-01-01T00:00:00Z", 0], ["2020-01-01T00:30:00Z", 1]
    ]  # fmt: skip
    for epoch, scale in (("ns", 10**9), ("u", 10**6), ("ms", 1000), ("s", 1)):
        body = await influxql(client, farm, q, epoch=epoch)
        assert body["results"][0]["series"][0]["values"][1][0] == (T0 + 1800) * scale
    body = await influxql(client, farm, q, epoch="m")
    assert body["results"][0]["series"][0]["values"][1][0] == (T0 + 1800) // 60
    for bound in ("time >= '2020-01-01T00:30:00Z'", "time > 1577838599999999999",
                  "time >= 1577838600s", "time >= '2020-01-01 00:30:00'"):  # fmt: skip
        found = await series(client, farm, f"SELECT value FROM mem WHERE {bound}")
        assert [row[0] for row in found[0]["values"]] == [T0 + 1800, T0 + 3600], bound


async def test_several_statements(client: httpx.AsyncClient, farm: Org) -> None:
    body = await influxql(client, farm, "SELECT mean(value) FROM nope; SELECT max(value) FROM cpu")
    assert body == {"results": [
        {"statement_id": 0},
        {"statement_id": 1, "series": [{"name": "cpu", "columns": ["time", "max"],
                                        "values": [[T0 + 6300, 15]]}]},
    ]}  # fmt: skip
    # A statement that fails ends the query, as in InfluxDB.
    body = await influxql(client, farm, "SHOW DATABASES; SELECT foo(value) FROM cpu; SHOW SERIES")
    assert [r["statement_id"] for r in body["results"]] == [0, 1]
    assert body["results"][1]["error"] == "undefined function foo()"


async def test_post_form_and_credentials(client: httpx.AsyncClient, farm: Org) -> None:
    form = {"db": farm.bucket, "q": "SHOW MEASUREMENTS"}
    basic = base64.b64encode(f"anyone:{farm.admin}".encode()).decode()
    for headers, params in (
        ({"Authorization": f"Basic {basic}"}, {}),
        ({}, {"u": "anyone", "p": farm.admin}),
        (token(farm), {}),
        (auth(farm.admin), {}),
    ):
        reply = await client.post("/query", data=form, params=params, headers=headers)
        assert reply.status_code == 200, reply.text
        assert reply.json()["results"][0]["series"][0]["values"] == [["cpu"], ["mem"]]
    for headers, params in (
        ({}, {}),
        ({"Authorization": "Token sb_k0_wrong"}, {}),
        ({}, {"u": "x", "p": "nope"}),
        ({"Authorization": "Basic !!!"}, {}),
    ):
        reply = await client.get("/query", params={**form, **params}, headers=headers)
        assert reply.status_code == 401
        assert reply.json() == {"error": "authorization failed"}


async def test_errors(client: httpx.AsyncClient, farm: Org) -> None:
    reply = await client.get(
        "/query", params={"db": farm.bucket, "q": "SELEC 1"}, headers=token(farm)
    )
    assert reply.status_code == 400
    assert reply.json() == {
        "error": "error parsing query: found SELEC, expected SELECT, SHOW, CREATE at line 1, char 1"
    }
    reply = await client.get("/query", params={"db": farm.bucket}, headers=token(farm))
    assert reply.status_code == 400
    assert reply.json() == {"error": 'missing required parameter "q"'}
    statement_errors = {
        "SELECT mean(value), value FROM cpu": "mixing aggregate and non-aggregate queries",
        "SELECT value FROM cpu WHERE value > 3": "conditions on field values are not supported",
        "SELECT value FROM cpu GROUP BY time(1h)": "GROUP BY requires at least one aggregate",
        "SELECT percentile(value) FROM cpu": "invalid number of arguments for percentile",
        "SELECT integral(value, 5) FROM cpu": "second argument to integral must be a duration",
        "SELECT value FROM cpu WHERE host =~ /(/": "invalid regex",
        "SELECT value FROM cpu WHERE time > 'yesterday'": "invalid time",
        "SELECT mean(value) FROM cpu WHERE time > 0 GROUP BY time(1s)": "result limit",
        "SELECT value FROM cpu tz('Europe/Paris')": "tz() other than UTC",
    }
    for q, message in statement_errors.items():
        body = await influxql(client, farm, q)
        assert message in body["results"][0]["error"], q
    body = await influxql(client, farm, "SHOW MEASUREMENTS", db="")
    assert body["results"][0]["error"] == "database name required"
    body = await influxql(client, farm, "SHOW MEASUREMENTS", db="nowhere")
    assert body["results"][0]["error"] == "database not found: nowhere"


async def test_another_organisation_sees_nothing(
    client: httpx.AsyncClient, farm: Org, other_org: Org
) -> None:
    """globex's key names acme's bucket: not found, exactly as a bucket that does not exist."""
    for q in ("SHOW MEASUREMENTS", "SHOW SERIES", "SELECT * FROM cpu", "SHOW TAG KEYS"):
        body = await influxql(client, other_org, q, db=farm.bucket)
        assert body["results"][0] == {
            "statement_id": 0,
            "error": f"database not found: {farm.bucket}",
        }
        body = await influxql(client, other_org, f'SELECT * FROM "{farm.bucket}".."cpu"')
        assert "error" in body["results"][0] or "series" not in body["results"][0]
    assert await series(client, other_org, "SHOW DATABASES") == [
        {"name": "databases", "columns": ["name"], "values": [[other_org.bucket]]}
    ]


async def test_bucket_limited_and_write_only_keys(client: httpx.AsyncClient, farm: Org) -> None:
    reply = await client.post("/v1/buckets", json={"key": "barn"}, headers=farm.headers)
    assert reply.status_code == 201
    limited = await farm.new_key(client, ["data:read"], bucket="barn")
    headers = {"Authorization": f"Token {limited['key']}"}
    reply = await client.get("/query", params={"db": "farm", "q": "SHOW SERIES"}, headers=headers)
    assert reply.status_code == 403
    assert "error" in reply.json()
    reply = await client.get("/query", params={"q": "SHOW DATABASES"}, headers=headers)
    assert reply.json()["results"][0]["series"][0]["values"] == [["barn"]]
    writer = await farm.new_key(client, ["data:write"])
    reply = await client.get(
        "/query",
        params={"db": "farm", "q": "SHOW SERIES"},
        headers={"Authorization": f"Token {writer['key']}"},
    )
    assert reply.status_code == 403


async def test_create_database(client: httpx.AsyncClient, farm: Org, other_org: Org) -> None:
    """Telegraf sends CREATE DATABASE at start: a no-op for a bucket the key can use, a new
    bucket for an admin key, refused for others and on GET; another organisation's bucket of
    the same name is neither seen nor touched."""

    async def create(org_key: str, name: str, method: str = "POST") -> dict[str, Any]:
        reply = await client.request(
            method,
            "/query",
            params={"q": f'CREATE DATABASE "{name}"'},
            headers={"Authorization": f"Token {org_key}"},
        )
        assert reply.status_code == 200, reply.text
        result: dict[str, Any] = reply.json()["results"][0]
        return result

    writer = await farm.new_key(client, ["data:write"])
    assert await create(writer["key"], farm.bucket) == {"statement_id": 0}
    refused = await create(writer["key"], "barn")
    assert "requires admin privilege" in refused["error"]
    assert (await create(farm.admin, "barn", "GET"))["error"].endswith(
        "needs a POST request: a GET runs SELECT and SHOW only"
    )
    assert await create(farm.admin, "barn") == {"statement_id": 0}
    assert await create(farm.admin, "barn") == {"statement_id": 0}  # there already: a no-op
    assert "series" not in await influxql(client, farm, "SELECT * FROM cpu", db="barn")
    assert await create(other_org.admin, farm.bucket) == {"statement_id": 0}
    mine = await series(client, other_org, "SHOW DATABASES")
    assert mine[0]["values"] == [[farm.bucket], [other_org.bucket]]
    body = await influxql(client, other_org, "SELECT * FROM cpu", db=farm.bucket)
    assert body["results"][0] == {"statement_id": 0}  # its own new bucket: empty
    reply = await client.get(f"/v1/buckets/{farm.bucket}/sources", headers=farm.headers)
    assert reply.status_code == 200 and reply.json()["total"] >= 3  # acme's untouched


# --- InfluxData's own 1.x client and Grafana's requests, against a real server ---------------

GRAFANA_PANEL = (
    'SELECT mean("value") FROM "cpu" WHERE ("host" =~ /^(a|b)$/) AND time >= 1577836800000ms '
    'and time <= 1577843999999ms GROUP BY time(30m), "host" fill(null)'
)


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Org, Org]]:
    """A real server (uvicorn) holding `farm` in acme's bucket, and globex, a second
    organisation with its own bucket."""
    data = tmp_path_factory.mktemp("influx-live") / "data"
    data.mkdir()
    with live_server(data, SENSORBASE_RATE_LIMIT="") as server:
        assert server.key is not None

        async def setup() -> tuple[Org, Org]:
            async with httpx.AsyncClient(base_url=server.url) as http:
                acme = await make_org(http, server.key or "", "acme", "farm")
                globex = await make_org(http, server.key or "", "globex", "plant")
                await load_farm(http, acme)
                return acme, globex

        acme, globex = asyncio.run(setup())
        yield server.url, acme, globex


def influx_client(url: str, password: str, database: str = "farm") -> InfluxDBClient:
    parts = urllib.parse.urlsplit(url)
    return InfluxDBClient(
        parts.hostname, parts.port, username="grafana", password=password, database=database
    )


def test_influxdb_client_reads(live: tuple[str, Org, Org]) -> None:
    url, acme, _ = live
    client = influx_client(url, acme.admin)
    assert client.get_list_database() == [{"name": "farm"}]
    assert client.get_list_measurements() == [{"name": "cpu"}, {"name": "mem"}]
    result = client.query(GRAFANA_PANEL, epoch="ms")
    assert list(result.get_points(tags={"host": "b"})) == [
        {"time": T0 * 1000, "mean": 10.5}, {"time": (T0 + 1800) * 1000, "mean": 12},
        {"time": (T0 + 3600) * 1000, "mean": 13.5}, {"time": (T0 + 5400) * 1000, "mean": 15},
    ]  # fmt: skip
    assert len(list(result.get_points(tags={"host": "a"}))) == 4
    raw = client.query("SELECT value, idle FROM cpu WHERE host = 'a' LIMIT 2")
    assert list(raw.get_points()) == [
        {"time": "2020-01-01T00:00:00Z", "value": 0, "idle": 100},
        {"time": "2020-01-01T00:10:00Z", "value": 1, "idle": 99},
    ]
    many = client.query('SHOW TAG KEYS; SHOW TAG VALUES WITH KEY = "host"')
    assert [list(r.get_points()) for r in many] == [
        [{"tagKey": "host"}, {"tagKey": "region"}],
        [{"key": "host", "value": "a"}, {"key": "host", "value": "b"}],
    ]
    with pytest.raises(InfluxDBClientError, match="undefined function"):
        client.query("SELECT nope(value) FROM cpu")
    with pytest.raises(InfluxDBClientError, match="error parsing query"):
        client.query("SELECT FROM")
    client.create_database("farm")  # as Telegraf and the 1.x clients do: there already


def test_influxdb_client_refused(live: tuple[str, Org, Org]) -> None:
    url, _, globex = live
    with pytest.raises(InfluxDBClientError) as refused:
        influx_client(url, "sb_kdeadbeef_wrong").query("SHOW DATABASES")
    assert refused.value.code == 401
    other = influx_client(url, globex.admin)
    assert other.get_list_database() == [{"name": "plant"}]
    with pytest.raises(InfluxDBClientError, match="database not found: farm"):
        other.query("SELECT * FROM cpu")


def test_grafana_requests(live: tuple[str, Org, Org]) -> None:
    """As Grafana's InfluxQL data source sends them: GET with epoch=ms, user and password as
    u/p (older Grafana) or Basic auth, or a Token header (custom HTTP header)."""
    url, acme, _ = live
    basic = base64.b64encode(f"grafana:{acme.admin}".encode()).decode()
    for headers, extra in (
        ({}, {"u": "grafana", "p": acme.admin}),
        ({"Authorization": f"Basic {basic}"}, {}),
        ({"Authorization": f"Token {acme.admin}"}, {}),
    ):
        reply = httpx.get(
            f"{url}/query",
            params={"db": "farm", "q": GRAFANA_PANEL, "epoch": "ms", **extra},
            headers=headers,
        )
        assert reply.status_code == 200, reply.text
        (result,) = reply.json()["results"]
        assert [s["tags"] for s in result["series"]] == [{"host": "a"}, {"host": "b"}]
        assert result["series"][0]["values"][0] == [T0 * 1000, 1]
        reply = httpx.get(
            f"{url}/query",
            params={"db": "farm", "q": 'SHOW TAG VALUES WITH KEY = "host"', **extra},
            headers=headers,
        )
        assert reply.json()["results"][0]["series"][0]["values"] == [["host", "a"], ["host", "b"]]
