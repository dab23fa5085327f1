"""The kinds of value the native API's request models take, each with the limits of
`sensorbase.limits` (so a name declared here obeys the same rule as one that appears on a first
write), declared in the OpenAPI document as the server checks them."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from pydantic import AfterValidator, Field

from sensorbase.limits import (
    BLANK,
    MAX_CATALOG_META_BYTES,
    MAX_NAME_CHARS,
    MAX_TEXT_CHARS,
    NAME_PATTERN,
    TEXT_PATTERN,
)
from sensorbase.times import DURATION_PATTERN, parse_duration_us

_encoder = msgspec.json.Encoder()

# A key that is a URL path segment (organisations, buckets, sources): no slash, no leading
# space, no control characters.
KEY_PATTERN = rf"^[^/\x00-\x1f\x7f{BLANK}][^/\x00-\x1f\x7f]{{0,{MAX_NAME_CHARS - 1}}}$"
KEY_HELP = f"1 to {MAX_NAME_CHARS} characters: no slash, no control characters"


def _duration(text: str) -> str:
    parse_duration_us(text)  # (its ValueError names what is wrong)
    return text


Duration = Annotated[str, Field(pattern=DURATION_PATTERN), AfterValidator(_duration)]
Retention = Annotated[
    Duration | None,
    Field(
        description="How long points are kept after their time: 90d, 12w, 6h "
        "(1 to 999999999 of us, ms, s, m, h, d or w); null: forever (docs/lifecycle.md)",
        examples=["90d"],
    ),
]


def json_number(value: Any) -> Any:
    """A `mode="before"` field validator for JSON Schema's integer and number: a boolean or a
    string is neither (pydantic's lax mode takes `false` as 0 and "5" as 5), while 5.0 is
    still the integer 5."""
    if isinstance(value, bool | str):
        raise ValueError("must be a JSON number, not a string or a boolean")
    return value


def _small_meta(meta: dict[str, Any]) -> dict[str, Any]:
    size = len(_encoder.encode(meta))
    if size > MAX_CATALOG_META_BYTES:
        raise ValueError(f"must be at most {MAX_CATALOG_META_BYTES} bytes as JSON (got {size})")
    return meta


Key = Annotated[str, Field(pattern=KEY_PATTERN, description=KEY_HELP)]
Name = Annotated[
    str,
    Field(
        pattern=NAME_PATTERN,
        min_length=1,
        max_length=MAX_NAME_CHARS,
        description=f"1 to {MAX_NAME_CHARS} characters, not only spaces, no control characters",
    ),
]
Text = Annotated[str, Field(max_length=MAX_TEXT_CHARS, pattern=TEXT_PATTERN)]
Meta = Annotated[
    dict[str, Any],
    AfterValidator(_small_meta),
    Field(description=f"Any JSON object, at most {MAX_CATALOG_META_BYTES} bytes"),
]


def keys_are_names(schema: dict[str, Any]) -> None:
    """`json_schema_extra` of a `dict[Name, V]` field: pydantic declares the keys' pattern as
    `patternProperties`, which lets any other key through with any value; the server refuses
    them, which JSON Schema says with `propertyNames` and `additionalProperties`."""
    for branch in schema.get("anyOf", [schema]):
        declared = branch.pop("patternProperties", None)
        if declared:
            [(pattern, value)] = declared.items()
            branch["propertyNames"] = {**branch.get("propertyNames", {}), "pattern": pattern}
            branch["additionalProperties"] = value
