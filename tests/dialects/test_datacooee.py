"""The Datacooee dialect over HTTP: the document's upload examples and fetch URLs verbatim,
every parameter spelling, the refusals, tenancy, and round trips with the native API."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from sensorbase.dialects import datacooee
from tests.conftest import Org

BASE = "/api/external/v1"
DOC_HOST = "http://cloud.mydata.management"
# The document's upload snippets (curl, Go, Python, Ruby, PHP) send exactly this body.
DOC_UPLOAD = (
    '{"data":{"type":"SensorData", "id": "null", "attributes": { "value": "12.5", '
    '"timestamp": "2020-10-13T14:02:39.489Z"}, "relationships": { "sensor": { "data": '
    '{ "type": "Sensor", "id": "senxxxxxxxxxx" }}}}}'
)
# The document's "JSON" template with its example values filled in (numbers unquoted).
DOC_TEMPLATE = {
    "data": {
        "type": "SensorData",
        "id": "null",
        "attributes": {
            "value": 12.5,
            "timestamp": "2020-10-13T14:02:39.489Z",
            "latitude": 40.730610,
            "longitude": -73.935242,
        },
        "relationships": {"sensor": {"data": {"type": "Sensor", "id": "senxxxxxxxxxx"}}},
    }
}
DOC_ECHO = {
    "data": {
        "type": "SensorData",
        "id": "123456789",
        "attributes": {"timestamp": "2020-10-13T14:02:39.489000Z", "value": "12.5"},
        "relationships": {"sensor": {"data": {"type": "Sensor", "id": "senxxxxxxxxxx"}}},
    }
}
DOC_URLS = [
    'http://cloud.mydata.management/api/external/v1/get_inputdata_by_inputs/?inputs_ids="senXXXX,senXXXY,senXXXZ"&timeperiod_start="2020-10-03 15:31:55"&timeperiod_finish="2020-11-03 15:31:55"&order_by="timestamp"&sort_by="desc"',  # noqa: E501
    'http://cloud.mydata.management/api/external/v1/get_latest_inputdata_by_inputs/?inputs_ids="senXXXX,senXXXY,senXXXZ"&timeperiod_last="5_days"&order_by="timestamp"&sort_by="desc"',
    'http://cloud.mydata.management/api/external/v1/get_statistics_inputdata_by_inputs/?inputs_ids="senXXXX,senXXXY,senXXXZ"&timeperiod_start="2020-10-03 15:31:55"&timeperiod_finish="2020-11-03 15:31:55"&aggregation_func="min,max,avg"',  # noqa: E501
    'http://cloud.mydata.management/api/external/v1/get_statistics_inputdata_by_inputs/?inputs_ids="senXXXX,senXXXY,senXXXZ"&timeperiod_last="5_days"&aggregation_func="min,max,avg"',
    'http://cloud.mydata.management/api/external/v1/get_inputdata_by_asset/?asset_id="67"&timeperiod_start="2020-10-03 15:31:55"&timeperiod_finish="2020-11-03 15:31:55"&order_by="timestamp"&sort_by="desc"',  # noqa: E501
    'http://cloud.mydata.management/api/external/v1/get_latest_inputdata_by_asset/?asset_id="67"&timeperiod_last="5_days"&order_by="timestamp"&sort_by="desc"',
    'http://cloud.mydata.management/api/external/v1/get_statistics_inputdata_by_asset/?asset_id="senXXXX,senXXXY,senXXXZ"&timeperiod_start="2020-10-03 15:31:55"&timeperiod_finish="2020-11-03 15:31:55"&aggregation_func="min,max,avg"',  # noqa: E501
    'http://cloud.mydata.management/api/external/v1/get_latest_statistics_inputdata_by_asset/?asset_id="67"&timeperiod_last="5_days"&aggregation_func="min,max,avg"',
]
DOC_INPUTS = ("senXXXX", "senXXXY", "senXXXZ")


def dc_headers(org: Org, key: str | None = None) -> dict[str, str]:
    """The document's headers, spelled as its curl example spells them."""
    return {
        "content-type": "application/vnd.api+json",
        "organization-id": org.key,
        "organization-api-key": key or org.admin,
    }


def local(url: str) -> str:
    return url.removeprefix(DOC_HOST)


async def make_input(
    client: httpx.AsyncClient,
    org: Org,
    key: str | None,
    name: str = "Boiler",
    unit: str | None = "°C",
    field: str = "value",
) -> dict[str, Any]:
    body: dict[str, Any] = {"name": name, "schema": {field: {"type": "number", "unit": unit}}}
    if key is not None:
        body["key"] = key
    reply = await client.post(f"/v1/buckets/{org.bucket}/sources", json=body, headers=org.headers)
    assert reply.status_code == 201, reply.text
    return dict(reply.json())


async def make_asset(
    client: httpx.AsyncClient, org: Org, name: str, sources: list[Any]
) -> dict[str, Any]:
    reply = await client.post(
        "/v1/groups", json={"name": name, "sources": sources}, headers=org.headers
    )
    assert reply.status_code == 201, reply.text
    return dict(reply.json())


def reading(input_id: str, value: Any, timestamp: str, **more: Any) -> dict[str, Any]:
    return {
        "data": {
            "type": "SensorData",
            "id": "null",
            "attributes": {"value": value, "timestamp": timestamp, **more},
            "relationships": {"sensor": {"data": {"type": "Sensor", "id": input_id}}},
        }
    }


async def upload(
    client: httpx.AsyncClient, org: Org, input_id: str, body: Any, key: str | None = None
) -> httpx.Response:
    content = body if isinstance(body, str | bytes) else json.dumps(body)
    return await client.post(
        f"{BASE}/inputs/{input_id}/inputdata/", content=content, headers=dc_headers(org, key)
    )


async def native_points(client: httpx.AsyncClient, org: Org, source: str) -> list[dict[str, Any]]:
    reply = await client.get(
        "/v1/query", params={"bucket": org.bucket, "source": source}, headers=org.headers
    )
    if reply.status_code == 404:
        return []
    assert reply.status_code == 200, reply.text
    return [p for s in reply.json()["series"] for p in s["points"]]


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def errors_of(reply: httpx.Response) -> list[dict[str, Any]]:
    assert reply.headers["content-type"].startswith("application/vnd.api+json")
    errors = reply.json()["errors"]
    for error in errors:
        assert error["status"] == str(reply.status_code)
        assert error["title"] and error["detail"]
    return list(errors)


# --- upload -----------------------------------------------------------------------------


def test_module_opens_with_the_vendor_sample() -> None:
    assert datacooee.__doc__ is not None and DOC_UPLOAD in datacooee.__doc__
    assert datacooee.SAMPLE_UPLOAD == DOC_UPLOAD


async def test_document_upload_example_is_stored_and_echoed(
    client: httpx.AsyncClient, org: Org
) -> None:
    await make_input(client, org, "senxxxxxxxxxx")
    reply = await upload(client, org, "senxxxxxxxxxx", DOC_UPLOAD)
    assert reply.status_code == 201, reply.text
    assert reply.headers["content-type"].startswith("application/vnd.api+json")
    echo = reply.json()
    assert echo["data"]["id"].isdigit()
    assert echo == {**DOC_ECHO, "data": {**DOC_ECHO["data"], "id": echo["data"]["id"]}}
    # the same reading again is the same resource (one reading per instant)
    again = await upload(client, org, "senxxxxxxxxxx", DOC_UPLOAD)
    assert again.status_code == 201 and again.json() == echo
    assert await native_points(client, org, "senxxxxxxxxxx") == [
        {"time": "2020-10-13T14:02:39.489000Z", "value": 12.5}
    ]


async def test_document_template_with_position(client: httpx.AsyncClient, org: Org) -> None:
    await make_input(client, org, "senxxxxxxxxxx")
    reply = await upload(client, org, "senxxxxxxxxxx", DOC_TEMPLATE)
    assert reply.status_code == 201, reply.text
    attributes = reply.json()["data"]["attributes"]
    assert attributes == {
        "timestamp": "2020-10-13T14:02:39.489000Z",
        "value": "12.5",
        "latitude": "40.73061",
        "longitude": "-73.935242",
    }
    assert await native_points(client, org, "senxxxxxxxxxx") == [
        {
            "time": "2020-10-13T14:02:39.489000Z",
            "value": 12.5,
            "latitude": 40.73061,
            "longitude": -73.935242,
        }
    ]


@pytest.mark.parametrize(
    ("path", "headers", "attributes", "expected"),
    [
        # no trailing slash, plain JSON, numbers as strings (the Definitions table's types)
        (
            "/inputs/senA/inputdata",
            {"Content-Type": "application/json"},
            {
                "value": "-3",
                "timestamp": "2020-10-13T14:02:39Z",
                "latitude": "40.5",
                "longitude": "-73.25",
            },
            {"value": -3.0, "latitude": 40.5, "longitude": -73.25},
        ),
        # the document's prose spells the header ORGANIZATION_ID; an offset other than Z
        (
            "/inputs/senA/inputdata/",
            {"ORGANIZATION_ID": "{org}"},
            {
                "value": 1e3,
                "timestamp": "2020-10-13T16:02:39.000+0200",
                "x_axis_value": 7,
                "metadata": {"batch": "b1"},
            },
            {"value": 1000.0, "x_axis_value": 7, "meta": {"batch": "b1"}},
        ),
        # quoted header values, naive timestamp (UTC), x_axis_data spelling, empty position
        (
            "/inputs/senA/inputdata/",
            {"ORGANIZATION-ID": '"{org}"'},
            {
                "value": ".5",
                "timestamp": "2020-10-13 14:02:39",
                "x_axis_data": "a",
                "latitude": "",
                "longitude": None,
            },
            {"value": 0.5, "x_axis_value": "a"},
        ),
    ],
)
async def test_upload_variants(
    client: httpx.AsyncClient,
    org: Org,
    path: str,
    headers: dict[str, str],
    attributes: dict[str, Any],
    expected: dict[str, Any],
) -> None:
    await make_input(client, org, "senA")
    sent = dc_headers(org)
    if "ORGANIZATION_ID" in headers or "ORGANIZATION-ID" in headers:
        del sent["organization-id"]
    sent.update({k: v.replace("{org}", org.key) for k, v in headers.items()})
    body = {"data": {"type": "SensorData", "attributes": attributes}}  # no relationships
    reply = await client.post(f"{BASE}{path}", json=body, headers=sent)
    assert reply.status_code == 201, reply.text
    assert reply.json()["data"]["attributes"]["timestamp"] == "2020-10-13T14:02:39.000000Z"
    [point] = await native_points(client, org, "senA")
    assert point == {"time": "2020-10-13T14:02:39.000000Z", **expected}


BAD_UPLOADS: list[tuple[str, Any, list[str]]] = [
    (
        "value with a comma",
        reading("senA", "12,5", "2020-10-13T14:02:39Z"),
        ["/data/attributes/value"],
    ),
    (
        "value with a space",
        reading("senA", " 12", "2020-10-13T14:02:39Z"),
        ["/data/attributes/value"],
    ),
    ("value NaN", reading("senA", "NaN", "2020-10-13T14:02:39Z"), ["/data/attributes/value"]),
    (
        "value infinite",
        reading("senA", "1e999", "2020-10-13T14:02:39Z"),
        ["/data/attributes/value"],
    ),
    ("value huge", reading("senA", 10**400, "2020-10-13T14:02:39Z"), ["/data/attributes/value"]),
    ("value boolean", reading("senA", True, "2020-10-13T14:02:39Z"), ["/data/attributes/value"]),
    ("value missing", reading("senA", None, "2020-10-13T14:02:39Z"), ["/data/attributes/value"]),
    ("timestamp missing", reading("senA", 1, None), ["/data/attributes/timestamp"]),
    ("timestamp prose", reading("senA", 1, "yesterday"), ["/data/attributes/timestamp"]),
    ("timestamp epoch", reading("senA", 1, 1602597759), ["/data/attributes/timestamp"]),
    (
        "timestamp too far ahead",
        reading("senA", 1, "2999-01-01T00:00:00Z"),
        ["/data/attributes/timestamp"],
    ),
    (
        "latitude word",
        reading("senA", 1, "2020-10-13T14:02:39Z", latitude="north", longitude=1),
        ["/data/attributes/latitude"],
    ),
    (
        "latitude out of range",
        reading("senA", 1, "2020-10-13T14:02:39Z", latitude=95, longitude=1),
        ["/data/attributes/latitude"],
    ),
    (
        "latitude alone",
        reading("senA", 1, "2020-10-13T14:02:39Z", latitude=45),
        ["/data/attributes/longitude"],
    ),
    (
        "metadata a list",
        reading("senA", 1, "2020-10-13T14:02:39Z", metadata=[1]),
        ["/data/attributes/metadata"],
    ),
    (
        "unknown attribute",
        reading("senA", 1, "2020-10-13T14:02:39Z", temperature=3),
        ["/data/attributes/temperature"],
    ),
    (
        "another input",
        reading("senB", 1, "2020-10-13T14:02:39Z"),
        ["/data/relationships/sensor/data/id"],
    ),
    (
        "wrong type",
        {
            "data": {
                "type": "Sensor",
                "attributes": {"value": 1, "timestamp": "2020-10-13T14:02:39Z"},
            }
        },
        ["/data/type"],
    ),
    ("no attributes", {"data": {"type": "SensorData"}}, ["/data/attributes"]),
    ("no data", {"value": 1}, ["/data"]),
    (
        "a list of readings",
        {"data": [reading("senA", 1, "2020-10-13T14:02:39Z")["data"]]},
        ["/data"],
    ),
    ("not JSON", '{"data": ', ["/"]),
    (
        "everything wrong at once",
        {
            "data": {
                "type": "SensorData",
                "attributes": {
                    "value": "x",
                    "timestamp": "y",
                    "latitude": "z",
                    "longitude": 1,
                    "w": 0,
                },
            }
        },
        [
            "/data/attributes/w",
            "/data/attributes/value",
            "/data/attributes/timestamp",
            "/data/attributes/latitude",
        ],
    ),
]


@pytest.mark.parametrize(("case", "body", "pointers"), BAD_UPLOADS, ids=[c[0] for c in BAD_UPLOADS])
async def test_bad_upload_names_every_member_and_stores_nothing(
    client: httpx.AsyncClient, org: Org, case: str, body: Any, pointers: list[str]
) -> None:
    await make_input(client, org, "senA")
    reply = await upload(client, org, "senA", body)
    assert reply.status_code == 400, reply.text
    errors = errors_of(reply)
    assert sorted(e["source"]["pointer"] for e in errors) == sorted(pointers)
    assert await native_points(client, org, "senA") == []


async def test_upload_to_unknown_input_is_404_and_creates_nothing(
    client: httpx.AsyncClient, org: Org
) -> None:
    reply = await upload(client, org, "senxxxxxxxxxx", DOC_UPLOAD)
    assert reply.status_code == 404
    [error] = errors_of(reply)
    assert "senxxxxxxxxxx" in error["detail"]
    found = await client.get(f"/v1/buckets/{org.bucket}/sources/senxxxxxxxxxx", headers=org.headers)
    assert found.status_code == 404


async def test_upload_to_a_source_with_two_fields_is_422(
    client: httpx.AsyncClient, org: Org
) -> None:
    body = {"key": "senTwo", "schema": {"a": {"type": "number"}, "b": {"type": "number"}}}
    reply = await client.post(f"/v1/buckets/{org.bucket}/sources", json=body, headers=org.headers)
    assert reply.status_code == 201
    reply = await upload(client, org, "senTwo", reading("senTwo", 1, "2020-10-13T14:02:39Z"))
    assert reply.status_code == 422
    assert "exactly one" in errors_of(reply)[0]["detail"]


# --- credentials and tenancy -------------------------------------------------------------


async def test_credentials(client: httpx.AsyncClient, org: Org, other_org: Org) -> None:
    await make_input(client, org, "senA")
    body = reading("senA", 1, "2020-10-13T14:02:39Z")
    url = f"{BASE}/inputs/senA/inputdata/"
    fetch = f"{BASE}/get_inputdata_by_inputs?inputs_ids=senA"

    async def both(headers: dict[str, str]) -> tuple[httpx.Response, httpx.Response]:
        return (
            await client.post(url, json=body, headers=headers),
            await client.get(fetch, headers=headers),
        )

    for headers in (
        {},
        {"ORGANIZATION-ID": org.key},
        {"ORGANIZATION-API-KEY": org.admin},
        {"ORGANIZATION-ID": org.key, "ORGANIZATION-API-KEY": "sb_kdeadbeef_nope"},
    ):
        for reply in await both(headers):
            assert reply.status_code == 401
            errors_of(reply)
    # another organisation's valid key, paired with this organisation's id or a made-up id:
    # the same answer, revealing nothing
    stranger = await both({"ORGANIZATION-ID": org.key, "ORGANIZATION-API-KEY": other_org.admin})
    made_up = await both({"ORGANIZATION-ID": "no-such-org", "ORGANIZATION-API-KEY": org.admin})
    for a, b in zip(stranger, made_up, strict=True):
        assert a.status_code == b.status_code == 401
        assert a.json() == b.json()
    # the other organisation, with its own credentials: acme's input is as absent as a ghost
    theirs = await both(dc_headers(other_org))
    ghost = (
        await client.post(
            f"{BASE}/inputs/senGhost/inputdata/",
            json=reading("senGhost", 1, "2020-10-13T14:02:39Z"),
            headers=dc_headers(other_org),
        ),
        await client.get(
            f"{BASE}/get_inputdata_by_inputs?inputs_ids=senGhost", headers=dc_headers(other_org)
        ),
    )
    for a, b in zip(theirs, ghost, strict=True):
        assert a.status_code == b.status_code == 404
        assert a.text.replace("senA", "X") == b.text.replace("senGhost", "X")
    # a read-only key may fetch but not upload
    reader = await org.new_key(client, ["data:read"])
    post, get = await both(dc_headers(org, reader["key"]))
    assert post.status_code == 403 and get.status_code == 200
    assert await native_points(client, org, "senA") == []


# --- fetch: the document's example URLs ----------------------------------------------------


@pytest.fixture
async def doc_world(client: httpx.AsyncClient, org: Org, other_org: Org) -> dict[str, Any]:
    """Inputs senXXXX, senXXXY, senXXXZ with readings in October 2020 and in the last days,
    gathered in asset 67 (groups 1..66 belong to another organisation)."""
    for unit, key in zip(("°C", "%", None), DOC_INPUTS, strict=True):
        await make_input(client, org, key, name=f"Input {key}", unit=unit)
    for n in range(66):
        await make_asset(client, other_org, f"other {n}", [])
    asset = await make_asset(client, org, "Boiler room", list(DOC_INPUTS))
    assert asset["id"] == 67
    now = datetime.now(UTC).replace(microsecond=0)
    recent = [now - timedelta(days=d) for d in (1, 2, 10)]
    old = [
        "2020-10-01T00:00:00Z",
        "2020-10-05T12:00:00Z",
        "2020-10-20T08:30:00.5Z",
        "2020-11-03T15:31:55Z",
        "2020-11-04T00:00:00Z",
    ]
    for i, key in enumerate(DOC_INPUTS):
        for j, ts in enumerate(old):
            reply = await upload(client, org, key, reading(key, f"{10 * i + j}.5", ts))
            assert reply.status_code == 201, reply.text
        for j, moment in enumerate(recent):
            reply = await upload(client, org, key, reading(key, 100 * (i + 1) + j, iso(moment)))
            assert reply.status_code == 201, reply.text
    return {"recent": [iso(m) for m in recent]}


def block(key: str, unit: str | None, data: list[dict[str, Any]]) -> dict[str, Any]:
    return {"input": {"id": key, "name": f"Input {key}", "measure_unit": unit}, "inputdata": data}


UNITS = dict(zip(DOC_INPUTS, ("°C", "%", None), strict=True))


def range_blocks() -> list[dict[str, Any]]:
    """What URL 1 returns: October 5 to November 3 15:31:55 inclusive, newest first."""
    out = []
    for i, key in enumerate(DOC_INPUTS):
        data = [
            {"timestamp": "2020-11-03T15:31:55.000000Z", "value": f"{10 * i + 3}.5"},
            {"timestamp": "2020-10-20T08:30:00.500000Z", "value": f"{10 * i + 2}.5"},
            {"timestamp": "2020-10-05T12:00:00.000000Z", "value": f"{10 * i + 1}.5"},
        ]
        out.append(block(key, UNITS[key], data))
    return out


def latest_blocks(recent: list[str]) -> list[dict[str, Any]]:
    return [
        block(
            key,
            UNITS[key],
            [
                {"timestamp": recent[0], "value": f"{100 * (i + 1)}.0"},
                {"timestamp": recent[1], "value": f"{100 * (i + 1) + 1}.0"},
            ],
        )
        for i, key in enumerate(DOC_INPUTS)
    ]


def stats(values: list[float]) -> dict[str, str]:
    return {
        "min": repr(min(values)),
        "max": repr(max(values)),
        "avg": repr(sum(values) / len(values)),
    }


async def test_document_fetch_urls(
    client: httpx.AsyncClient, org: Org, doc_world: dict[str, Any]
) -> None:
    headers = dc_headers(org)
    replies = [await client.get(local(url), headers=headers) for url in DOC_URLS]
    for n, reply in enumerate(replies):
        if n != 6:
            assert reply.status_code == 200, (n, reply.text)
            assert reply.headers["content-type"].startswith("application/json")
    recent = doc_world["recent"]
    assert replies[0].json() == range_blocks()
    assert replies[1].json() == latest_blocks(recent)
    assert replies[2].json() == [
        block(key, UNITS[key], [stats([10 * i + 1.5, 10 * i + 2.5, 10 * i + 3.5])])
        for i, key in enumerate(DOC_INPUTS)
    ]
    assert replies[3].json() == [
        block(key, UNITS[key], [stats([100.0 * (i + 1), 100.0 * (i + 1) + 1])])
        for i, key in enumerate(DOC_INPUTS)
    ]
    assert replies[4].json() == {"id": 67, "name": "Boiler room", "inputs": range_blocks()}
    assert replies[5].json() == {"id": 67, "name": "Boiler room", "inputs": latest_blocks(recent)}
    # the document's seventh example puts input ids in asset_id: a 400 that says so
    assert replies[6].status_code == 400
    [error] = errors_of(replies[6])
    assert error["source"] == {"parameter": "asset_id"}
    assert "inputs_ids" in error["detail"]
    assert replies[7].json() == {
        "id": 67,
        "name": "Boiler room",
        "inputs": replies[3].json(),
    }


@pytest.mark.parametrize(
    "query",
    [
        # the reference: URL 1 without quotes
        "inputs_ids=senXXXX,senXXXY,senXXXZ&timeperiod_start=2020-10-03 15:31:55"
        "&timeperiod_finish=2020-11-03 15:31:55&order_by=timestamp&sort_by=desc",
        # input_ids and the dashed spellings of the Parameters table
        'input_ids="senXXXX,senXXXY,senXXXZ"&timeperiod-start="2020-10-03 15:31:55"'
        '&timeperiod-finish="2020-11-03 15:31:55"&order_by="date"&sort_by="desc"',
        # single quotes, repeated ids, spaces after commas, ISO 8601 bounds, upper case
        "inputs_ids='senXXXX'&inputs_ids=senXXXY, senXXXZ&timeperiod_start=2020-10-03T15:31:55Z"
        "&timeperiod_finish=2020-11-03T16:31:55+01:00&ORDER_BY=TIMESTAMP&sort_by=DESC&limit=1000",
        # each id quoted on its own, empty optional parameters
        'inputs_ids="senXXXX","senXXXY","senXXXZ"&timeperiod_start=2020-10-03 15:31:55'
        "&timeperiod_finish=2020-11-03 15:31:55&sort_by=desc&is_add_metadata=&limit=",
    ],
)
@pytest.mark.parametrize("slash", ["", "/"])
async def test_parameter_spellings(
    client: httpx.AsyncClient, org: Org, doc_world: dict[str, Any], query: str, slash: str
) -> None:
    reply = await client.get(
        f"{BASE}/get_inputdata_by_inputs{slash}?{query}", headers=dc_headers(org)
    )
    assert reply.status_code == 200, reply.text
    assert reply.json() == range_blocks()


async def test_order_limit_and_statistics_choices(
    client: httpx.AsyncClient, org: Org, doc_world: dict[str, Any]
) -> None:
    headers = dc_headers(org)
    window = 'timeperiod_start="2020-10-01 00:00:00"&timeperiod_finish="2020-11-30 00:00:00"'

    async def get(endpoint: str, query: str) -> Any:
        reply = await client.get(f"{BASE}/{endpoint}?{query}", headers=headers)
        assert reply.status_code == 200, reply.text
        return reply.json()

    # default order: oldest first; limit keeps the first in that order
    [only] = await get("get_inputdata_by_inputs", f"inputs_ids=senXXXY&{window}&limit=2")
    assert [r["value"] for r in only["inputdata"]] == ["10.5", "11.5"]
    # by value, largest first, limit 2
    [only] = await get(
        "get_inputdata_by_inputs",
        f"inputs_ids=senXXXY&{window}&order_by=value&sort_by=desc&limit=2",
    )
    assert [r["value"] for r in only["inputdata"]] == ["14.5", "13.5"]
    # latest: the newest `limit`, shown in the order asked (oldest first by default)
    [only] = await get("get_latest_inputdata_by_inputs", "inputs_ids=senXXXY&limit=2")
    recent = doc_world["recent"]
    assert only["inputdata"] == [
        {"timestamp": recent[1], "value": "201.0"},
        {"timestamp": recent[0], "value": "200.0"},
    ]
    [only] = await get(
        "get_latest_inputdata_by_inputs", "inputs_ids=senXXXY&limit=3&order_by=value&sort_by=asc"
    )
    assert [r["value"] for r in only["inputdata"]] == ["200.0", "201.0", "202.0"]
    # statistics: a subset, in min,max,avg order whatever the order asked
    [only] = await get(
        "get_statistics_inputdata_by_inputs",
        f'inputs_ids=senXXXX&{window}&aggregation_func="avg,MIN"',
    )
    assert only["inputdata"] == [{"min": "0.5", "avg": "2.5"}]
    # no readings in the period: nulls
    [only] = await get(
        "get_latest_statistics_inputdata_by_inputs", "inputs_ids=senXXXX&timeperiod_last=1_hour"
    )
    assert only["inputdata"] == [{"min": None, "max": None, "avg": None}]
    # asset, restricted to some of its inputs, in the order asked
    asset = await get(
        "get_latest_inputdata_by_asset", "asset_id=67&inputs_ids=senXXXZ,senXXXX&limit=1"
    )
    assert [b["input"]["id"] for b in asset["inputs"]] == ["senXXXZ", "senXXXX"]
    # timeperiod_last in hours and weeks; a span past the epoch reaches everything
    [only] = await get(
        "get_latest_inputdata_by_inputs", "inputs_ids=senXXXX&timeperiod_last=999999999999_weeks"
    )
    assert len(only["inputdata"]) == 8
    [only] = await get(
        "get_latest_inputdata_by_inputs", "inputs_ids=senXXXX&timeperiod_last=2_weeks"
    )
    assert len(only["inputdata"]) == 3
    [only] = await get(
        "get_latest_inputdata_by_inputs", "inputs_ids=senXXXX&timeperiod_last=36_hours"
    )
    assert len(only["inputdata"]) == 1


BAD_PARAMS = [
    ("get_inputdata_by_inputs", "inputs_ids=senXXXX&limit=0", ["limit"]),
    ("get_inputdata_by_inputs", "inputs_ids=senXXXX&limit=ten", ["limit"]),
    ("get_inputdata_by_inputs", "inputs_ids=senXXXX&limit=²", ["limit"]),
    ("get_inputdata_by_asset", "asset_id=99999999999999999999999", ["asset_id"]),
    ("get_inputdata_by_inputs", "inputs_ids=senXXXX&limit=100001", ["limit"]),
    ("get_inputdata_by_inputs", "inputs_ids=senXXXX&order_by=name", ["order_by"]),
    ("get_inputdata_by_inputs", "inputs_ids=senXXXX&sort_by=up", ["sort_by"]),
    ("get_inputdata_by_inputs", "inputs_ids=senXXXX&is_add_lat_long=maybe", ["is_add_lat_long"]),
    ("get_inputdata_by_inputs", "inputs_ids=senXXXX&timeperiod-start=soon", ["timeperiod-start"]),
    (
        "get_inputdata_by_inputs",
        "inputs_ids=senXXXX&timeperiod_start=2020-11-02&timeperiod_finish=2020-11-01",
        ["timeperiod_finish"],
    ),
    (
        "get_latest_inputdata_by_inputs",
        "inputs_ids=senXXXX&timeperiod_last=5_months",
        ["timeperiod_last"],
    ),
    (
        "get_latest_inputdata_by_inputs",
        "inputs_ids=senXXXX&timeperiod_last=5_days&timeperiod_start=2020-11-01",
        ["timeperiod_last"],
    ),
    (
        "get_statistics_inputdata_by_inputs",
        "inputs_ids=senXXXX&aggregation_func=median,sum",
        ["aggregation_func", "aggregation_func"],
    ),
    ("get_inputdata_by_inputs", "inputs_ids=senXXXX&limit=5&limit=6", ["limit"]),
    ("get_inputdata_by_inputs", "inputs_ids=senXXXX&start=2020-11-01", ["start"]),
    ("get_inputdata_by_inputs", "timeperiod_last=5_days", ["inputs_ids"]),
    ("get_inputdata_by_inputs", 'input_ids=""', ["input_ids"]),
    ("get_inputdata_by_asset", "timeperiod_last=5_days", ["asset_id"]),
    ("get_inputdata_by_asset", "asset_id=-4", ["asset_id"]),
    ("get_inputdata_by_asset", "asset_id={asset}&inputs_ids=senXXXX,senNotHere", ["inputs_ids"]),
    ("get_inputdata_by_asset", "asset_id=x&limit=x&sort_by=x", ["asset_id", "limit", "sort_by"]),
]


@pytest.mark.parametrize(("endpoint", "query", "parameters"), BAD_PARAMS)
async def test_bad_parameters_are_named(
    client: httpx.AsyncClient, org: Org, endpoint: str, query: str, parameters: list[str]
) -> None:
    await make_input(client, org, "senXXXX")
    asset = await make_asset(client, org, "Room", ["senXXXX"])
    url = f"{BASE}/{endpoint}?{query.replace('{asset}', str(asset['id']))}"
    reply = await client.get(url, headers=dc_headers(org))
    assert reply.status_code == 400, reply.text
    errors = errors_of(reply)
    assert sorted(e["source"]["parameter"] for e in errors) == sorted(parameters)


async def test_unknown_inputs_and_assets_are_404(
    client: httpx.AsyncClient, org: Org, other_org: Org, doc_world: dict[str, Any]
) -> None:
    reply = await client.get(
        f"{BASE}/get_inputdata_by_inputs?inputs_ids=senXXXX,senNope,senNada",
        headers=dc_headers(org),
    )
    assert reply.status_code == 404
    assert [e["source"]["parameter"] for e in errors_of(reply)] == ["inputs_ids", "inputs_ids"]
    # asset 67 and the inputs belong to acme: to globex they do not exist, exactly like asset 999
    for query in ("asset_id=67", "asset_id=999"):
        reply = await client.get(
            f"{BASE}/get_inputdata_by_asset?{query}", headers=dc_headers(other_org)
        )
        assert reply.status_code == 404
        [error] = errors_of(reply)
        assert error["source"] == {"parameter": "asset_id"}
        assert error["detail"] in ("asset_id 67 is not an asset", "asset_id 999 is not an asset")
    theirs = await client.get(
        f"{BASE}/get_inputdata_by_inputs?inputs_ids=senXXXX", headers=dc_headers(other_org)
    )
    nobody = await client.get(
        f"{BASE}/get_inputdata_by_inputs?inputs_ids=senGhost", headers=dc_headers(other_org)
    )
    assert theirs.status_code == nobody.status_code == 404
    assert theirs.text.replace("senXXXX", "X") == nobody.text.replace("senGhost", "X")


async def test_default_limit_is_1000_per_input(client: httpx.AsyncClient, org: Org) -> None:
    await make_input(client, org, "senMany")
    await make_input(client, org, "senFew")
    start = datetime(2026, 1, 1, tzinfo=UTC)
    points = [
        {
            "source": "senMany",
            "field": "value",
            "value": i,
            "time": iso(start + timedelta(seconds=i)),
        }
        for i in range(1005)
    ] + [{"source": "senFew", "field": "value", "value": 1, "time": iso(start)}]
    reply = await client.post(
        "/v1/write", json={"bucket": org.bucket, "points": points}, headers=org.headers
    )
    assert reply.status_code == 200, reply.text
    reply = await client.get(
        f"{BASE}/get_inputdata_by_inputs?inputs_ids=senMany,senFew", headers=dc_headers(org)
    )
    many, few = reply.json()
    assert len(many["inputdata"]) == 1000 and len(few["inputdata"]) == 1
    assert many["inputdata"][0]["value"] == "0.0"
    reply = await client.get(
        f"{BASE}/get_latest_inputdata_by_inputs?inputs_ids=senMany&sort_by=desc",
        headers=dc_headers(org),
    )
    [many] = reply.json()
    assert len(many["inputdata"]) == 1000 and many["inputdata"][0]["value"] == "1004.0"


# --- round trips with the native API -----------------------------------------------------


async def test_native_write_then_datacooee_fetch(client: httpx.AsyncClient, org: Org) -> None:
    created = await make_input(client, org, None, name="Flow", unit="l/min", field="flow")
    key = created["key"]
    assert re.fullmatch(r"sen[0-9a-f]{10}", key)
    points = [
        {
            "source": key,
            "field": "flow",
            "value": 3.25,
            "time": "2026-03-01T10:00:00Z",
            "latitude": 48.85,
            "longitude": 2.35,
            "meta": {"valve": "open"},
        },
        {"source": key, "field": "flow", "value": 4, "time": "2026-03-01T10:05:00.123456Z"},
    ]
    reply = await client.post(
        "/v1/write", json={"bucket": org.bucket, "points": points}, headers=org.headers
    )
    assert reply.status_code == 200, reply.text
    asset = await make_asset(client, org, "Pumps", [{"bucket": org.bucket, "source": key}])
    query = "&is_add_lat_long=true&is_add_metadata=TRUE&is_add_x_axis_data=1"
    by_inputs = await client.get(
        f"{BASE}/get_inputdata_by_inputs?inputs_ids={key}{query}", headers=dc_headers(org)
    )
    expected = [
        {
            "input": {"id": key, "name": "Flow", "measure_unit": "l/min"},
            "inputdata": [
                {
                    "timestamp": "2026-03-01T10:00:00.000000Z",
                    "value": "3.25",
                    "latitude": "48.85",
                    "longitude": "2.35",
                    "metadata": {"valve": "open"},
                    "x_axis_value": None,
                },
                {
                    "timestamp": "2026-03-01T10:05:00.123456Z",
                    "value": "4.0",
                    "latitude": None,
                    "longitude": None,
                    "metadata": None,
                    "x_axis_value": None,
                },
            ],
        }
    ]
    assert by_inputs.json() == expected
    by_asset = await client.get(
        f"{BASE}/get_inputdata_by_asset?asset_id={asset['id']}{query}", headers=dc_headers(org)
    )
    assert by_asset.json() == {"id": asset["id"], "name": "Pumps", "inputs": expected}


async def test_datacooee_upload_then_native_read(client: httpx.AsyncClient, org: Org) -> None:
    await make_input(client, org, "senRound", unit="V", field="voltage")
    body = reading(
        "senRound",
        "230.5",
        "2026-03-01T10:00:00.5+01:00",
        latitude="1.5",
        longitude="2.5",
        x_axis_value=12,
        metadata={"phase": "L1"},
    )
    reply = await upload(client, org, "senRound", body)
    assert reply.status_code == 201, reply.text
    reply = await client.get(
        "/v1/query",
        params={"bucket": org.bucket, "source": "senRound", "field": "voltage"},
        headers=org.headers,
    )
    [series] = reply.json()["series"]
    assert series["unit"] == "V"
    assert series["points"] == [
        {
            "time": "2026-03-01T09:00:00.500000Z",
            "value": 230.5,
            "latitude": 1.5,
            "longitude": 2.5,
            "meta": {"phase": "L1"},
            "x_axis_value": 12,
        }
    ]


# --- native groups (assets) ----------------------------------------------------------------


async def test_native_groups(client: httpx.AsyncClient, org: Org, other_org: Org) -> None:
    await make_input(client, org, "senA")
    await make_input(client, org, "senB")
    group = await make_asset(client, org, "Room", ["senA"])
    assert group["sources"] == [{"bucket": org.bucket, "source": "senA"}]
    gid = group["id"]
    reply = await client.put(
        f"/v1/groups/{gid}/sources",
        json={"sources": ["senB", {"bucket": org.bucket, "source": "senA"}]},
        headers=org.headers,
    )
    assert reply.status_code == 200, reply.text
    assert {s["source"] for s in reply.json()["sources"]} == {"senA", "senB"}
    listed = await client.get("/v1/groups", headers=org.headers)
    assert [g["id"] for g in listed.json()["groups"]] == [gid]
    reply = await client.post(
        "/v1/groups",
        json={"name": "x", "sources": ["senA", "senNope", {"bucket": "nope", "source": "senA"}]},
        headers=org.headers,
    )
    assert reply.status_code == 400
    assert [e["index"] for e in reply.json()["errors"]] == [1, 2]
    # another organisation: not found, like a group that does not exist
    huge = await client.get("/v1/groups/99999999999999999999999", headers=org.headers)
    assert huge.status_code == 400
    for path in (f"/v1/groups/{gid}", "/v1/groups/99999"):
        reply = await client.get(path, headers=other_org.headers)
        assert reply.status_code == 404
    assert (await client.get("/v1/groups", headers=other_org.headers)).json() == {"groups": []}
    bucket_key = await org.new_key(client, ["data:write", "data:read"], bucket=org.bucket)
    reply = await client.get("/v1/groups", headers={"Authorization": f"Bearer {bucket_key['key']}"})
    assert reply.status_code == 403
    reply = await client.delete(f"/v1/groups/{gid}", headers=org.headers)
    assert reply.status_code == 204
    assert (await client.get(f"/v1/groups/{gid}", headers=org.headers)).status_code == 404
    # deleting the group leaves its sources
    assert (await native_points(client, org, "senA")) == []
    found = await client.get(f"/v1/buckets/{org.bucket}/sources/senA", headers=org.headers)
    assert found.status_code == 200


@pytest.mark.parametrize("endpoint", list(datacooee.ENDPOINTS))
@pytest.mark.parametrize("slash", ["", "/"])
async def test_every_fetch_endpoint_with_and_without_slash(
    client: httpx.AsyncClient, org: Org, endpoint: str, slash: str
) -> None:
    await make_input(client, org, "senA", name="A", unit="bar")
    asset = await make_asset(client, org, "Room", ["senA"])
    reply = await upload(client, org, "senA", reading("senA", "2", iso(datetime.now(UTC))))
    assert reply.status_code == 201
    kind, _, by_asset = datacooee.ENDPOINTS[endpoint]
    query = f"asset_id={asset['id']}" if by_asset else "inputs_ids=senA"
    reply = await client.get(f"{BASE}/{endpoint}{slash}?{query}", headers=dc_headers(org))
    assert reply.status_code == 200, reply.text
    body = reply.json()
    if by_asset:
        assert (body["id"], body["name"]) == (asset["id"], "Room")
        body = body["inputs"]
    [only] = body
    assert only["input"] == {"id": "senA", "name": "A", "measure_unit": "bar"}
    if kind == "statistics":
        assert only["inputdata"] == [{"min": "2.0", "max": "2.0", "avg": "2.0"}]
    else:
        assert [r["value"] for r in only["inputdata"]] == ["2.0"]


async def test_key_limited_to_a_bucket(client: httpx.AsyncClient, org: Org) -> None:
    reply = await client.post("/v1/buckets", json={"key": "annex"}, headers=org.headers)
    assert reply.status_code == 201
    await make_input(client, org, "senHere")
    reply = await client.post(
        "/v1/buckets/annex/sources",
        json={"key": "senThere", "schema": {"value": {"type": "number"}}},
        headers=org.headers,
    )
    assert reply.status_code == 201
    limited = (await org.new_key(client, ["data:write", "data:read"], bucket=org.bucket))["key"]
    here = await upload(
        client, org, "senHere", reading("senHere", 1, "2026-01-01T00:00:00Z"), limited
    )
    assert here.status_code == 201
    there = await upload(
        client, org, "senThere", reading("senThere", 1, "2026-01-01T00:00:00Z"), limited
    )
    assert there.status_code == 403
    errors_of(there)
    reply = await client.get(
        f"{BASE}/get_inputdata_by_inputs?inputs_ids=senHere", headers=dc_headers(org, limited)
    )
    assert reply.status_code == 200
    reply = await client.get(
        f"{BASE}/get_inputdata_by_inputs?inputs_ids=senThere", headers=dc_headers(org, limited)
    )
    assert reply.status_code == 403
    asset = await make_asset(client, org, "Both", ["senHere", "senThere"])
    reply = await client.get(
        f"{BASE}/get_inputdata_by_asset?asset_id={asset['id']}", headers=dc_headers(org, limited)
    )
    assert reply.status_code == 403
    reply = await client.get(
        f"{BASE}/get_inputdata_by_asset?asset_id={asset['id']}&inputs_ids=senHere",
        headers=dc_headers(org, limited),
    )
    assert reply.status_code == 200, reply.text


async def test_access_token_as_api_key(client: httpx.AsyncClient, org: Org) -> None:
    await make_input(client, org, "senA")
    made = await org.new_key(client, ["data:write", "data:read"])
    reply = await client.post(
        "/v1/auth/token",
        data={"grant_type": "client_credentials"},
        auth=(made["id"], made["secret"]),
    )
    assert reply.status_code == 200, reply.text
    token = reply.json()["access_token"]
    reply = await upload(client, org, "senA", DOC_UPLOAD.replace("senxxxxxxxxxx", "senA"), token)
    assert reply.status_code == 201, reply.text
