"""The Databoom dialect over HTTP: pushes in both forms, every date format, the refusals, and
the read side; accepted points are read back through the native API."""

from __future__ import annotations

import json
import textwrap
from typing import Any

import httpx
import pytest

from sensorbase.dialects import databoom
from sensorbase.dialects.databoom import signals as push_module
from sensorbase.times import format_us, now_us, parse_iso_us
from tests.conftest import Org, auth

DEVICE = "6541469"
PROCESSED = {"message": "ALL_INFO_PROCESSED"}


def _samples() -> list[dict[str, Any]]:
    """The JSON payloads of the module docstring (the vendor's samples), in order."""
    doc = databoom.__doc__ or ""
    blocks = [textwrap.dedent(b) for b in doc.split("\n\n")]
    return [json.loads(b) for b in blocks if b.lstrip().startswith("{")]


LIST_SAMPLE, HISTORY_SAMPLE = _samples()


@pytest.fixture
async def device(client: httpx.AsyncClient, org: Org) -> str:
    """The Databoom device: a Sensorbase source created through the native API."""
    reply = await client.post(
        f"/v1/buckets/{org.bucket}/sources",
        json={"key": DEVICE, "name": "Trento (IT)"},
        headers=org.headers,
    )
    assert reply.status_code == 201, reply.text
    return DEVICE


async def _points(
    client: httpx.AsyncClient, org: Org, signal: str | None = None, source: str = DEVICE
) -> dict[str, list[tuple[str, float]]]:
    params = {"bucket": org.bucket, "source": source, "limit": "100000"}
    if signal:
        params["field"] = signal
    reply = await client.get("/v1/query", params=params, headers=org.headers)
    if reply.status_code == 404:
        return {}
    assert reply.status_code == 200, reply.text
    return {
        s["field"]: [(p["time"], p["value"]) for p in s["points"]] for s in reply.json()["series"]
    }


async def _push(client: httpx.AsyncClient, key: str, body: Any, slash: str = "") -> httpx.Response:
    return await client.post(f"/v1/signals/push{slash}", json=body, headers=auth(key))


# --- the seed's examples ------------------------------------------------------------------


@pytest.mark.parametrize("slash", ["", "/"])
async def test_list_form_sample(
    client: httpx.AsyncClient, org: Org, device: str, slash: str
) -> None:
    reply = await _push(client, org.admin, LIST_SAMPLE, slash)
    assert reply.status_code == 200, reply.text
    assert reply.json() == PROCESSED
    assert await _points(client, org) == {
        "pressure": [("2020-02-05T02:59:33.000000Z", 1019.0)],
        "temperature": [("2020-02-05T02:59:33.000000Z", 21.5)],
    }
    reply = await client.get(f"/v1/buckets/{org.bucket}/sources/{device}", headers=org.headers)
    fields = {f["field"]: f for f in reply.json()["fields"]}
    assert fields["temperature"]["unit"] == "°C"
    assert fields["temperature"]["meta"] == {
        "description": "Air temperature",
        "unit": "°C",
        "type": "number",
        "tags": ["outdoor"],
        "status": "INIT",  # created on first sight: awaiting validation
    }
    assert fields["pressure"]["meta"] == {"status": "INIT"}


@pytest.mark.parametrize("slash", ["", "/"])
async def test_history_form_sample(
    client: httpx.AsyncClient, org: Org, device: str, slash: str
) -> None:
    reply = await _push(client, org.admin, HISTORY_SAMPLE, slash)
    assert reply.status_code == 200, reply.text
    assert reply.json() == PROCESSED
    assert await _points(client, org) == {
        "pressure": [
            ("2020-02-05T01:00:00.000000Z", 1017.0),
            ("2020-02-05T02:00:00.000000Z", 1018.0),
        ]
    }
    reply = await client.get(f"/v1/buckets/{org.bucket}/sources/{device}", headers=org.headers)
    [field] = reply.json()["fields"]
    assert field["meta"] == {"description": "Barometric pressure", "status": "INIT"}


async def test_several_signals_and_entries_in_history_form(
    client: httpx.AsyncClient, org: Org, device: str
) -> None:
    body = {
        "device": device,
        "signals": {
            "t1": {"history": [{"date": "2021-01-01T00:00:00Z", "value": 1}]},
            "t2": {
                "meta": {"unit": "%"},
                "history": [
                    {"date": "2021-01-01T00:00:00Z", "value": 2},
                    {"date": "2021-01-01T00:01:00Z", "value": 3.5},
                ],
            },
        },
    }
    assert (await _push(client, org.admin, body)).status_code == 200
    assert await _points(client, org) == {
        "t1": [("2021-01-01T00:00:00.000000Z", 1.0)],
        "t2": [("2021-01-01T00:00:00.000000Z", 2.0), ("2021-01-01T00:01:00.000000Z", 3.5)],
    }


async def test_no_date_means_reception_time(
    client: httpx.AsyncClient, org: Org, device: str
) -> None:
    before = now_us()
    body = {"device": device, "signals": [{"name": "rssi", "value": -70}]}
    assert (await _push(client, org.admin, body)).status_code == 200
    after = now_us()
    [(time, value)] = (await _points(client, org))["rssi"]
    assert before <= parse_iso_us(time) <= after
    assert value == -70.0


async def test_history_entry_without_date_takes_the_body_date(
    client: httpx.AsyncClient, org: Org, device: str
) -> None:
    body = {
        "device": device,
        "date": "2022-06-01T12:00:00Z",
        "signals": {"t": {"history": [{"value": 1}]}, "u": {"value": 2}},
    }
    assert (await _push(client, org.admin, body)).status_code == 200
    assert await _points(client, org) == {
        "t": [("2022-06-01T12:00:00.000000Z", 1.0)],
        "u": [("2022-06-01T12:00:00.000000Z", 2.0)],
    }


async def test_list_entry_may_carry_a_history(
    client: httpx.AsyncClient, org: Org, device: str
) -> None:
    body = {
        "device": device,
        "signals": [{"name": "t", "history": [{"date": "2022-06-01T12:00:00Z", "value": 4}]}],
    }
    assert (await _push(client, org.admin, body)).status_code == 200
    assert await _points(client, org) == {"t": [("2022-06-01T12:00:00.000000Z", 4.0)]}


async def test_meta_is_applied_only_when_the_signal_is_created(
    client: httpx.AsyncClient, org: Org, device: str
) -> None:
    first = {"name": "p", "value": 1, "meta": {"unit": "hPa", "description": "first"}}
    second = {"name": "p", "value": 2, "meta": {"unit": "bar", "description": "second"}}
    for i, signal in enumerate((first, second)):
        body = {"device": device, "date": f"2022-01-0{i + 1}T00:00:00Z", "signals": [signal]}
        assert (await _push(client, org.admin, body)).status_code == 200
    reply = await client.get(f"/v1/buckets/{org.bucket}/sources/{device}", headers=org.headers)
    [field] = reply.json()["fields"]
    assert field["unit"] == "hPa"
    assert field["meta"] == {"unit": "hPa", "description": "first", "status": "INIT"}
    assert len((await _points(client, org))["p"]) == 2


async def test_the_same_date_again_replaces_the_value(
    client: httpx.AsyncClient, org: Org, device: str
) -> None:
    for value in (1, 2):
        body = {
            "device": device,
            "date": "2022-01-01T00:00:00Z",
            "signals": [{"name": "p", "value": value}],
        }
        assert (await _push(client, org.admin, body)).status_code == 200
    assert await _points(client, org) == {"p": [("2022-01-01T00:00:00.000000Z", 2.0)]}


# --- dates --------------------------------------------------------------------------------

DATES = [
    ("2018-04-23T10:26:00.996Z", "2018-04-23T10:26:00.996000Z"),
    ("2020-02-05T02:59:33.000+0000", "2020-02-05T02:59:33.000000Z"),
    ("2020-02-05T02:59:33.000+00:00", "2020-02-05T02:59:33.000000Z"),
    ("2018-04-23T12:26:00.996+02:00", "2018-04-23T10:26:00.996000Z"),
    ("04/23/2018", "2018-04-23T00:00:00.000000Z"),
    ("04/23/2018 12:26:00.996+02:00", "2018-04-23T10:26:00.996000Z"),
    ("Mar 23 2018 10:26:00.996Z", "2018-03-23T10:26:00.996000Z"),
    ("March 23 2018", "2018-03-23T00:00:00.000000Z"),
    # zone-less strings are UTC
    ("2018-04-23T10:26:00", "2018-04-23T10:26:00.000000Z"),
    ("2018-04-23", "2018-04-23T00:00:00.000000Z"),
    ("04/23/2018 10:26:00", "2018-04-23T10:26:00.000000Z"),
    # what JavaScript's Date writes with toString() and toUTCString()
    (
        "Mon Apr 23 2018 12:26:00 GMT+0200 (Central European Summer Time)",
        "2018-04-23T10:26:00.000000Z",
    ),
    ("Mon, 23 Apr 2018 10:26:00 GMT", "2018-04-23T10:26:00.000000Z"),
    ("Apr 23 2018 05:26:00 EST", "2018-04-23T10:26:00.000000Z"),
    # a number is milliseconds since 1970, as new Date(number)
    (1524479160996, "2018-04-23T10:26:00.996000Z"),
]


@pytest.mark.parametrize(("date", "expected"), DATES, ids=[str(d) for d, _ in DATES])
async def test_every_date_format_in_list_form(
    client: httpx.AsyncClient, org: Org, device: str, date: Any, expected: str
) -> None:
    body = {"device": device, "date": date, "signals": [{"name": "t", "value": 1.5}]}
    reply = await _push(client, org.admin, body)
    assert reply.status_code == 200, reply.text
    assert await _points(client, org) == {"t": [(expected, 1.5)]}


async def test_every_date_format_in_history_form(
    client: httpx.AsyncClient, org: Org, device: str
) -> None:
    history = [{"date": date, "value": i} for i, (date, _) in enumerate(DATES)]
    body = {"device": device, "signals": {"t": {"history": history}}}
    reply = await _push(client, org.admin, body)
    assert reply.status_code == 200, reply.text
    stored = dict((await _points(client, org))["t"])
    # Several formats name the same instant: the last value written for it wins.
    expected: dict[str, float] = {}
    for i, (_, time) in enumerate(DATES):
        expected[time] = float(i)
    assert stored == expected


BAD_DATES = [
    "hello",
    "10:26",  # no year, no month: dateutil would make it today
    "2018-13-01",
    "Apr 23 2018 10:26:00 CEST",  # a zone name JavaScript does not know
    "",
    True,
    [2018],
]


async def test_unparseable_dates_are_refused_naming_signal_and_entry(
    client: httpx.AsyncClient, org: Org, device: str
) -> None:
    good = {"date": "2018-04-23T10:26:00Z", "value": 1}
    history = [good] + [{"date": d, "value": 2} for d in BAD_DATES]
    body = {"device": device, "signals": {"ok": {"history": [good]}, "temp": {"history": history}}}
    reply = await _push(client, org.admin, body)
    assert reply.status_code == 400, reply.text
    payload = reply.json()
    assert set(payload) == {"message", "errors"}
    fields = [e["field"] for e in payload["errors"]]
    assert fields == [
        f"signal 'temp', history entry {j}, date" for j in range(1, len(BAD_DATES) + 1)
    ]
    assert "signal 'temp', history entry 1, date: 'hello' is not a date" in payload["message"]
    assert "year and a month" in payload["errors"][1]["reason"]
    assert "CEST" in payload["errors"][3]["reason"]
    assert await _points(client, org) == {}  # nothing stored, not even the good signal


async def test_an_unparseable_body_date_is_refused(
    client: httpx.AsyncClient, org: Org, device: str
) -> None:
    body = {"device": device, "date": "31/31/2018", "signals": [{"name": "t", "value": 1}]}
    reply = await _push(client, org.admin, body)
    assert reply.status_code == 400
    assert reply.json()["errors"] == [
        {
            "field": "date",
            "reason": "'31/31/2018' is not a date: a slashed date is month/day/year, as "
            "JavaScript reads it",
        }
    ]


async def test_dates_outside_the_accepted_window_are_refused(
    client: httpx.AsyncClient, org: Org, device: str
) -> None:
    body = {
        "device": device,
        "signals": {
            "t": {
                "history": [
                    {"date": "2018-04-23T10:26:00Z", "value": 1},
                    {"date": "1960-01-01T00:00:00Z", "value": 2},
                    {"date": format_us(now_us() + 30 * 86_400_000_000), "value": 3},
                ]
            }
        },
    }
    reply = await _push(client, org.admin, body)
    assert reply.status_code == 400
    assert [e["field"] for e in reply.json()["errors"]] == [
        "signal 't', history entry 1, date",
        "signal 't', history entry 2, date",
    ]
    assert await _points(client, org) == {}


# --- refusals -----------------------------------------------------------------------------


async def test_bad_values_are_all_listed_and_nothing_is_stored(
    client: httpx.AsyncClient, org: Org, device: str
) -> None:
    body = {
        "device": device,
        "signals": [
            {"name": "good", "value": 1},
            {"name": "s", "value": "21.5"},
            {"name": "b", "value": True},
            {"name": "n", "value": None},
            {"name": "missing"},
            {"value": 3},
            {"name": "", "value": 3},
            {"name": "a/b", "value": 3},
            "pressure",
            {"name": "m", "value": 1, "meta": "hPa"},
            {"name": "u", "value": 1, "meta": {"unit": 3, "tags": "x"}},
        ],
    }
    reply = await _push(client, org.admin, body)
    assert reply.status_code == 400, reply.text
    assert [e["field"] for e in reply.json()["errors"]] == [
        "signal 's' (signals[1]), value",
        "signal 'b' (signals[2]), value",
        "signal 'n' (signals[3]), value",
        "signal 'missing' (signals[4]), value",
        "signals[5], name",
        "signals[6], name",
        "signals[7], name",
        "signals[8]",
        "signal 'm' (signals[9]), meta",
        "signal 'u' (signals[10]), meta.unit",
        "signal 'u' (signals[10]), meta.tags",
    ]
    assert "must be a number; got str '21.5'" in reply.json()["message"]
    assert await _points(client, org) == {}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"signals": [{"name": "t", "value": 1}]}, "device"),
        ({"device": 6541469, "signals": []}, "device"),
        ({"device": DEVICE}, "signals"),
        ({"device": DEVICE, "signals": "t=1"}, "signals"),
        (
            {"device": DEVICE, "signals": {"t": {"history": {"date": "2020-01-01", "value": 1}}}},
            "signal 't', history",
        ),
        (
            {"device": DEVICE, "signals": {"t": {"history": ["2020-01-01", 1]}}},
            "signal 't', history entry 0",
        ),
        ({"device": DEVICE, "signals": {"t": 1}}, "signal 't'"),
    ],
)
async def test_malformed_bodies(
    client: httpx.AsyncClient, org: Org, device: str, body: dict[str, Any], field: str
) -> None:
    reply = await _push(client, org.admin, body)
    assert reply.status_code == 400, reply.text
    assert field in [e["field"] for e in reply.json()["errors"]]


async def test_the_seed_history_shape_without_a_token_is_explained(
    client: httpx.AsyncClient, org: Org, device: str
) -> None:
    """The seed draws `signals: {history: [...]}`: read literally it has no token."""
    body = {"device": device, "signals": {"history": [{"date": "2020-01-01", "value": 1}]}}
    reply = await _push(client, org.admin, body)
    assert reply.status_code == 400
    assert '{"<token>": {"history": [...]}}' in reply.json()["message"]


@pytest.mark.parametrize("content", [b"{not json", b"[1, 2]", b'"text"'])
async def test_a_body_that_is_not_a_json_object(
    client: httpx.AsyncClient, org: Org, device: str, content: bytes
) -> None:
    reply = await client.post(
        "/v1/signals/push",
        content=content,
        headers={**org.headers, "Content-Type": "application/json"},
    )
    assert reply.status_code == 400
    assert set(reply.json()) >= {"message"}


async def test_unknown_device_is_a_clear_404(
    client: httpx.AsyncClient, org: Org, device: str
) -> None:
    body = {"device": "nope", "signals": [{"name": "t", "value": 1}]}
    reply = await _push(client, org.admin, body)
    assert reply.status_code == 404
    assert reply.json() == {
        "message": "device 'nope' not found: create it first as a Sensorbase source with this key"
    }


async def test_another_organisations_device_is_indistinguishable_from_a_missing_one(
    client: httpx.AsyncClient, org: Org, other_org: Org, device: str
) -> None:
    body = {"device": device, "signals": [{"name": "t", "value": 1}]}
    theirs = await _push(client, other_org.admin, body)
    missing = await _push(client, other_org.admin, {**body, "device": "nope"})
    assert theirs.status_code == missing.status_code == 404
    assert theirs.json()["message"] == missing.json()["message"].replace("nope", device)
    assert await _points(client, org) == {}


async def test_a_device_found_is_trusted_per_organisation_and_forgotten_when_deleted(
    client: httpx.AsyncClient, org: Org, other_org: Org, device: str
) -> None:
    """A push looks its device up once per `key_cache_s` (catalog/recent.py): never for
    another organisation, and a delete on this node is seen by the next push."""
    body = {
        "device": device,
        "signals": [{"name": "t", "value": 1, "date": "2026-01-01T00:00:00Z"}],
    }
    assert (await _push(client, org.admin, body)).status_code == 200  # now cached
    assert (await _push(client, other_org.admin, body)).status_code == 404
    deleted = await client.delete(f"/v1/buckets/{org.bucket}/sources/{device}", headers=org.headers)
    assert deleted.status_code == 204, deleted.text
    reply = await _push(client, org.admin, body)
    assert reply.status_code == 404, reply.text
    assert reply.json()["message"].startswith(f"device '{device}' not found")
    made = await client.post(f"/v1/buckets/{org.bucket}/sources", json={"key": device},
                             headers=org.headers)  # fmt: skip
    assert made.status_code == 201
    assert (
        await _push(client, org.admin, {**body, "signals": [{"name": "t", "value": 2}]})
    ).status_code == 200
    assert [v for _, v in (await _points(client, org))["t"]] == [2.0]  # the new source only


async def test_a_device_needs_a_source_and_the_push_creates_none(
    client: httpx.AsyncClient, org: Org
) -> None:
    body = {"device": "new-device", "signals": [{"name": "t", "value": 1}]}
    assert (await _push(client, org.admin, body)).status_code == 404
    reply = await client.get(f"/v1/buckets/{org.bucket}/sources", headers=org.headers)
    assert reply.json()["sources"] == []


async def test_a_device_schema_refuses_undeclared_signals(
    client: httpx.AsyncClient, org: Org
) -> None:
    reply = await client.post(
        f"/v1/buckets/{org.bucket}/sources",
        json={"key": "strict", "schema": {"t": {"unit": "°C"}, "on": {"type": "boolean"}}},
        headers=org.headers,
    )
    assert reply.status_code == 201, reply.text
    body = {
        "device": "strict",
        "date": "2022-01-01T00:00:00Z",
        "signals": [
            {"name": "t", "value": 1},
            {"name": "x", "value": 2},
            {"name": "on", "value": 1},
        ],
    }
    reply = await _push(client, org.admin, body)
    assert reply.status_code == 400
    assert [e["field"] for e in reply.json()["errors"]] == ["signal 'x'", "signal 'on'"]
    assert await _points(client, org, source="strict") == {}
    body["signals"] = [{"name": "t", "value": 1}]
    assert (await _push(client, org.admin, body)).status_code == 200
    assert await _points(client, org, source="strict") == {
        "t": [("2022-01-01T00:00:00.000000Z", 1.0)]
    }


# --- credentials --------------------------------------------------------------------------


async def test_credentials(client: httpx.AsyncClient, org: Org, device: str) -> None:
    body = {
        "device": device,
        "date": "2022-01-01T00:00:00Z",
        "signals": [{"name": "t", "value": 1}],
    }
    reply = await client.post("/v1/signals/push", json=body)
    assert reply.status_code == 401
    assert reply.json() == {"message": "credentials are missing"}
    assert reply.headers["WWW-Authenticate"] == "Bearer"
    reply = await _push(client, "sb_kdeadbeef_wrong", body)
    assert reply.status_code == 401
    assert "message" in reply.json()

    reader = await org.new_key(client, ["data:read"])
    reply = await _push(client, reader["key"], body)
    assert reply.status_code == 403
    assert reply.json() == {
        "message": "this token lacks the Publish permission (Sensorbase scope 'data:write')"
    }

    writer = await org.new_key(client, ["data:write"])
    assert (await _push(client, writer["key"], body)).status_code == 200

    # An access token minted from the key (OAuth2 client credentials) works the same.
    key_id, secret = writer["key"].removeprefix("sb_").split("_", 1)
    reply = await client.post(
        "/v1/auth/token",
        data={"grant_type": "client_credentials"},
        auth=(key_id, secret),
    )
    assert reply.status_code == 200, reply.text
    token = reply.json()["access_token"]
    body["signals"] = [{"name": "u", "value": 2}]
    assert (await _push(client, token, body)).status_code == 200
    assert set(await _points(client, org)) == {"t", "u"}


async def test_a_bucket_limited_key_sees_only_its_bucket_devices(
    client: httpx.AsyncClient, org: Org, device: str
) -> None:
    reply = await client.post("/v1/buckets", json={"key": "other"}, headers=org.headers)
    assert reply.status_code == 201
    limited = await org.new_key(client, ["data:write"], bucket="other")
    body = {"device": device, "signals": [{"name": "t", "value": 1}]}
    reply = await _push(client, limited["key"], body)
    assert reply.status_code == 404
    await client.post("/v1/buckets/other/sources", json={"key": device}, headers=org.headers)
    body["date"] = "2022-01-01T00:00:00Z"
    assert (await _push(client, limited["key"], body)).status_code == 200
    # The point went to the device of the key's bucket, not to the first one by id.
    assert await _points(client, org) == {}
    reply = await client.get(
        "/v1/query", params={"bucket": "other", "source": device}, headers=org.headers
    )
    assert reply.json()["series"][0]["points"] == [
        {"time": "2022-01-01T00:00:00.000000Z", "value": 1.0}
    ]


# --- the read side ------------------------------------------------------------------------


async def test_signals_list_is_paged_with_tokens(
    client: httpx.AsyncClient, org: Org, other_org: Org, device: str
) -> None:
    assert (await _push(client, org.admin, LIST_SAMPLE)).status_code == 200
    reader = await org.new_key(client, ["data:read"])
    reply = await client.get("/v1/signals", headers=auth(reader["key"]))
    assert reply.status_code == 200, reply.text
    page = reply.json()
    assert (page["page"], page["per_page"], page["total"]) == (1, 100, 2)
    by_token = {s["signal_token"]: s for s in page["data"]}
    assert set(by_token) == {"pressure", "temperature"}
    temperature = by_token["temperature"]
    assert temperature["device_token"] == device
    assert temperature["device_description"] == "Trento (IT)"
    assert temperature["device"]["device_token"] == device
    assert temperature["description"] == "Air temperature"
    assert temperature["unit"] == "°C"
    assert temperature["tags"] == ["outdoor"]
    assert by_token["pressure"]["description"] == "pressure"

    second = await client.get(
        "/v1/signals/", params={"page": 2, "per_page": 1}, headers=org.headers
    )
    assert second.status_code == 200
    assert [s["signal_token"] for s in second.json()["data"]] == ["temperature"]
    beyond = await client.get("/v1/signals", params={"page": 3, "per_page": 1}, headers=org.headers)
    assert beyond.json()["data"] == []

    theirs = await client.get("/v1/signals", headers=other_org.headers)
    assert theirs.json()["data"] == [] and theirs.json()["total"] == 0

    bad = await client.get("/v1/signals", params={"per_page": 0}, headers=org.headers)
    assert bad.status_code == 400
    assert "per_page" in bad.json()["message"]
    writer = await org.new_key(client, ["data:write"])
    assert (await client.get("/v1/signals", headers=auth(writer["key"]))).status_code == 403


async def _signal_id(client: httpx.AsyncClient, org: Org, token: str) -> str:
    reply = await client.get("/v1/signals", headers=org.headers)
    [found] = [s["_id"] for s in reply.json()["data"] if s["signal_token"] == token]
    return str(found)


async def _hourly_history(client: httpx.AsyncClient, org: Org, device: str) -> str:
    """Six values, two per hour over three hours of 2019-05-07 (UTC)."""
    history = [
        {"date": f"2019-05-07T{h:02d}:{m:02d}:00Z", "value": v}
        for (h, m, v) in [(9, 0, 1), (9, 30, 3), (10, 0, 5), (10, 30, 7), (11, 0, 9), (11, 30, 11)]
    ]
    body = {"device": device, "signals": {"pressure": {"history": history}}}
    assert (await _push(client, org.admin, body)).status_code == 200
    return await _signal_id(client, org, "pressure")


async def test_chart_raw_values(client: httpx.AsyncClient, org: Org, device: str) -> None:
    sid = await _hourly_history(client, org, device)
    body = {
        "signals": [sid],
        "startDate": "2019-05-07T11:30:00+02:00",  # 09:30Z
        "endDate": "2019-05-07T12:30:00+02:00",  # 10:30Z, inclusive
        "granularity": "*",
    }
    reply = await client.post("/v1/chart", json=body, headers=org.headers)
    assert reply.status_code == 200, reply.text
    rows = reply.json()[sid]
    assert [(r["date"], r["value"]) for r in rows] == [
        ("2019-05-07T09:30:00.000Z", 3.0),
        ("2019-05-07T10:00:00.000Z", 5.0),
        ("2019-05-07T10:30:00.000Z", 7.0),
    ]
    assert rows[0] == {
        "_id": {"data": "2019-05-07T09:30:00.000Z"},
        "date": "2019-05-07T09:30:00.000Z",
        "value": 3.0,
        "mean": 3.0,
        "total_sum": 3.0,
        "max_t": 3.0,
        "min_t": 3.0,
        "count": 1,
    }
    assert reply.json()["info"] == {sid: {"granularity": "*", "overBound": False}}


async def test_chart_hourly_daily_monthly(client: httpx.AsyncClient, org: Org, device: str) -> None:
    sid = await _hourly_history(client, org, device)
    hourly = await client.post(
        "/v1/chart", json={"signals": [sid], "granularity": "h"}, headers=org.headers
    )
    assert hourly.status_code == 200, hourly.text
    assert hourly.json()[sid] == [
        {
            "_id": {"data": f"2019-05-07T{h}:00:00.000Z"},
            "date": f"2019-05-07T{h}:00:00.000Z",
            "value": last,
            "mean": mean,
            "total_sum": total,
            "max_t": last,
            "min_t": first,
            "count": 2,
        }
        for h, first, last, mean, total in [
            ("09", 1.0, 3.0, 2.0, 4.0),
            ("10", 5.0, 7.0, 6.0, 12.0),
            ("11", 9.0, 11.0, 10.0, 20.0),
        ]
    ]
    for granularity, date in (("d", "2019-05-07T00:00:00.000Z"), ("m", "2019-05-01T00:00:00.000Z")):
        reply = await client.post(
            "/v1/chart",
            json={"signals": [int(sid)], "granularity": granularity, "startDate": "2019-05-01"},
            headers=org.headers,
        )
        assert reply.status_code == 200, reply.text
        [row] = reply.json()[sid]
        assert (row["date"], row["count"], row["mean"], row["min_t"], row["max_t"]) == (
            date,
            6,
            6.0,
            1.0,
            11.0,
        )
        assert reply.json()["info"][sid]["granularity"] == granularity


async def test_chart_auto_granularity(client: httpx.AsyncClient, org: Org, device: str) -> None:
    sid = await _hourly_history(client, org, device)
    reply = await client.post("/v1/chart", json={"signals": [sid]}, headers=org.headers)
    assert reply.json()["info"][sid] == {"granularity": "*", "overBound": False}
    assert len(reply.json()[sid]) == 6

    # One value a second over three hours: too many for raw, so hourly.
    start = parse_iso_us("2019-06-01T00:00:00Z") // 1000
    history = [{"date": start + i * 1000, "value": i} for i in range(3 * 3600)]
    body = {"device": device, "signals": {"fast": {"history": history}}}
    assert (await _push(client, org.admin, body)).status_code == 200
    fast = await _signal_id(client, org, "fast")
    reply = await client.post("/v1/chart", json={"signals": [fast]}, headers=org.headers)
    assert reply.json()["info"][fast] == {"granularity": "h", "overBound": False}
    assert [r["count"] for r in reply.json()[fast]] == [3600, 3600, 3600]
    raw = await client.post(
        "/v1/chart", json={"signals": [fast], "granularity": "*"}, headers=org.headers
    )
    assert len(raw.json()[fast]) == 10_080
    assert raw.json()["info"][fast] == {"granularity": "*", "overBound": True}


async def test_chart_refusals(
    client: httpx.AsyncClient, org: Org, other_org: Org, device: str
) -> None:
    sid = await _hourly_history(client, org, device)
    bad = await client.post(
        "/v1/chart",
        json={"signals": [sid], "granularity": "w", "startDate": "soon", "endDate": "2019-01-01"},
        headers=org.headers,
    )
    assert bad.status_code == 400
    assert [e["field"] for e in bad.json()["errors"]] == ["startDate", "granularity"]

    backwards = await client.post(
        "/v1/chart",
        json={"signals": [sid], "startDate": "2019-05-02", "endDate": "2019-05-01"},
        headers=org.headers,
    )
    assert backwards.status_code == 400
    assert backwards.json()["errors"][0]["field"] == "endDate"

    missing = await client.post("/v1/chart", json={"granularity": "h"}, headers=org.headers)
    assert missing.status_code == 400
    assert "signals" in missing.json()["message"]

    unknown = await client.post("/v1/chart", json={"signals": ["999999"]}, headers=org.headers)
    theirs = await client.post("/v1/chart", json={"signals": [sid]}, headers=other_org.headers)
    assert unknown.status_code == theirs.status_code == 404
    assert theirs.json() == {"message": f"signal(s) not found: {sid}"}
    assert unknown.json() == {"message": "signal(s) not found: 999999"}

    writer = await org.new_key(client, ["data:write"])
    denied = await client.post("/v1/chart", json={"signals": [sid]}, headers=auth(writer["key"]))
    assert denied.status_code == 403


# --- the routes ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/v1/signals/push"),
        ("POST", "/v1/signals/push/"),
        ("GET", "/v1/signals"),
        ("GET", "/v1/signals/"),
        ("POST", "/v1/chart"),
        ("POST", "/v1/chart/"),
    ],
)
async def test_databoom_paths_are_served_by_databoom(
    client: httpx.AsyncClient, method: str, path: str
) -> None:
    """The native API (and other dialects) also live under /v1: these paths must reach the
    Databoom handlers, which answer in Databoom's shape, not another route's."""
    reply = await client.request(method, path)
    assert reply.status_code == 401
    assert reply.headers["content-type"] == "application/json"
    assert reply.json() == {"message": "credentials are missing"}


async def test_the_native_api_under_v1_is_untouched(client: httpx.AsyncClient) -> None:
    for method, path in (("POST", "/v1/write"), ("GET", "/v1/query"), ("GET", "/v1/buckets")):
        reply = await client.request(method, path)
        assert reply.status_code == 401
        assert reply.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize("signals", [[], {}])
async def test_an_empty_push_is_processed_and_stores_nothing(
    client: httpx.AsyncClient, org: Org, device: str, signals: Any
) -> None:
    reply = await _push(client, org.admin, {"device": device, "signals": signals})
    assert reply.status_code == 200, reply.text
    assert reply.json() == PROCESSED
    assert await _points(client, org) == {}


async def test_a_signal_date_is_the_default_of_its_values(
    client: httpx.AsyncClient, org: Org, device: str
) -> None:
    body = {
        "device": device,
        "date": "2022-06-01T12:00:00Z",
        "signals": {
            "t": {"date": "2022-06-02T00:00:00Z", "history": [{"value": 1}]},
            "u": {"history": [{"value": 2}]},
        },
    }
    assert (await _push(client, org.admin, body)).status_code == 200
    body = {
        "device": device,
        "date": "2022-06-01T12:00:00Z",
        "signals": [{"name": "v", "value": 3, "date": "2022-06-03T00:00:00Z"}],
    }
    assert (await _push(client, org.admin, body)).status_code == 200
    assert await _points(client, org) == {
        "t": [("2022-06-02T00:00:00.000000Z", 1.0)],
        "u": [("2022-06-01T12:00:00.000000Z", 2.0)],
        "v": [("2022-06-03T00:00:00.000000Z", 3.0)],
    }


ACCEPTED = [
    LIST_SAMPLE,
    HISTORY_SAMPLE,
    {"device": DEVICE, "signals": {"t": {"value": 1, "date": 1524479160996}}},
    {"device": DEVICE, "signals": [{"name": "t", "history": [{"value": 1}], "date": "2019-01-01"}]},
    {"device": DEVICE, "signals": [{"name": "t", "history": [{"value": 1}], "value": 2}]},
    {"device": DEVICE, "signals": {"t": {"history": [{"value": 1}], "value": 2}}},
    {
        "device": DEVICE,
        "date": "March 23 2018",
        "signals": {"t": {"history": [{"date": d, "value": i} for i, (d, _) in enumerate(DATES)]}},
    },
]


@pytest.mark.parametrize("body", ACCEPTED)
def test_the_fast_path_and_the_walker_agree(body: dict[str, Any]) -> None:
    """A push the typed fast path accepts decodes to the same columns through the item-by-item
    walker that names problems (the path a refused push takes)."""
    raw = json.dumps(body).encode()
    fast = push_module._fast(raw, received_us=123)
    walked = push_module._Decoder(received_us=123).decode(json.loads(raw))
    assert fast == walked
    assert [fast.where(i) for i in range(len(fast.value))] == [
        walked.where(i) for i in range(len(walked.value))
    ]


async def test_the_openapi_document_lists_the_databoom_operations(
    client: httpx.AsyncClient,
) -> None:
    reply = await client.get("/openapi.json")
    assert reply.status_code == 200
    paths = reply.json()["paths"]
    assert "post" in paths["/v1/signals/push"]
    assert "get" in paths["/v1/signals"]
    assert "post" in paths["/v1/chart"]
