"""The one body reader and decoder (dialects/body.py): I-JSON, strict decompression, media types
and forms, checked on their own and through the routes that use them."""

from __future__ import annotations

import gzip
import json
import zlib
from collections.abc import AsyncIterator

import httpx
import msgspec
import pytest

from sensorbase.dialects.body import (
    MAX_JSON_DEPTH,
    body_of,
    decode_fast,
    parse_form,
    parse_json,
    require_media_type,
)
from sensorbase.errors import InvalidInput, PayloadTooLarge, UnsupportedMediaType
from tests.conftest import Org, auth


async def _chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


async def read(body: bytes, encoding: str | None, limit: int = 1 << 20) -> bytes:
    return await body_of(_chunks(body), str(len(body)), encoding, limit)


def test_the_depth_limit_is_the_documented_one() -> None:
    deep = b"[" * MAX_JSON_DEPTH + b"]" * MAX_JSON_DEPTH
    assert parse_json(deep) is not None
    for body in (b"[" + deep + b"]", b'{"a":' * (MAX_JSON_DEPTH + 1) + b"1" + b"}" * 202):
        with pytest.raises(InvalidInput, match=f"more than {MAX_JSON_DEPTH} levels"):
            parse_json(body)


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (b'{"value": 1, "value": 2}', "'value' appears twice"),
        (b'[{"a": {"b": 1, "b": 1}}]', "'b' appears twice"),
        (b'"\\ud800"', "without its pair"),
        (b'"\\udc00x"', "without its pair"),
        (b'"\xed\xa0\x80"', "not valid UTF-8"),
        (b'"\xff"', "not valid UTF-8"),
        (b"[NaN]", "NaN and Infinity"),
        (b"[-Infinity]", "NaN and Infinity"),
        (b'"a\x01b"', "not valid JSON"),
        (b"{} x", "not valid JSON"),
        (b"", "the body is empty"),
    ],
)
def test_what_is_not_i_json_is_refused_naming_why(body: bytes, words: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        parse_json(body)
    assert words in refused.value.detail or words in refused.value.problems[0].reason


def test_a_repeated_name_is_named_with_its_place() -> None:
    with pytest.raises(InvalidInput) as refused:
        parse_json(b'{\n  "value": 1,\n  "value": 2}')
    problem = refused.value.problems[0]
    assert problem.field == "value"
    assert "line 3" in problem.reason


def test_a_byte_order_mark_is_ignored_and_pairs_are_kept() -> None:
    assert parse_json(b'\xef\xbb\xbf{"a": "\\ud83d\\ude00"}') == {"a": "\U0001f600"}


class Lean(msgspec.Struct, omit_defaults=True):
    field: str
    value: float
    source: str | None = None


@pytest.mark.parametrize(
    "body",
    [
        b'[{"field": "t", "value": 1, "value": 2}]',
        b'[{"field": "t", "field": "u", "value": 2}]',
        # A repeated name hidden beside an escaped colon: the count alone would balance.
        b'[{"field": "a\\u003a", "value": 1, "value": 2}]',
    ],
)
def test_the_hot_path_finds_repeated_names_too(body: bytes) -> None:
    with pytest.raises(InvalidInput, match="appears twice"):
        decode_fast(body, msgspec.json.Decoder(list[Lean]))


def test_the_hot_path_takes_colons_in_strings_and_explicit_nulls() -> None:
    decoder = msgspec.json.Decoder(list[Lean])
    assert decode_fast(b'[{"field": "a:b", "value": 1, "source": null}]', decoder) == [
        Lean("a:b", 1.0)
    ]


async def test_gzip_members_are_read_whole_and_nothing_after() -> None:
    two = gzip.compress(b'{"a":') + gzip.compress(b" 1}")
    assert await read(two, "gzip") == b'{"a": 1}'
    assert await read(zlib.compress(b"[1]"), "deflate") == b"[1]"
    raw = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    assert await read(raw.compress(b"[2]") + raw.flush(), "deflate") == b"[2]"
    with pytest.raises(InvalidInput, match="cut short"):
        await read(gzip.compress(b"[1, 2, 3]")[:-4], "gzip")
    with pytest.raises(InvalidInput, match="follow the end"):
        await read(gzip.compress(b"[1]") + b"junk", "gzip")
    with pytest.raises(PayloadTooLarge):
        await read(gzip.compress(b" " * 5000), "gzip", limit=4096)


@pytest.mark.parametrize("coding", ["br", "zstd", "compress", "gzip, br"])
async def test_unknown_codings_are_415(coding: str) -> None:
    with pytest.raises(UnsupportedMediaType, match="not supported"):
        await read(b"[]", coding)


def test_media_types() -> None:
    assert require_media_type("application/json; charset=utf-8") == "application/json"
    assert require_media_type("application/vnd.api+json") == "application/vnd.api+json"
    assert require_media_type(None) is None
    with pytest.raises(UnsupportedMediaType, match="send Content-Type: application/json"):
        require_media_type("application/x-www-form-urlencoded")
    with pytest.raises(UnsupportedMediaType, match="missing"):
        require_media_type(None, ("application/json",), missing_ok=False)


def test_a_form_names_a_parameter_sent_twice() -> None:
    assert parse_form(b"grant_type=client_credentials&scope=") == {
        "grant_type": "client_credentials",
        "scope": "",
    }
    with pytest.raises(InvalidInput) as refused:
        parse_form(b"grant_type=password&grant_type=client_credentials")
    assert refused.value.problems[0].field == "grant_type"
    with pytest.raises(InvalidInput):
        parse_form(b"a=%ff")


@pytest.mark.parametrize("path", ["/v1/auth/token", "/v0/oauth2/token"])
async def test_token_endpoints_refuse_a_repeated_parameter(
    client: httpx.AsyncClient, org: Org, path: str
) -> None:
    key = await org.new_key(client, ["data:write"])
    reply = await client.post(
        path,
        content=b"grant_type=password&grant_type=client_credentials",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        auth=(key["id"], key["secret"]),
    )
    assert reply.status_code == 400, reply.text
    assert reply.json()["error"] == "invalid_request"
    assert "grant_type" in reply.json()["error_description"]


async def test_a_write_refused_for_its_encoding_stores_nothing(
    client: httpx.AsyncClient, org: Org
) -> None:
    body = json.dumps([{"bucket": org.bucket, "source": "s", "field": "t", "value": 1}])
    reply = await client.post(
        "/v1/write",
        content=gzip.compress(body.encode()),
        headers={**org.headers, "Content-Encoding": "br"},
    )
    assert reply.status_code == 415
    assert reply.headers["content-type"] == "application/problem+json"
    gone = await client.get(f"/v1/buckets/{org.bucket}", headers=auth(org.admin))
    assert gone.json()["stats"]["points"] == 0
