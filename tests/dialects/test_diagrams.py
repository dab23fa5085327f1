"""The DiagRAMS dialect over HTTP: the token endpoint, then the data-bridge push, read back
through the native query API."""

from __future__ import annotations

import base64
import gzip
import json
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from sensorbase.dialects import diagrams
from sensorbase.services import Services
from tests.conftest import Org, auth

# The vendor's example body, exactly as its document's curl sends it (taken from the module's
# docstring, where it opens the dialect).
_doc = diagrams.__doc__ or ""
DOC_BODY = "".join(
    line.strip() for line in _doc[_doc.index("    [{") : _doc.index("}]\n") + 2].splitlines()
)
DOC_CURL_BODY = (
    '[{"sensorId":"1","date":"2020-01-01T08:03:51.000Z","value":19.9},'
    '{"sensorId":"2","date":"2020-01-01T08:03:51.000Z","value":0},'
    '{"sensorId":"3","date":"2020-01-01T08:03:51.000Z","value":"1"}]'
)
# What `curl -d` sends when the document's broken `-H -H "Content-Type: ..."` loses the header.
CURL_FORM = "application/x-www-form-urlencoded"
TOKEN_PATHS = ["/v0/oauth2/token", "/v0/oauth2token"]


def basic(key_id: str, secret: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{key_id}:{secret}".encode()).decode()}


async def app_key(client: httpx.AsyncClient, org: Org, scopes: list[str] | None = None) -> Any:
    """An APPLICATION_ID/APPLICATION_SECRET couple: a Sensorbase key's id and secret."""
    return await org.new_key(client, scopes or ["data:write", "data:read"])


async def access_token(client: httpx.AsyncClient, key: dict[str, Any]) -> dict[str, Any]:
    reply = await client.post(
        "/v0/oauth2/token",
        data={"grant_type": "client_credentials"},
        headers=basic(key["id"], key["secret"]),
    )
    assert reply.status_code == 200, reply.text
    return dict(reply.json())


def push_url(org_key: str, project: str) -> str:
    return f"/v0/organisations/{org_key}/data/{project}"


async def push(
    client: httpx.AsyncClient, token: str, org: Org, body: Any, *, project: str | None = None
) -> httpx.Response:
    content = body if isinstance(body, str | bytes) else json.dumps(body)
    return await client.post(
        push_url(org.key, project or org.bucket),
        content=content,
        headers={"Authorization": f"bearer {token}", "Content-Type": "application/json"},
    )


async def points(client: httpx.AsyncClient, org: Org, source: str) -> list[dict[str, Any]]:
    reply = await client.get(
        "/v1/query", params={"bucket": org.bucket, "source": source}, headers=org.headers
    )
    assert reply.status_code == 200, reply.text
    return [{"field": s["field"], **p} for s in reply.json()["series"] for p in s["points"]]


async def stored_anything(client: httpx.AsyncClient, org: Org) -> bool:
    reply = await client.get("/v1/query", params={"bucket": org.bucket}, headers=org.headers)
    assert reply.status_code == 200, reply.text
    return any(s["points"] for s in reply.json()["series"])


# --- the token endpoint --------------------------------------------------------------------


@pytest.mark.parametrize("path", TOKEN_PATHS)
@pytest.mark.parametrize("as_json", [False, True], ids=["form", "json"])
async def test_client_credentials_token(
    client: httpx.AsyncClient, org: Org, path: str, as_json: bool
) -> None:
    key = await app_key(client, org)
    body: dict[str, Any] = (
        {"json": {"grant_type": "client_credentials"}}
        if as_json
        else {"data": {"grant_type": "client_credentials"}}
    )
    before = datetime.now(UTC)
    reply = await client.post(path, headers=basic(key["id"], key["secret"]), **body)
    assert reply.status_code == 200, reply.text
    token = reply.json()
    assert token["token_type"] == "bearer"
    assert token["expires_in"] == 172800
    assert token["refresh_token_expires_in"] == 31557600
    expires = datetime.fromisoformat(token["expiration_date"])
    assert abs((expires - before).total_seconds() - 172800) < 60
    assert datetime.fromisoformat(token["refresh_token_expiration_date"]) > expires
    assert token["access_token"].count(".") == 2  # a JWT
    # The token works on the push.
    reply = await push(client, token["access_token"], org, [GOOD])
    assert reply.status_code == 201, reply.text


async def test_refresh_token_grant(client: httpx.AsyncClient, org: Org) -> None:
    key = await app_key(client, org)
    first = await access_token(client, key)
    form = {"grant_type": "refresh_token", "scope": "data", "refresh_token": first["refresh_token"]}
    reply = await client.post("/v0/oauth2/token", data=form)
    assert reply.status_code == 200, reply.text
    second = reply.json()
    assert second["refresh_token"] != first["refresh_token"]
    reply = await push(client, second["access_token"], org, [GOOD])
    assert reply.status_code == 201, reply.text
    # A refresh token is used once.
    reply = await client.post("/v0/oauth2/token", data=form)
    assert reply.status_code == 401
    assert reply.json()["error"] == "invalid_grant"


@pytest.mark.parametrize("path", TOKEN_PATHS)
async def test_wrong_credentials_get_oauth2_error(
    client: httpx.AsyncClient, org: Org, path: str
) -> None:
    key = await app_key(client, org)
    for headers in (basic(key["id"], "wrong-secret"), basic("kunknown", key["secret"]), {}):
        reply = await client.post(path, data={"grant_type": "client_credentials"}, headers=headers)
        assert reply.status_code == 401, reply.text
        assert reply.json()["error"] == "invalid_client"
        assert reply.json()["error_description"]


async def test_revoked_key_gets_no_token(client: httpx.AsyncClient, org: Org) -> None:
    key = await app_key(client, org)
    reply = await client.delete(f"/v1/keys/{key['id']}", headers=org.headers)
    assert reply.status_code == 204
    reply = await client.post(
        "/v0/oauth2/token",
        data={"grant_type": "client_credentials"},
        headers=basic(key["id"], key["secret"]),
    )
    assert reply.status_code == 401
    assert reply.json()["error"] == "invalid_client"


async def test_unsupported_grant(client: httpx.AsyncClient, org: Org) -> None:
    key = await app_key(client, org)
    reply = await client.post(
        "/v0/oauth2/token", data={"grant_type": "password"}, headers=basic(key["id"], key["secret"])
    )
    assert reply.status_code == 400
    assert reply.json()["error"] == "unsupported_grant_type"


# --- the push: the document's payloads ------------------------------------------------------


def test_docstring_sample_is_the_documents_body() -> None:
    assert DOC_BODY == DOC_CURL_BODY


async def test_document_example_is_refused_whole(client: httpx.AsyncClient, org: Org) -> None:
    token = (await access_token(client, await app_key(client, org)))["access_token"]
    reply = await client.post(
        push_url(org.key, org.bucket),
        content=DOC_BODY,
        headers={"Authorization": f"bearer {token}", "Content-Type": CURL_FORM},
    )
    assert reply.status_code == 400, reply.text
    error = reply.json()
    assert error["error"] == "bad_request"
    assert [(e["index"], e["field"]) for e in error["errors"]] == [(2, "value")]
    assert "JSON number" in error["errors"][0]["reason"]
    assert '"1"' in error["errors"][0]["reason"]
    assert "item 2" in error["error_description"]
    assert not await stored_anything(client, org)


@pytest.mark.parametrize("content_type", ["application/json", CURL_FORM, None])
async def test_document_readings_stored_and_read_back(
    client: httpx.AsyncClient, org: Org, content_type: str | None
) -> None:
    token = (await access_token(client, await app_key(client, org)))["access_token"]
    body = json.dumps(json.loads(DOC_BODY)[:2], separators=(",", ":"))
    headers = {"Authorization": f"bearer {token}"}
    if content_type:
        headers["Content-Type"] = content_type
    reply = await client.post(push_url(org.key, org.bucket), content=body, headers=headers)
    assert reply.status_code == 201, reply.text
    assert reply.json() == {"points": 2, "series": 2}
    assert await points(client, org, "1") == [
        {"field": "none", "time": "2020-01-01T08:03:51.000000Z", "value": 19.9}
    ]
    assert await points(client, org, "2") == [
        {"field": "none", "time": "2020-01-01T08:03:51.000000Z", "value": 0.0}
    ]
    # Each sensor seen for the first time became a source of the ML project's bucket.
    reply = await client.get(f"/v1/buckets/{org.bucket}/sources", headers=org.headers)
    assert {s["key"] for s in reply.json()["sources"]} == {"1", "2"}


async def test_value_names_labels_and_precision(client: httpx.AsyncClient, org: Org) -> None:
    token = (await access_token(client, await app_key(client, org)))["access_token"]
    body = [
        {"sensorId": "acc-7", "valueName": "x", "date": "2024-03-01T10:00:00.000Z", "value": 0.12},
        {"sensorId": "acc-7", "valueName": "y", "date": "2024-03-01T10:00:00.000Z", "value": -9.81},
        {
            "sensorId": "acc-7",
            "valueName": "Z_axis",
            "date": "2024-03-01T10:00:00.000Z",
            "value": 3,
            "labels": ["maintenance", "shift B"],
            "precision": 0.01,
        },
        {
            "sensorId": "acc-7",
            "valueName": "x",
            "date": "2024-03-01T10:00:01.250Z",
            "value": 1.5e-7,
            "labels": {"phase": "startup"},
            "precision": 2,
        },
    ]
    reply = await push(client, token, org, body)
    assert reply.status_code == 201, reply.text
    assert reply.json() == {"points": 4, "series": 3}
    got = await points(client, org, "acc-7")
    assert sorted(got, key=lambda p: (p["field"], p["time"])) == [
        {
            "field": "Z_axis",
            "time": "2024-03-01T10:00:00.000000Z",
            "value": 3.0,
            "meta": {"labels": ["maintenance", "shift B"], "precision": 0.01},
        },
        {"field": "x", "time": "2024-03-01T10:00:00.000000Z", "value": 0.12},
        {
            "field": "x",
            "time": "2024-03-01T10:00:01.250000Z",
            "value": 1.5e-7,
            "meta": {"labels": {"phase": "startup"}, "precision": 2.0},
        },
        {"field": "y", "time": "2024-03-01T10:00:00.000000Z", "value": -9.81},
    ]


async def test_dates_with_offsets_and_without_zone_are_utc(
    client: httpx.AsyncClient, org: Org
) -> None:
    token = (await access_token(client, await app_key(client, org)))["access_token"]
    body = [
        {"sensorId": "s", "valueName": "a", "date": "2020-01-01T09:03:51.000+01:00", "value": 1},
        {"sensorId": "s", "valueName": "b", "date": "2020-01-01T08:03:51.000+0000", "value": 2},
        {"sensorId": "s", "valueName": "c", "date": "2020-01-01T08:03:51", "value": 3},
    ]
    reply = await push(client, token, org, body)
    assert reply.status_code == 201, reply.text
    got = await points(client, org, "s")
    assert {p["time"] for p in got} == {"2020-01-01T08:03:51.000000Z"}
    assert len(got) == 3


async def test_a_retried_push_does_not_duplicate(client: httpx.AsyncClient, org: Org) -> None:
    token = (await access_token(client, await app_key(client, org)))["access_token"]
    body = json.loads(DOC_BODY)[:2]
    for _ in range(2):
        reply = await push(client, token, org, body)
        assert reply.status_code == 201, reply.text
    assert len(await points(client, org, "1")) == 1


async def test_gzip_body(client: httpx.AsyncClient, org: Org) -> None:
    token = (await access_token(client, await app_key(client, org)))["access_token"]
    body = gzip.compress(json.dumps(json.loads(DOC_BODY)[:2]).encode())
    reply = await client.post(
        push_url(org.key, org.bucket),
        content=body,
        headers={"Authorization": f"Bearer {token}", "Content-Encoding": "gzip"},
    )
    assert reply.status_code == 201, reply.text
    assert len(await points(client, org, "2")) == 1


# --- the push: bad readings ------------------------------------------------------------------

GOOD = {"sensorId": "ok", "date": "2020-01-01T08:03:51.000Z", "value": 1.0}
BAD_READINGS: list[tuple[str, dict[str, Any], str]] = [
    ("string value", {**GOOD, "value": "3.14"}, "value"),
    ("null value", {**GOOD, "value": None}, "value"),
    ("boolean value", {**GOOD, "value": True}, "value"),
    ("infinite value", {**GOOD, "value": "__1e999__"}, "value"),
    ("missing value", {k: v for k, v in GOOD.items() if k != "value"}, "value"),
    ("missing date", {k: v for k, v in GOOD.items() if k != "date"}, "date"),
    ("missing sensorId", {k: v for k, v in GOOD.items() if k != "sensorId"}, "sensorId"),
    ("empty sensorId", {**GOOD, "sensorId": ""}, "sensorId"),
    ("numeric sensorId", {**GOOD, "sensorId": 1}, "sensorId"),
    ("bad date", {**GOOD, "date": "yesterday"}, "date"),
    ("numeric date", {**GOOD, "date": 1577865831000}, "date"),
    ("far future date", {**GOOD, "date": "2999-01-01T00:00:00Z"}, "date"),
    ("valueName with dash", {**GOOD, "valueName": "x-axis"}, "valueName"),
    ("empty valueName", {**GOOD, "valueName": ""}, "valueName"),
    ("string precision", {**GOOD, "precision": "2"}, "precision"),
    ("scalar labels", {**GOOD, "labels": 5}, "labels"),
    ("unknown name", {**GOOD, "unit": "C"}, "unit"),
]


def encode(items: list[Any]) -> str:
    return json.dumps(items).replace('"__1e999__"', "1e999")


@pytest.mark.parametrize(
    ("bad", "field"), [(b, f) for _, b, f in BAD_READINGS], ids=[n for n, _, _ in BAD_READINGS]
)
async def test_bad_reading_refused_naming_index_and_field(
    client: httpx.AsyncClient, org: Org, bad: dict[str, Any], field: str
) -> None:
    token = (await access_token(client, await app_key(client, org)))["access_token"]
    reply = await push(client, token, org, encode([GOOD, bad]))
    assert reply.status_code == 400, reply.text
    errors = reply.json()["errors"]
    assert [(e["index"], e["field"]) for e in errors] == [(1, field)]
    assert errors[0]["reason"]
    assert not await stored_anything(client, org)


async def test_every_bad_reading_is_listed(client: httpx.AsyncClient, org: Org) -> None:
    token = (await access_token(client, await app_key(client, org)))["access_token"]
    items = [GOOD] + [bad for _, bad, _ in BAD_READINGS] + [GOOD]
    reply = await push(client, token, org, encode(items))
    assert reply.status_code == 400, reply.text
    listed = [(e["index"], e["field"]) for e in reply.json()["errors"]]
    assert listed == [(i + 1, field) for i, (_, _, field) in enumerate(BAD_READINGS)]
    assert not await stored_anything(client, org)


async def test_several_problems_of_one_reading(client: httpx.AsyncClient, org: Org) -> None:
    token = (await access_token(client, await app_key(client, org)))["access_token"]
    bad = {"sensorId": "", "valueName": "a b", "date": "nope", "value": "1"}
    reply = await push(client, token, org, [bad])
    assert reply.status_code == 400
    fields = {e["field"] for e in reply.json()["errors"]}
    assert fields == {"sensorId", "valueName", "date", "value"}


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ("not json", "not valid JSON"),
        ('{"sensorId": "1", "date": "2020-01-01T00:00:00Z", "value": 1}', "JSON array"),
        ('[{"sensorId": "1", "date": "2020-01-01T00:00:00Z", "value": NaN}]', "not valid JSON"),
        ("[1]", "JSON object"),
    ],
)
async def test_malformed_bodies(client: httpx.AsyncClient, org: Org, body: str, words: str) -> None:
    token = (await access_token(client, await app_key(client, org)))["access_token"]
    reply = await push(client, token, org, body)
    assert reply.status_code == 400, reply.text
    assert reply.json()["error"] == "bad_request"
    assert words in reply.text


async def test_too_many_readings(client: httpx.AsyncClient, org: Org, services: Services) -> None:
    token = (await access_token(client, await app_key(client, org)))["access_token"]
    services.settings.max_points_per_request = 2
    reply = await push(client, token, org, [GOOD, GOOD, GOOD])
    assert reply.status_code == 413
    assert reply.json()["error"] == "request_too_large"


# --- the push: credentials and tenancy --------------------------------------------------------


async def test_expired_token_gets_401_then_renewal_works(
    client: httpx.AsyncClient, org: Org, services: Services
) -> None:
    key = await app_key(client, org)
    ttl = services.tokens.access_ttl_s
    services.tokens.access_ttl_s = -10  # minted already expired
    expired = await access_token(client, key)
    services.tokens.access_ttl_s = ttl
    reply = await push(client, expired["access_token"], org, [GOOD])
    assert reply.status_code == 401, reply.text
    assert reply.json()["error"] == "invalid_token"
    assert "expired" in reply.json()["error_description"]
    assert reply.headers["WWW-Authenticate"].lower().startswith("bearer")
    # What a DiagRAMS client does on 401: renew with the refresh token, then retry.
    reply = await client.post(
        "/v0/oauth2/token",
        data={
            "grant_type": "refresh_token",
            "scope": "data",
            "refresh_token": expired["refresh_token"],
        },
    )
    assert reply.status_code == 200, reply.text
    reply = await push(client, reply.json()["access_token"], org, [GOOD])
    assert reply.status_code == 201, reply.text


async def test_revoked_key_token_gets_401(client: httpx.AsyncClient, org: Org) -> None:
    key = await app_key(client, org)
    token = (await access_token(client, key))["access_token"]
    assert (await push(client, token, org, [GOOD])).status_code == 201
    reply = await client.delete(f"/v1/keys/{key['id']}", headers=org.headers)
    assert reply.status_code == 204
    reply = await push(client, token, org, [GOOD])
    assert reply.status_code == 401
    assert reply.json()["error"] == "invalid_token"


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "bearer not-a-token"}, {"Authorization": "Basic eDp5"}],
    ids=["none", "garbage", "basic"],
)
async def test_missing_or_bad_credentials(
    client: httpx.AsyncClient, org: Org, headers: dict[str, str]
) -> None:
    reply = await client.post(
        push_url(org.key, org.bucket), content=json.dumps([GOOD]), headers=headers
    )
    assert reply.status_code == 401
    assert reply.json()["error"] == "invalid_token"


async def test_another_organisations_id_reveals_nothing(
    client: httpx.AsyncClient, org: Org, other_org: Org
) -> None:
    """A token of `other_org` pushing to `org`'s id answers as an id that does not exist."""
    token = (await access_token(client, await app_key(client, other_org)))["access_token"]
    foreign = await push(client, token, org, [GOOD])
    missing = await client.post(
        push_url("no-such-org", org.bucket),
        content=json.dumps([GOOD]),
        headers={"Authorization": f"bearer {token}"},
    )
    assert foreign.status_code == missing.status_code == 404
    assert foreign.text.replace(org.key, "X") == missing.text.replace("no-such-org", "X")
    # Even when the project name is the other organisation's own bucket, and the body is bad.
    reply = await push(client, token, org, [{"value": "1"}], project=other_org.bucket)
    assert reply.status_code == 404
    assert reply.text.replace(org.key, "X") == missing.text.replace("no-such-org", "X")
    assert not await stored_anything(client, org)
    assert not await stored_anything(client, other_org)


async def test_another_organisations_project_is_not_found(
    client: httpx.AsyncClient, org: Org, other_org: Org
) -> None:
    token = (await access_token(client, await app_key(client, org)))["access_token"]
    foreign = await push(client, token, org, [GOOD], project=other_org.bucket)
    missing = await push(client, token, org, [GOOD], project="no-such-project")
    assert foreign.status_code == missing.status_code == 404
    assert foreign.text.replace(other_org.bucket, "X") == missing.text.replace(
        "no-such-project", "X"
    )
    assert not await stored_anything(client, other_org)


async def test_read_only_key_may_not_push(client: httpx.AsyncClient, org: Org) -> None:
    token = (await access_token(client, await app_key(client, org, ["data:read"])))["access_token"]
    reply = await push(client, token, org, [GOOD])
    assert reply.status_code == 403
    assert reply.json()["error"] == "access_denied"


async def test_key_limited_to_another_project(client: httpx.AsyncClient, org: Org) -> None:
    reply = await client.post("/v1/buckets", json={"key": "line-2"}, headers=org.headers)
    assert reply.status_code == 201
    key = await org.new_key(client, ["data:write"], bucket="line-2")
    token = (await access_token(client, key))["access_token"]
    assert (await push(client, token, org, [GOOD], project="line-2")).status_code == 201
    reply = await push(client, token, org, [GOOD])
    assert reply.status_code == 403
    assert not await stored_anything(client, org)


async def test_api_key_as_bearer_also_works(client: httpx.AsyncClient, org: Org) -> None:
    key = await app_key(client, org)
    reply = await client.post(
        push_url(org.key, org.bucket), content=json.dumps([GOOD]), headers=auth(key["key"])
    )
    assert reply.status_code == 201, reply.text


# --- the OpenAPI document ------------------------------------------------------------------


async def test_the_openapi_document_describes_what_is_served(
    client: httpx.AsyncClient, org: Org
) -> None:
    import jsonschema_rs

    reply = await client.get("/v0/openAPI")  # no credentials, as the vendor serves it
    assert reply.status_code == 200, reply.text
    document = reply.json()
    assert document["openapi"].startswith("3.")
    # The same operations as the server's whole document holds under /v0 (built from the app).
    whole = (await client.get("/openapi.json")).json()
    served = {(m, p) for p, ops in whole["paths"].items() if p.startswith("/v0/") for m in ops}
    assert {(m, p) for p, ops in document["paths"].items() for m in ops} == served
    assert {"/v0/oauth2/token", "/v0/openAPI"} <= set(document["paths"])
    schemes = document["components"]["securitySchemes"]
    token_op = document["paths"]["/v0/oauth2/token"]["post"]
    push_op = document["paths"]["/v0/organisations/{organisation_id}/data/{ml_project}"]["post"]
    for op in (token_op, push_op):
        assert all(name in schemes for req in op.get("security", []) for name in req)
    # A client written from the document: its example body, checked against its schema, pushed
    # with a token from its token route, gets its declared 201.
    content = push_op["requestBody"]["content"]["application/json"]
    example = content.get("example") or next(iter(content["examples"].values()))["value"]
    jsonschema_rs.validate(content["schema"], example)
    assert not jsonschema_rs.is_valid(content["schema"], [{"sensorId": "3", "value": "1"}])
    token = (await access_token(client, await app_key(client, org)))["access_token"]
    reply = await push(client, token, org, example)
    assert str(reply.status_code) in push_op["responses"] and reply.status_code == 201
