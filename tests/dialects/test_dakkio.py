"""The dakkio dialect over HTTP: the document's examples (curl, Node.js, Python, Go, Arduino) get
exactly the replies it shows, every error case gets dakkio's body, and everything lands in the
canonical series that the native API reads."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from sensorbase.api.app import build_app
from sensorbase.services import Services
from sensorbase.settings import Settings
from sensorbase.storage import open_store
from tests.conftest import Org

BUCKET = "507f1f77bcf86cd799439011"
SOURCE = "507f1f77bcf86cd799439012"
HEX24 = re.compile(r"^[0-9a-f]{24}$")
ISO_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{3})?Z$")

# The document's curl example, as sent (the dialect module's docstring carries it too).
CURL_BODY = {
    "bucketId": BUCKET,
    "dataSourceId": SOURCE,
    "timestamp": "2024-01-15T10:30:00Z",
    "values": {"temperature": 22.5, "humidity": 65, "pressure": 1013.25},
    "metadata": {"deviceId": "ESP32-001", "location": "Living Room", "batteryLevel": 85},
}
# The document's reply, but for the two values the server mints (_id, createdAt).
CURL_REPLY = {
    "message": "Data point ingested successfully",
    "dataPoint": {
        "bucketId": BUCKET,
        "dataSourceId": SOURCE,
        "timestamp": "2024-01-15T10:30:00Z",
        "values": {"temperature": 22.5, "humidity": 65, "pressure": 1013.25},
        "metadata": {"deviceId": "ESP32-001", "location": "Living Room", "batteryLevel": 85},
    },
}
VALIDATION = {"error": "Validation Error", "message": "Invalid request parameters"}


def test_the_module_docstring_carries_the_sample() -> None:
    import sensorbase.dialects.dakkio as module

    doc = module.__doc__ or ""
    sample = doc.split("X-API-Key: dakkio_a1b2c3d4e5f6g7h8i9j0k1l2m3n4o5p6\n", 1)[1]
    assert json.loads(sample.split("\n\n", 1)[0]) == CURL_BODY


def xkey(key: str) -> dict[str, str]:
    return {"X-API-Key": key, "Content-Type": "application/json"}


def minted(reply: dict[str, Any]) -> dict[str, Any]:
    """The reply without _id and createdAt, after checking their form."""
    point = dict(reply["dataPoint"])
    assert HEX24.match(point.pop("_id"))
    assert ISO_MS.match(point.pop("createdAt"))
    return {**reply, "dataPoint": point}


@pytest.fixture
async def dakkio(client: httpx.AsyncClient, org: Org) -> Org:
    """The document's bucket and data source, created natively with their 24-hex ids."""
    reply = await client.post("/v1/buckets", json={"key": BUCKET}, headers=org.headers)
    assert reply.status_code == 201, reply.text
    reply = await client.post(
        f"/v1/buckets/{BUCKET}/sources", json={"key": SOURCE}, headers=org.headers
    )
    assert reply.status_code == 201, reply.text
    return org


async def native_points(
    client: httpx.AsyncClient, org: Org, source: str = SOURCE, bucket: str = BUCKET
) -> dict[str, list[dict[str, Any]]]:
    reply = await client.get(
        "/v1/query", params={"bucket": bucket, "source": source}, headers=org.headers
    )
    if reply.status_code == 404 and "no series" in reply.text:  # nothing was ever stored
        return {}
    assert reply.status_code == 200, reply.text
    return {s["field"]: s["points"] for s in reply.json()["series"]}


async def dakkio_key(client: httpx.AsyncClient, org: Org, kind: str, bucket: str = BUCKET) -> str:
    reply = await client.post(
        f"/api/buckets/{bucket}/keys",
        json={"name": f"{kind}-key", "type": kind},
        headers=xkey(org.admin),
    )
    assert reply.status_code == 201, reply.text
    return str(reply.json()["apiKey"]["key"])


# --- the document's examples ------------------------------------------------------------


async def test_curl_example_gets_the_documented_reply(
    client: httpx.AsyncClient, dakkio: Org
) -> None:
    reply = await client.post("/api/data", json=CURL_BODY, headers=xkey(dakkio.admin))
    assert reply.status_code == 201, reply.text
    assert minted(reply.json()) == CURL_REPLY
    # The canonical series: source = data source, field = value name, metadata as meta.
    meta = {"meta": CURL_BODY["metadata"]}
    assert await native_points(client, dakkio) == {
        "humidity": [{"time": "2024-01-15T10:30:00.000000Z", "value": 65.0, **meta}],
        "pressure": [{"time": "2024-01-15T10:30:00.000000Z", "value": 1013.25, **meta}],
        "temperature": [{"time": "2024-01-15T10:30:00.000000Z", "value": 22.5, **meta}],
    }


async def test_the_point_id_is_stable(client: httpx.AsyncClient, dakkio: Org) -> None:
    first = await client.post("/api/data", json=CURL_BODY, headers=xkey(dakkio.admin))
    again = await client.post("/api/data", json=CURL_BODY, headers=xkey(dakkio.admin))
    assert first.json()["dataPoint"]["_id"] == again.json()["dataPoint"]["_id"]
    query = await client.post(
        "/api/data/query", json={"bucketId": BUCKET}, headers=xkey(dakkio.admin)
    )
    [row] = query.json()["data"]
    assert row["_id"] == first.json()["dataPoint"]["_id"]


def _now_examples() -> list[tuple[str, str]]:
    now = datetime.now(UTC).replace(tzinfo=None)
    return [
        # Node.js: new Date().toISOString(), at a millisecond other than .000 (Sensorbase
        # answers a whole second as `...:37Z`, as the document's example does)
        ("node", now.replace(microsecond=457_000).isoformat(timespec="milliseconds") + "Z"),
        # Python: datetime.utcnow().isoformat() + 'Z' (microseconds, or none at .000000)
        ("python", now.replace(microsecond=123456).isoformat() + "Z"),
        # Go: time.Now().UTC().Format(time.RFC3339)
        ("go", now.strftime("%Y-%m-%dT%H:%M:%SZ")),
    ]


@pytest.mark.parametrize("client_name", ["node", "python", "go"])
async def test_node_python_go_examples(
    client: httpx.AsyncClient, dakkio: Org, client_name: str
) -> None:
    timestamp = dict(_now_examples())[client_name]
    body = {**CURL_BODY, "timestamp": timestamp}
    # The Go example marshals its struct: same names, compact JSON, every field present.
    content = json.dumps(body, separators=(",", ":")).encode()
    reply = await client.post("/api/data", content=content, headers=xkey(dakkio.admin))
    assert reply.status_code == 201, reply.text
    expected = {**CURL_REPLY, "dataPoint": {**CURL_REPLY["dataPoint"], "timestamp": timestamp}}
    assert minted(reply.json()) == expected
    points = await native_points(client, dakkio)
    assert [p["value"] for p in points["temperature"]] == [22.5]
    sent = datetime.fromisoformat(timestamp)
    assert datetime.fromisoformat(points["temperature"][0]["time"]) == sent


async def test_arduino_example(client: httpx.AsyncClient, dakkio: Org) -> None:
    # What ArduinoJson's serializeJson writes for the sketch (floats, no batteryLevel).
    payload = (
        '{"bucketId":"507f1f77bcf86cd799439011","dataSourceId":"507f1f77bcf86cd799439012",'
        '"timestamp":"2024-01-15T10:30:00Z","values":{"temperature":21.75,"humidity":48.5,'
        '"pressure":1009.25},"metadata":{"deviceId":"ESP32-001","location":"Living Room"}}'
    )
    headers = {"Content-Type": "application/json", "X-API-Key": dakkio.admin}
    reply = await client.post("/api/data", content=payload, headers=headers)
    assert reply.status_code == 201, reply.text
    assert minted(reply.json())["dataPoint"] == {
        "bucketId": BUCKET,
        "dataSourceId": SOURCE,
        "timestamp": "2024-01-15T10:30:00Z",
        "values": {"temperature": 21.75, "humidity": 48.5, "pressure": 1009.25},
        "metadata": {"deviceId": "ESP32-001", "location": "Living Room"},
    }
    assert (await native_points(client, dakkio))["pressure"][0]["value"] == 1009.25


async def test_timestamp_defaults_to_now_and_offsets_are_converted(
    client: httpx.AsyncClient, dakkio: Org
) -> None:
    body = {k: v for k, v in CURL_BODY.items() if k not in ("timestamp", "metadata")}
    before = datetime.now(UTC)
    reply = await client.post("/api/data", json=body, headers=xkey(dakkio.admin))
    assert reply.status_code == 201, reply.text
    stamped = datetime.fromisoformat(reply.json()["dataPoint"]["timestamp"])
    assert before - timedelta(seconds=1) <= stamped <= datetime.now(UTC)
    assert reply.json()["dataPoint"]["metadata"] == {}
    # A Go struct without omitempty sends null metadata: accepted as absent.
    body = {**CURL_BODY, "timestamp": "2024-01-15t12:30:00+02:00", "metadata": None}
    reply = await client.post("/api/data", json=body, headers=xkey(dakkio.admin))
    assert reply.status_code == 201, reply.text
    assert reply.json()["dataPoint"]["timestamp"] == "2024-01-15T10:30:00Z"


# --- batch ------------------------------------------------------------------------------

BATCH_BODY = {
    "bucketId": BUCKET,
    "dataPoints": [
        {
            "dataSourceId": SOURCE,
            "timestamp": "2024-01-15T10:00:00Z",
            "values": {"temperature": 22.0, "humidity": 68},
            "metadata": {"deviceId": "ESP32-001"},
        },
        {
            "dataSourceId": SOURCE,
            "timestamp": "2024-01-15T10:05:00Z",
            "values": {"temperature": 22.2, "humidity": 67},
            "metadata": {"deviceId": "ESP32-001"},
        },
        {
            "dataSourceId": SOURCE,
            "timestamp": "2024-01-15T10:10:00Z",
            "values": {"temperature": 22.5, "humidity": 65},
            "metadata": {"deviceId": "ESP32-001"},
        },
    ],
}


async def test_batch_example(client: httpx.AsyncClient, dakkio: Org) -> None:
    write_key = await dakkio_key(client, dakkio, "write")
    assert write_key.startswith("dakkio_w_")
    reply = await client.post("/api/data/batch", json=BATCH_BODY, headers=xkey(write_key))
    assert reply.status_code == 201, reply.text
    assert reply.json() == {"message": "Batch ingested successfully", "count": 3}
    points = await native_points(client, dakkio)
    assert [p["value"] for p in points["temperature"]] == [22.0, 22.2, 22.5]
    assert [p["time"][11:16] for p in points["humidity"]] == ["10:00", "10:05", "10:10"]


def _points(n: int) -> list[dict[str, Any]]:
    start = datetime(2024, 1, 15, tzinfo=UTC)
    return [
        {
            "dataSourceId": SOURCE,
            "timestamp": (start + timedelta(seconds=i)).isoformat().replace("+00:00", "Z"),
            "values": {"temperature": float(i)},
        }
        for i in range(n)
    ]


async def test_batch_of_1000_is_accepted_and_1001_refused(
    client: httpx.AsyncClient, dakkio: Org
) -> None:
    reply = await client.post(
        "/api/data/batch",
        json={"bucketId": BUCKET, "dataPoints": _points(1000)},
        headers=xkey(dakkio.admin),
    )
    assert reply.status_code == 201, reply.text
    assert reply.json()["count"] == 1000
    reply = await client.post(
        "/api/data/batch",
        json={"bucketId": BUCKET, "dataPoints": _points(1001)},
        headers=xkey(dakkio.admin),
    )
    assert reply.status_code == 400
    assert reply.json() == {
        **VALIDATION,
        "details": [
            {
                "path": ["body", "dataPoints"],
                "message": "Array must contain at most 1000 element(s) (received 1001); "
                "split the batch",
            }
        ],
    }
    reply = await client.post(
        "/api/data/batch",
        json={"bucketId": BUCKET, "dataPoints": []},
        headers=xkey(dakkio.admin),
    )
    assert reply.status_code == 400
    assert reply.json()["details"] == [
        {"path": ["body", "dataPoints"], "message": "Array must contain at least 1 element(s)"}
    ]


async def test_batch_is_atomic_and_lists_every_bad_point(
    client: httpx.AsyncClient, dakkio: Org
) -> None:
    points = _points(4)
    points[1]["values"] = {"temperature": "hot"}
    points[3]["timestamp"] = 1705314600000
    reply = await client.post(
        "/api/data/batch",
        json={"bucketId": BUCKET, "dataPoints": points},
        headers=xkey(dakkio.admin),
    )
    assert reply.status_code == 400
    assert reply.json() == {
        **VALIDATION,
        "details": [
            {
                "path": ["body", "dataPoints", 1, "values", "temperature"],
                "message": "Expected number, received string",
            },
            {
                "path": ["body", "dataPoints", 3, "timestamp"],
                "message": "Expected string, received number",
            },
        ],
    }
    # Unknown data sources: 404 naming each one; nothing of the batch is stored.
    points = _points(3)
    points[2]["dataSourceId"] = "aaaaaaaaaaaaaaaaaaaaaaaa"
    reply = await client.post(
        "/api/data/batch",
        json={"bucketId": BUCKET, "dataPoints": points},
        headers=xkey(dakkio.admin),
    )
    assert reply.status_code == 404
    assert reply.json() == {
        "error": "Not Found",
        "message": "Data source not found",
        "details": [
            {"path": ["body", "dataPoints", 2, "dataSourceId"], "message": "Data source not found"}
        ],
    }
    assert await native_points(client, dakkio) == {}


# --- validation and errors -------------------------------------------------------------


async def test_missing_bucket_id_gets_the_documented_body(
    client: httpx.AsyncClient, dakkio: Org
) -> None:
    body = {k: v for k, v in CURL_BODY.items() if k != "bucketId"}
    reply = await client.post("/api/data", json=body, headers=xkey(dakkio.admin))
    assert reply.status_code == 400
    assert reply.json() == {
        **VALIDATION,
        "details": [
            {"path": ["body", "bucketId"], "message": "Expected string, received undefined"}
        ],
    }


@pytest.mark.parametrize(
    ("change", "details"),
    [
        (
            {"values": {}},
            [{"path": ["body", "values"], "message": "At least one value is required"}],
        ),
        (
            {"values": {"temperature": "22.5", "ok": True, "fine": 1}},
            [
                {
                    "path": ["body", "values", "temperature"],
                    "message": "Expected number, received string",
                },
                {"path": ["body", "values", "ok"], "message": "Expected number, received boolean"},
            ],
        ),
        (
            {"timestamp": "15/01/2024", "metadata": "kitchen", "dataSourceId": 12},
            [
                {"path": ["body", "dataSourceId"], "message": "Expected string, received number"},
                {
                    "path": ["body", "timestamp"],
                    "message": "Invalid datetime (expected ISO 8601, e.g. 2024-01-15T10:30:00Z)",
                },
                {"path": ["body", "metadata"], "message": "Expected object, received string"},
            ],
        ),
        (
            {"timestamp": 1705314600000, "values": [22.5]},
            [
                {"path": ["body", "timestamp"], "message": "Expected string, received number"},
                {"path": ["body", "values"], "message": "Expected object, received array"},
            ],
        ),
        (
            {"timestamp": "2999-01-01T00:00:00Z"},
            [
                {
                    "path": ["body", "timestamp"],
                    "message": "Timestamp must not be more than 604800 s in the future",
                }
            ],
        ),
    ],
)
async def test_every_problem_is_listed_and_nothing_stored(
    client: httpx.AsyncClient, dakkio: Org, change: dict[str, Any], details: list[Any]
) -> None:
    reply = await client.post("/api/data", json={**CURL_BODY, **change}, headers=xkey(dakkio.admin))
    assert reply.status_code == 400, reply.text
    assert reply.json() == {**VALIDATION, "details": details}
    assert await native_points(client, dakkio) == {}


async def test_numbers_beyond_float64_are_named(client: httpx.AsyncClient, dakkio: Org) -> None:
    raw = (
        f'{{"bucketId":"{BUCKET}","dataSourceId":"{SOURCE}",'
        f'"values":{{"a":1e400,"b":-1{"0" * 400},"c":1}}}}'
    )
    reply = await client.post("/api/data", content=raw, headers=xkey(dakkio.admin))
    assert reply.status_code == 400
    assert reply.json() == {
        **VALIDATION,
        "details": [
            {"path": ["body", "values", "a"], "message": "Number must be finite"},
            {"path": ["body", "values", "b"], "message": "Number must be finite"},
        ],
    }
    deep = await client.post("/api/data", content=b"[" * 100_000, headers=xkey(dakkio.admin))
    assert deep.status_code == 400
    assert deep.json()["details"] == [
        {
            "path": ["body"],
            "message": "Invalid JSON: the body nests arrays and objects more than 201 levels deep",
        }
    ]


async def test_invalid_json(client: httpx.AsyncClient, dakkio: Org) -> None:
    reply = await client.post("/api/data", content=b"{nope", headers=xkey(dakkio.admin))
    assert reply.status_code == 400
    body = reply.json()
    assert body["error"] == "Validation Error"
    assert body["details"][0]["path"] == ["body"]
    assert body["details"][0]["message"].startswith("Invalid JSON")


UNAUTHORIZED = {"error": "Unauthorized", "message": "Invalid or missing API key"}


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-API-Key": ""},
        {"X-API-Key": "dakkio_a1b2c3d4e5f6g7h8i9j0k1l2m3n4o5p6"},
        {"X-API-Key": "sb_k0000000000000000_wrong"},
        {"X-API-Key": "dakkio_w_k0000000000000000_wrong"},
    ],
)
async def test_missing_or_invalid_key(
    client: httpx.AsyncClient, dakkio: Org, headers: dict[str, str]
) -> None:
    reply = await client.post("/api/data", json=CURL_BODY, headers=headers)
    assert reply.status_code == 401
    assert reply.json() == UNAUTHORIZED
    for name in ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"):
        assert reply.headers[name].isdigit()


async def test_revoked_key_is_unauthorized(client: httpx.AsyncClient, dakkio: Org) -> None:
    reply = await client.post(
        f"/api/buckets/{BUCKET}/keys",
        json={"name": "device", "type": "write"},
        headers=xkey(dakkio.admin),
    )
    created = reply.json()["apiKey"]
    ok = await client.post("/api/data", json=CURL_BODY, headers=xkey(created["key"]))
    assert ok.status_code == 201, ok.text
    reply = await client.delete(
        f"/api/buckets/{BUCKET}/keys/{created['_id']}", headers=xkey(dakkio.admin)
    )
    assert reply.status_code == 200
    assert reply.json() == {"message": "API key deleted successfully"}
    reply = await client.post("/api/data", json=CURL_BODY, headers=xkey(created["key"]))
    assert reply.status_code == 401
    assert reply.json() == UNAUTHORIZED
    again = await client.delete(
        f"/api/buckets/{BUCKET}/keys/{created['_id']}", headers=xkey(dakkio.admin)
    )
    assert again.status_code == 404
    assert again.json() == {"error": "Not Found", "message": "API key not found"}


async def test_unknown_bucket_and_data_source(
    client: httpx.AsyncClient, dakkio: Org, other_org: Org
) -> None:
    body = {**CURL_BODY, "bucketId": "aaaaaaaaaaaaaaaaaaaaaaaa"}
    reply = await client.post("/api/data", json=body, headers=xkey(dakkio.admin))
    assert reply.status_code == 404
    assert reply.json() == {"error": "Not Found", "message": "Bucket not found"}
    # Another organisation's bucket is indistinguishable from a missing one.
    reply = await client.post("/api/data", json=CURL_BODY, headers=xkey(other_org.admin))
    assert reply.status_code == 404
    assert reply.json() == {"error": "Not Found", "message": "Bucket not found"}
    body = {**CURL_BODY, "dataSourceId": "bbbbbbbbbbbbbbbbbbbbbbbb"}
    reply = await client.post("/api/data", json=body, headers=xkey(dakkio.admin))
    assert reply.status_code == 404
    assert reply.json() == {"error": "Not Found", "message": "Data source not found"}
    query = {"bucketId": BUCKET, "dataSourceId": "bbbbbbbbbbbbbbbbbbbbbbbb"}
    reply = await client.post("/api/data/query", json=query, headers=xkey(dakkio.admin))
    assert reply.status_code == 404
    assert reply.json() == {"error": "Not Found", "message": "Data source not found"}


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        ("/api/data", CURL_BODY, 201),
        ("/api/data", {}, 400),
        ("/api/data", {**CURL_BODY, "bucketId": "nope"}, 404),
        ("/api/data/query", {"bucketId": BUCKET}, 200),
        ("/api/buckets", {"name": "Production Sensors"}, 201),
    ],
)
async def test_every_reply_carries_rate_limit_headers(
    client: httpx.AsyncClient, dakkio: Org, path: str, body: dict[str, Any], status: int
) -> None:
    reply = await client.post(path, json=body, headers=xkey(dakkio.admin))
    assert reply.status_code == status, reply.text
    assert int(reply.headers["X-RateLimit-Limit"]) == 100_000
    assert int(reply.headers["X-RateLimit-Remaining"]) < 100_000
    assert int(reply.headers["X-RateLimit-Reset"]) > 1_700_000_000


async def test_another_organisations_objects_are_not_found(
    client: httpx.AsyncClient, dakkio: Org, other_org: Org
) -> None:
    them = xkey(other_org.admin)
    for method, path, body in (
        ("GET", f"/api/buckets/{BUCKET}", None),
        ("GET", f"/api/buckets/{BUCKET}/keys", None),
        ("GET", f"/api/buckets/{BUCKET}/sources", None),
        ("POST", f"/api/buckets/{BUCKET}/sources", {"name": "x", "schema": {}}),
        ("POST", f"/api/buckets/{BUCKET}/keys", {"name": "x", "type": "read"}),
        ("POST", "/api/data/query", {"bucketId": BUCKET}),
        ("POST", "/api/data/batch", BATCH_BODY),
    ):
        reply = await client.request(method, path, json=body, headers=them)
        assert reply.status_code == 404, (path, reply.text)
        assert reply.json() == {"error": "Not Found", "message": "Bucket not found"}
    listing = await client.get("/api/buckets", headers=them)
    assert [b["_id"] for b in listing.json()["buckets"]] == ["plant"]


async def test_permissions(client: httpx.AsyncClient, dakkio: Org) -> None:
    read_key = await dakkio_key(client, dakkio, "read")
    assert read_key.startswith("dakkio_r_")
    reply = await client.post("/api/data", json=CURL_BODY, headers=xkey(read_key))
    assert reply.status_code == 403
    assert reply.json() == {
        "error": "Forbidden",
        "message": "Insufficient permissions. Required: data:write (a write or admin key)",
    }
    # A read key queries its bucket; it manages nothing.
    reply = await client.post("/api/data/query", json={"bucketId": BUCKET}, headers=xkey(read_key))
    assert reply.status_code == 200, reply.text
    for method, path in (
        ("GET", "/api/buckets"),
        ("GET", f"/api/buckets/{BUCKET}"),
        ("GET", f"/api/buckets/{BUCKET}/sources"),
        ("GET", f"/api/buckets/{BUCKET}/keys"),
    ):
        reply = await client.request(method, path, headers=xkey(read_key))
        assert reply.status_code == 403, (path, reply.text)
        assert reply.json()["error"] == "Forbidden"
    # A write key is limited to its bucket.
    other = await client.post(
        "/api/buckets", json={"name": "elsewhere"}, headers=xkey(dakkio.admin)
    )
    other_id = other.json()["bucket"]["_id"]
    write_key = await dakkio_key(client, dakkio, "write")
    reply = await client.post(
        "/api/data", json={**CURL_BODY, "bucketId": other_id}, headers=xkey(write_key)
    )
    assert reply.status_code == 403
    assert reply.json() == {
        "error": "Forbidden",
        "message": "API key does not have access to this bucket",
    }
    reply = await client.post(
        "/api/data/query", json={"bucketId": other_id}, headers=xkey(read_key)
    )
    assert reply.status_code == 403


async def test_a_native_key_works_as_issued(client: httpx.AsyncClient, dakkio: Org) -> None:
    native = await dakkio.new_key(client, ["data:write"], BUCKET)
    reply = await client.post("/api/data", json=CURL_BODY, headers=xkey(native["key"]))
    assert reply.status_code == 201, reply.text
    # ... and in dakkio's spelling.
    spelled = native["key"].replace("sb_", "dakkio_w_", 1)
    reply = await client.post("/api/data", json=CURL_BODY, headers=xkey(spelled))
    assert reply.status_code == 201, reply.text


async def test_schema_refuses_unknown_fields_and_wrong_types(
    client: httpx.AsyncClient, dakkio: Org
) -> None:
    reply = await client.post(
        f"/api/buckets/{BUCKET}/sources",
        json={
            "name": "Room A",
            "schema": {
                "temperature": {"type": "number", "unit": "celsius"},
                "humidity": "number",
                "door": {"type": "boolean"},
            },
        },
        headers=xkey(dakkio.admin),
    )
    assert reply.status_code == 201, reply.text
    source = reply.json()["dataSource"]
    body = {
        "bucketId": BUCKET,
        "dataSourceId": source["_id"],
        "values": {"temperature": 21.0, "pressure": 1000, "door": 1},
    }
    reply = await client.post("/api/data", json=body, headers=xkey(dakkio.admin))
    assert reply.status_code == 400
    assert reply.json() == {
        **VALIDATION,
        "details": [
            {
                "path": ["body", "values", "pressure"],
                "message": "Field 'pressure' is not defined in the data source schema "
                "(defined: door, humidity, temperature)",
            },
            {
                "path": ["body", "values", "door"],
                "message": "Field 'door' is declared as boolean in the data source schema; "
                "Sensorbase stores numeric values only",
            },
        ],
    }
    assert await native_points(client, dakkio, source["_id"]) == {}
    body["values"] = {"temperature": 21.0, "humidity": 40}
    reply = await client.post("/api/data", json=body, headers=xkey(dakkio.admin))
    assert reply.status_code == 201, reply.text
    native = await client.get(
        f"/v1/buckets/{BUCKET}/sources/{source['_id']}", headers=dakkio.headers
    )
    fields = {f["field"]: f["unit"] for f in native.json()["fields"]}
    assert fields == {"humidity": None, "temperature": "celsius"}


# --- query ------------------------------------------------------------------------------


async def test_query_reads_dakkio_and_native_points(client: httpx.AsyncClient, dakkio: Org) -> None:
    reply = await client.post("/api/data/batch", json=BATCH_BODY, headers=xkey(dakkio.admin))
    assert reply.status_code == 201, reply.text
    native = {
        "bucket": BUCKET,
        "points": [
            {
                "source": SOURCE,
                "fields": {"temperature": 23.0, "humidity": 60.5},
                "time": "2024-01-15T10:15:00Z",
                "meta": {"via": "native"},
            },
            {
                "source": SOURCE,
                "field": "co2",
                "value": 412,
                "time": "2024-01-15T10:10:00Z",
                "latitude": 48.85,
                "longitude": 2.35,
            },
        ],
    }
    reply = await client.post("/v1/write", json=native, headers=dakkio.headers)
    assert reply.status_code == 200, reply.text
    reply = await client.post(
        "/api/data/query",
        json={
            "bucketId": BUCKET,
            "dataSourceId": SOURCE,
            "filters": {"startTime": "2024-01-15T10:05:00Z", "endTime": "2024-01-15T10:15:00Z"},
        },
        headers=xkey(dakkio.admin),
    )
    assert reply.status_code == 200, reply.text
    body = reply.json()
    rows = [{k: v for k, v in r.items() if k != "_id"} for r in body["data"]]
    assert rows == [
        {
            "bucketId": BUCKET,
            "dataSourceId": SOURCE,
            "timestamp": "2024-01-15T10:05:00Z",
            "values": {"temperature": 22.2, "humidity": 67},
            "metadata": {"deviceId": "ESP32-001"},
        },
        {
            "bucketId": BUCKET,
            "dataSourceId": SOURCE,
            "timestamp": "2024-01-15T10:10:00Z",
            "values": {"temperature": 22.5, "humidity": 65, "co2": 412},
            "metadata": {"deviceId": "ESP32-001", "latitude": 48.85, "longitude": 2.35},
        },
        {
            "bucketId": BUCKET,
            "dataSourceId": SOURCE,
            "timestamp": "2024-01-15T10:15:00Z",
            "values": {"temperature": 23, "humidity": 60.5},
            "metadata": {"via": "native"},
        },
    ]
    assert all(HEX24.match(r["_id"]) for r in body["data"])
    assert body["metadata"] == {
        "count": 3,
        "limit": 1000,
        "offset": 0,
        "hasMore": False,
        "bucketId": BUCKET,
        "dataSourceId": SOURCE,
        "startTime": "2024-01-15T10:05:00Z",
        "endTime": "2024-01-15T10:15:00Z",
        "aggregation": None,
        "groupBy": None,
        "downsamplingApplied": False,
    }


async def test_query_pages_with_limit_and_offset(client: httpx.AsyncClient, dakkio: Org) -> None:
    await client.post("/api/data/batch", json=BATCH_BODY, headers=xkey(dakkio.admin))
    seen = []
    for offset in (0, 2):
        reply = await client.post(
            "/api/data/query",
            json={"bucketId": BUCKET, "filters": {"limit": 2, "offset": offset, "order": "desc"}},
            headers=xkey(dakkio.admin),
        )
        assert reply.status_code == 200, reply.text
        seen.append(reply.json())
    assert [r["timestamp"][11:16] for r in seen[0]["data"]] == ["10:10", "10:05"]
    assert seen[0]["metadata"]["hasMore"] is True
    assert [r["timestamp"][11:16] for r in seen[1]["data"]] == ["10:00"]
    assert seen[1]["metadata"]["hasMore"] is False


async def test_query_aggregation_and_group_by(client: httpx.AsyncClient, dakkio: Org) -> None:
    body = {"bucketId": BUCKET, "dataPoints": _points(150)}  # 10:00:00 .. 10:02:29 on 15 Jan
    body["dataPoints"] = [
        {**p, "timestamp": p["timestamp"].replace("T00:", "T10:")} for p in body["dataPoints"]
    ]
    assert (await client.post("/api/data/batch", json=body, headers=xkey(dakkio.admin))).is_success
    reply = await client.post(
        "/api/data/query",
        json={"bucketId": BUCKET, "aggregation": "avg", "groupBy": "minute"},
        headers=xkey(dakkio.admin),
    )
    assert reply.status_code == 200, reply.text
    assert [(r["timestamp"], r["values"]) for r in reply.json()["data"]] == [
        ("2024-01-15T10:00:00Z", {"temperature": 29.5}),
        ("2024-01-15T10:01:00Z", {"temperature": 89.5}),
        ("2024-01-15T10:02:00Z", {"temperature": 134.5}),
    ]
    assert reply.json()["metadata"]["aggregation"] == "avg"
    assert reply.json()["metadata"]["downsamplingApplied"] is False
    reply = await client.post(
        "/api/data/query",
        json={"bucketId": BUCKET, "aggregation": "count"},
        headers=xkey(dakkio.admin),
    )
    assert [r["values"] for r in reply.json()["data"]] == [{"temperature": 150}]
    reply = await client.post(
        "/api/data/query",
        json={
            "bucketId": BUCKET,
            "aggregation": "max",
            "groupBy": "hour",
            "filters": {"endTime": "2024-01-15T10:00:59Z"},
        },
        headers=xkey(dakkio.admin),
    )
    assert [(r["timestamp"], r["values"]) for r in reply.json()["data"]] == [
        ("2024-01-15T10:00:00Z", {"temperature": 59})
    ]


async def test_automatic_downsampling(client: httpx.AsyncClient, dakkio: Org) -> None:
    start = datetime(2024, 1, 15, tzinfo=UTC)
    points = [
        {
            "dataSourceId": SOURCE,
            "timestamp": (start + timedelta(minutes=i)).isoformat().replace("+00:00", "Z"),
            "values": {"temperature": float(i % 60)},
        }
        for i in range(600)  # one per minute for ten hours
    ]
    reply = await client.post(
        "/api/data/batch",
        json={"bucketId": BUCKET, "dataPoints": points},
        headers=xkey(dakkio.admin),
    )
    assert reply.status_code == 201, reply.text
    reply = await client.post(
        "/api/data/query", json={"bucketId": BUCKET}, headers=xkey(dakkio.admin)
    )
    body = reply.json()
    assert body["metadata"]["downsamplingApplied"] is True
    assert body["metadata"]["groupBy"] == "hour"
    assert body["metadata"]["aggregation"] == "avg"
    assert [r["values"] for r in body["data"]] == [{"temperature": 29.5}] * 10
    assert body["data"][0]["timestamp"] == "2024-01-15T00:00:00Z"
    # 500 rows or fewer come back raw.
    reply = await client.post(
        "/api/data/query",
        json={"bucketId": BUCKET, "filters": {"limit": 500}},
        headers=xkey(dakkio.admin),
    )
    assert reply.json()["metadata"]["downsamplingApplied"] is False
    assert len(reply.json()["data"]) == 500
    # A data source created with downsampling: false always answers raw points.
    reply = await client.post(
        f"/api/buckets/{BUCKET}/sources",
        json={"name": "raw", "schema": {"temperature": "number"}, "downsampling": False},
        headers=xkey(dakkio.admin),
    )
    raw_id = reply.json()["dataSource"]["_id"]
    assert reply.json()["dataSource"]["downsampling"] is False
    for p in points:
        p["dataSourceId"] = raw_id
    await client.post(
        "/api/data/batch",
        json={"bucketId": BUCKET, "dataPoints": points},
        headers=xkey(dakkio.admin),
    )
    reply = await client.post(
        "/api/data/query",
        json={"bucketId": BUCKET, "dataSourceId": raw_id},
        headers=xkey(dakkio.admin),
    )
    assert reply.json()["metadata"]["downsamplingApplied"] is False
    assert len(reply.json()["data"]) == 600


async def test_query_validation(client: httpx.AsyncClient, dakkio: Org) -> None:
    reply = await client.post(
        "/api/data/query",
        json={
            "aggregation": "median",
            "groupBy": "year",
            "filters": {"startTime": "yesterday", "limit": 0},
        },
        headers=xkey(dakkio.admin),
    )
    assert reply.status_code == 400
    assert reply.json() == {
        **VALIDATION,
        "details": [
            {"path": ["body", "bucketId"], "message": "Expected string, received undefined"},
            {
                "path": ["body", "filters", "startTime"],
                "message": "Invalid datetime (expected ISO 8601, e.g. 2024-01-15T10:30:00Z)",
            },
            {
                "path": ["body", "filters", "limit"],
                "message": "Number must be greater than or equal to 1",
            },
            {
                "path": ["body", "aggregation"],
                "message": "Invalid enum value. Expected 'avg' | 'min' | 'max' | 'sum' | 'count', "
                "received 'median'",
            },
            {
                "path": ["body", "groupBy"],
                "message": "Invalid enum value. Expected 'minute' | 'hour' | 'day' | 'week' | "
                "'month', received 'year'",
            },
        ],
    }


# --- buckets, data sources, keys -------------------------------------------------------


async def test_buckets(client: httpx.AsyncClient, org: Org) -> None:
    admin = xkey(org.admin)
    reply = await client.post(
        "/api/buckets",
        json={"name": "Production Sensors", "description": "Plant 1"},
        headers=admin,
    )
    assert reply.status_code == 201, reply.text
    created = reply.json()
    bucket = created["bucket"]
    assert created["message"] == "Bucket created successfully"
    assert HEX24.match(bucket["_id"])
    assert {k: bucket[k] for k in ("name", "description", "organizationId")} == {
        "name": "Production Sensors",
        "description": "Plant 1",
        "organizationId": "acme",
    }
    assert ISO_MS.match(bucket["createdAt"]) and bucket["updatedAt"] == bucket["createdAt"]
    # The native API sees it under its 24-hex key.
    native = await client.get(f"/v1/buckets/{bucket['_id']}", headers=org.headers)
    assert native.status_code == 200 and native.json()["name"] == "Production Sensors"
    duplicate = await client.post(
        "/api/buckets", json={"name": "Production Sensors"}, headers=admin
    )
    assert duplicate.status_code == 409
    assert duplicate.json() == {
        "error": "Conflict",
        "message": "Bucket with this name already exists",
    }
    reply = await client.post("/api/buckets", json={"name": "x" * 101}, headers=admin)
    assert reply.status_code == 400
    assert reply.json()["details"] == [
        {"path": ["body", "name"], "message": "String must contain at most 100 character(s)"}
    ]
    # Listing pages: the org has 'farm' (native) and this one.
    page = await client.get("/api/buckets", params={"limit": 1}, headers=admin)
    assert page.status_code == 200
    assert page.json()["pagination"] == {"limit": 1, "offset": 0, "total": 2, "hasMore": True}
    assert [b["_id"] for b in page.json()["buckets"]] == ["farm"]
    assert page.json()["data"] == page.json()["buckets"]
    page = await client.get("/api/buckets", params={"limit": 1, "offset": 1}, headers=admin)
    assert page.json()["pagination"]["hasMore"] is False
    assert [b["_id"] for b in page.json()["buckets"]] == [bucket["_id"]]
    bad = await client.get("/api/buckets", params={"limit": 5000}, headers=admin)
    assert bad.status_code == 400
    assert bad.json()["details"] == [
        {"path": ["query", "limit"], "message": "Number must be less than or equal to 1000"}
    ]
    # One bucket, with its stats.
    await client.post(
        f"/api/buckets/{bucket['_id']}/sources", json={"name": "s", "schema": {}}, headers=admin
    )
    write_key = await dakkio_key(client, org, "write", bucket["_id"])
    assert write_key
    reply = await client.get(f"/api/buckets/{bucket['_id']}", headers=admin)
    assert reply.status_code == 200, reply.text
    stats = {"dataSourceCount": 1, "dataPointCount": 0, "apiKeyCount": 1}
    assert reply.json()["bucket"]["stats"] == stats
    assert reply.json()["stats"] == stats
    missing = await client.get("/api/buckets/cccccccccccccccccccccccc", headers=admin)
    assert missing.status_code == 404
    assert missing.json() == {"error": "Not Found", "message": "Bucket not found"}


async def test_data_sources(client: httpx.AsyncClient, dakkio: Org) -> None:
    write_key = await dakkio_key(client, dakkio, "write")
    body = {
        "name": "Temperature Sensor - Room A",
        "type": "sensor",
        "description": "DHT22",
        "schema": {"temperature": {"type": "number", "unit": "celsius", "description": "air"}},
    }
    reply = await client.post(f"/api/buckets/{BUCKET}/sources", json=body, headers=xkey(write_key))
    assert reply.status_code == 201, reply.text
    source = reply.json()["dataSource"]
    assert HEX24.match(source["_id"])
    assert {k: v for k, v in source.items() if k not in ("_id", "createdAt", "updatedAt")} == {
        "bucketId": BUCKET,
        "name": "Temperature Sensor - Room A",
        "type": "sensor",
        "description": "DHT22",
        "schema": {"temperature": {"type": "number", "unit": "celsius", "description": "air"}},
        "downsampling": True,
    }
    again = await client.post(f"/api/buckets/{BUCKET}/sources", json=body, headers=xkey(write_key))
    assert again.status_code == 409
    assert again.json()["error"] == "Conflict"
    bad = await client.post(
        f"/api/buckets/{BUCKET}/sources",
        json={"name": "", "schema": {"t": {"type": "float"}}, "downsampling": "yes"},
        headers=xkey(write_key),
    )
    assert bad.status_code == 400
    assert bad.json()["details"] == [
        {"path": ["body", "name"], "message": "String must contain at least 1 character(s)"},
        {
            "path": ["body", "schema", "t", "type"],
            "message": "Invalid enum value. Expected 'number' | 'string' | 'boolean', "
            "received 'float'",
        },
        {"path": ["body", "downsampling"], "message": "Expected boolean, received string"},
    ]
    missing_schema = await client.post(
        f"/api/buckets/{BUCKET}/sources", json={"name": "n"}, headers=xkey(write_key)
    )
    assert missing_schema.json()["details"] == [
        {"path": ["body", "schema"], "message": "Expected object, received undefined"}
    ]
    listing = await client.get(
        f"/api/buckets/{BUCKET}/sources", params={"limit": 1}, headers=xkey(write_key)
    )
    assert listing.status_code == 200, listing.text
    body = listing.json()
    assert body["pagination"] == {"limit": 1, "offset": 0, "total": 2, "hasMore": True}
    # The natively created source shows with dakkio's defaults.
    assert body["dataSources"][0]["_id"] == SOURCE
    assert body["dataSources"][0]["type"] == "sensor"
    assert body["dataSources"][0]["schema"] == {}
    assert body["dataSources"][0]["downsampling"] is True


async def test_keys(client: httpx.AsyncClient, dakkio: Org) -> None:
    admin = xkey(dakkio.admin)
    reply = await client.post(
        f"/api/buckets/{BUCKET}/keys", json={"name": "ESP32-001", "type": "write"}, headers=admin
    )
    assert reply.status_code == 201, reply.text
    created = reply.json()
    key = created["apiKey"]
    assert created["key"] == key["key"]
    assert key["key"].startswith(f"dakkio_w_{key['_id']}_")
    assert HEX24.match(key["_id"])
    assert key["type"] == "write" and key["bucketId"] == BUCKET
    duplicate = await client.post(
        f"/api/buckets/{BUCKET}/keys", json={"name": "ESP32-001", "type": "read"}, headers=admin
    )
    assert duplicate.status_code == 409
    bad = await client.post(
        f"/api/buckets/{BUCKET}/keys", json={"name": "x", "type": "admin"}, headers=admin
    )
    assert bad.status_code == 400
    assert bad.json()["details"] == [
        {
            "path": ["body", "type"],
            "message": "Invalid enum value. Expected 'write' | 'read', received 'admin'",
        }
    ]
    listing = await client.get(f"/api/buckets/{BUCKET}/keys", headers=admin)
    assert listing.status_code == 200
    [listed] = listing.json()["apiKeys"]
    assert "key" not in listed  # the plaintext is shown once
    assert listed["_id"] == key["_id"] and listed["keyPrefix"] == f"dakkio_w_{key['_id']}"
    # The key is a Sensorbase key: the native API sees it, limited to the bucket.
    whoami = await client.get("/v1/whoami", headers={"Authorization": f"Bearer {key['key']}"})
    assert whoami.status_code == 401  # native Bearer takes the sb_ spelling ...
    token = "sb_" + key["key"].split("_", 2)[2]
    whoami = await client.get("/v1/whoami", headers={"Authorization": f"Bearer {token}"})
    assert whoami.json()["bucket"] == BUCKET
    assert whoami.json()["scopes"] == ["data:write", "data:read"]


# --- rate limits ------------------------------------------------------------------------


@pytest.fixture
def limited(tmp_path: Path) -> Iterator[Services]:
    settings = Settings(data_dir=tmp_path / "limited", rate_limit="3/minute")
    svc = Services(settings, open_store(settings))
    svc.bootstrap_key = svc.start()  # type: ignore[attr-defined]
    yield svc
    svc.stop()


@pytest.fixture
async def limited_client(limited: Services) -> AsyncIterator[httpx.AsyncClient]:
    app = build_app(limited, manage_lifecycle=False)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://sensorbase") as c:
        yield c


async def test_rate_limit_headers_and_429(
    limited_client: httpx.AsyncClient, limited: Services
) -> None:
    key = limited.bootstrap_key.token  # type: ignore[attr-defined]
    replies = [
        await limited_client.post("/api/buckets", json={"name": f"b{i}"}, headers=xkey(key))
        for i in range(4)
    ]
    assert [r.status_code for r in replies] == [201, 201, 201, 429]
    assert [r.headers["X-RateLimit-Remaining"] for r in replies] == ["2", "1", "0", "0"]
    assert all(r.headers["X-RateLimit-Limit"] == "3" for r in replies)
    over = replies[-1]
    reset = int(over.headers["X-RateLimit-Reset"])
    assert int(over.headers["Retry-After"]) >= 1
    resets_at = datetime.fromtimestamp(reset, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert over.json() == {
        "error": "Too Many Requests",
        "message": f"Rate limit exceeded. Resets at {resets_at}",
    }
