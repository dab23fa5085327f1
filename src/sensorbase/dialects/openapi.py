"""The JSON Schema fragments that routes declare in the OpenAPI document, in one place.

A route whose validator is hand-written declares what it takes here, built from the same
constants the validator checks (limits.py, times.py, query/spec.py), so the document says what
the server takes and the server takes what the document says:
`tests/api/test_openapi_conformance.py` runs schemathesis over the whole document to hold both.
A dialect's own grammar (Datacooee's quoted parameters, Madevo's records) is declared next to
its validator.

Patterns are ECMAScript regular expressions (what JSON Schema means) that Python's `re` reads
the same way: character classes are spelled out (`\\s` differs between the two), digits are
`[0-9]`.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.security import HTTPBasic

from sensorbase.limits import (
    MAX_ID,
    MAX_NAME_CHARS,
    MAX_OFFSET,
    MAX_TEXT_CHARS,
    NAME_PATTERN,
    TEXT_PATTERN,
)
from sensorbase.times import DURATION_PATTERN, EPOCH_PATTERN, WS

Schema = dict[str, Any]

# A bucket, source, field, signal or metric name (limits.name_problem).
NAME: Schema = {
    "type": "string",
    "minLength": 1,
    "maxLength": MAX_NAME_CHARS,
    "pattern": NAME_PATTERN,
    "description": f"1 to {MAX_NAME_CHARS} characters, not only spaces, no control characters",
}
TEXT: Schema = {"type": "string", "maxLength": MAX_TEXT_CHARS, "pattern": TEXT_PATTERN}
# RFC 3339, as `datetime.fromisoformat` reads it (a superset: also `+0000`, a space for `T`).
DATE_TIME: Schema = {"type": "string", "format": "date-time"}
# Any text with a character that is not blank (`text.strip()` is not empty).
NONBLANK: Schema = {"type": "string", "pattern": rf"^[\s\S]*[^{WS[1:-1]}][\s\S]*$"}
ID: Schema = {"type": "integer", "minimum": 1, "maximum": MAX_ID}
OFFSET: Schema = {"type": "integer", "minimum": 0, "maximum": MAX_OFFSET, "default": 0}
# A relative period ending now (times.parse_duration_us).
DURATION: Schema = {
    "type": "string",
    "pattern": DURATION_PATTERN,
    "description": "A period ending now: 1 to 999999999 of us, ms, s, m, h, d or w (15m, 6h, 7d)",
}
# A query bound (times.parse_instant): ISO 8601 with a zone, or an epoch number whose unit
# (s, ms, us, ns) its magnitude tells.
INSTANT: Schema = {
    "anyOf": [
        DATE_TIME,
        {"type": "string", "pattern": EPOCH_PATTERN},
    ],
    "description": "ISO 8601 with a zone, or epoch s, ms, us or ns (told apart by magnitude)",
}
# A yes/no query parameter, as the native write's `partial` (and Datacooee's flags) read it.
YES_NO = "(?:[Tt][Rr][Uu][Ee]|1|[Yy][Ee][Ss]|[Oo][Nn]|[Ff][Aa][Ll][Ss][Ee]|0|[Nn][Oo]|[Oo][Ff][Ff])"
FLAG: Schema = {
    "type": "string",
    "pattern": f"^{YES_NO}$",
    "description": "true or false (also 1/0, yes/no, on/off, in any case)",
}


def any_case(word: str) -> str:
    """A pattern matching `word` in any case of its ASCII letters (what `.lower()` compares:
    ECMAScript patterns have no case-insensitive flag inside)."""
    return "".join(f"[{c.upper()}{c.lower()}]" if c.isalpha() else c for c in word)


def comma_list(words: tuple[str, ...] | list[str]) -> Schema:
    """A string of `words` separated by commas, blanks around each and empty items ignored:
    `min,max`, ` min , ,max` (query.spec.split_list)."""
    word = f"(?:{'|'.join(words)})"
    item = f"{WS}*(?:{word}{WS}*)?"
    return {"type": "string", "pattern": f"^{item}(?:,{item})*$"}


def parameter(
    name: str,
    schema: Schema,
    description: str | None = None,
    *,
    required: bool = False,
    where: str = "query",
) -> Schema:
    """An OpenAPI parameter object, for a route that reads its parameters itself (an array
    is sent as the parameter repeated: OpenAPI's default form and explode)."""
    declared: Schema = {"name": name, "in": where, "required": required, "schema": schema}
    if description:
        declared["description"] = description
    return declared


def body(schema: Schema, example: Any = None, *media_types: str, required: bool = True) -> Schema:
    """`openapi_extra` declaring the request body of a route that reads its body itself."""
    content: Schema = {"schema": schema}
    if example is not None:
        content["example"] = example
    return {
        "requestBody": {
            "required": required,
            "content": {kind: dict(content) for kind in media_types or ("application/json",)},
        }
    }


def nullable(schema: Schema) -> Schema:
    """`schema`, or null (a JSON member given as null counts as absent)."""
    return {"anyOf": [schema, {"type": "null"}]}


def form_or_json(schema: Schema, example: Any = None, *, form_first: bool = True) -> Schema:
    """`openapi_extra` of a body taken as a form or as a JSON object, both of `schema`; in a
    form every member is a string, sent once (dialects/body.py `parse_form`)."""
    form = "application/x-www-form-urlencoded"
    declared = body(schema, example, form, "application/json")
    content = declared["requestBody"]["content"]
    content[form]["schema"] = {**schema, "additionalProperties": {"type": "string"}}
    if not form_first:
        declared["requestBody"]["content"] = dict(reversed(content.items()))
    return declared


# An OAuth2 token request (RFC 6749 §4.4 and §6; dialects/oauth.py). The client authenticates
# with HTTP Basic (key id, secret), or sends `client_id` and `client_secret` in the body.
TOKEN_REQUEST = form_or_json(
    {
        "type": "object",
        "required": ["grant_type"],
        "oneOf": [
            {
                "properties": {
                    "grant_type": {"const": "client_credentials"},
                    # Read as text whatever their JSON type, and only without HTTP Basic.
                    "client_id": {"description": "The key's id"},
                    "client_secret": {"description": "The key's secret"},
                }
            },
            {
                "required": ["refresh_token"],
                "properties": {
                    "grant_type": {"const": "refresh_token"},
                    "refresh_token": {"type": "string", "minLength": 1},
                },
            },
        ],
    },
    {"grant_type": "client_credentials"},
)


class _DeclaredBasic(HTTPBasic):
    """HTTP Basic, declared in the document and read by the route itself (dialects/oauth.py
    answers a malformed header in OAuth2's shape, which FastAPI's own reading would not)."""

    async def __call__(self, request: Request) -> None:  # type: ignore[override]
        return None


# A token endpoint's client credentials: optional, as `client_id` and `client_secret` in the
# body, or a refresh token, do without (the route adds `{}` to its security requirements).
BASIC_CLIENT = _DeclaredBasic(
    scheme_name="Key id and secret",
    description="HTTP Basic: an API key's id and secret (or the whole key as the secret)",
    auto_error=False,
)
TOKEN_ROUTE = {**TOKEN_REQUEST, "security": [{}]}
