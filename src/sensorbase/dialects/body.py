"""Request bodies, read and decoded one way for every route.

Reading (`read_body`, `body_of`): at most `max_bytes` (413), counted after decompression.
`Content-Encoding` gzip (x-gzip) and deflate are decompressed strictly: a stream cut short, or
followed by anything but another gzip member, is 400; identity is taken as sent; any other
coding (br, zstd, ...) is 415, never stored as if it were the plain body.

Media types (`require_media_type`): each route says which it takes; anything else is 415 with
the type to send. A form or multipart body is never read as JSON.

Decoding (`parse_json`, `decode_json`, `decode_fast`) accepts I-JSON (RFC 7493) and nothing
else, and refuses with 400 naming the problem:

- a name repeated in one object (`{"value": 1, "value": 2}`): the duplicate is named;
- nesting deeper than `MAX_JSON_DEPTH` arrays and objects (a thousand-deep body used to blow
  the interpreter's stack);
- a lone UTF-16 surrogate escape (`"\\ud800"`) or bytes that are not UTF-8 (UTF-8-encoded
  surrogates included): no string that reaches a database or a reply is invalid Unicode;
- raw control characters in strings, NaN, Infinity, trailing bytes.

The checks are jiter's (a maintained Rust parser), which costs about twice msgspec's decoding.
The one hot body, the native write's common shape, is decoded by msgspec alone and proven
free of repeated names without parsing again: every name in JSON is followed by a colon, and a
colon elsewhere can only sit inside a string, where it comes back out when the decoded value is
encoded again (escapes aside: a body with a `\\u` escape takes the full check). So when the
sent body and the re-encoded value hold as many colons, no object lost a repeated name.
Measured on a 5,000-point body: msgspec decodes it in ~1.8 ms, encoding it again and counting
costs ~0.3 ms, jiter's check ~3.6 ms. The native write counts the colons of its decoded points
without encoding them (`check_names`: members and colons in names, from lists it builds anyway),
which brings the check to about a fifth of that.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import AsyncIterable, Iterable
from typing import Any, TypeVar
from urllib.parse import parse_qsl

import jiter
import msgspec
from fastapi import Request

from sensorbase.errors import (
    InvalidInput,
    PayloadTooLarge,
    Problem,
    UnsupportedMediaType,
)

T = TypeVar("T")

MAX_JSON_DEPTH = 201  # jiter's limit (arrays and objects); tests/dialects/test_body.py pins it
JSON_TYPES = ("application/json", "+json")  # application/json and any application/*+json
FORM = "application/x-www-form-urlencoded"
_BOM = b"\xef\xbb\xbf"
_POSITION = re.compile(r" at line (\d+) column (\d+)$")
_DUPLICATE = re.compile(r'^Detected duplicate key "(.*)"$')
_NON_FINITE = re.compile(rb"\b(?:NaN|Infinity)\b")
_encoder = msgspec.json.Encoder()


# --- reading -----------------------------------------------------------------------------


async def read_body(request: Request, max_bytes: int) -> bytes:
    """The body, decompressed as its Content-Encoding says, refused with 413 past `max_bytes`."""
    headers = request.headers
    return await body_of(
        request.stream(),
        headers.get("content-length"),
        headers.get("content-encoding"),
        max_bytes,
    )


async def body_of(
    chunks: AsyncIterable[bytes], declared: str | None, encoding: str | None, max_bytes: int
) -> bytes:
    codings = _codings(encoding)
    if (
        declared is not None
        and declared.isascii()
        and declared.isdigit()
        and int(declared) > max_bytes
    ):
        raise PayloadTooLarge(f"the body is {declared} bytes; the limit is {max_bytes}")
    parts, size = [], 0
    async for chunk in chunks:
        size += len(chunk)
        if size > max_bytes:
            raise PayloadTooLarge(f"the body exceeds the limit of {max_bytes} bytes")
        parts.append(chunk)
    body = parts[0] if len(parts) == 1 else b"".join(parts)
    for coding in reversed(codings):  # undone in the reverse of the order applied
        body = _inflate(body, coding, max_bytes)
    return body


def _codings(header: str | None) -> list[str]:
    """The content codings a header names, in the order applied; 415 for one not taken."""
    if header is None:
        return []
    codings = []
    for part in header.split(","):
        coding = part.strip().lower()
        if coding in ("", "identity"):
            continue
        if coding not in ("gzip", "x-gzip", "deflate"):
            raise UnsupportedMediaType(
                f"Content-Encoding '{part.strip()}' is not supported: send gzip, deflate or "
                "an uncompressed body"
            )
        codings.append(coding)
    return codings


def _inflate(body: bytes, coding: str, max_bytes: int) -> bytes:
    """`body` decompressed, whole or refused: every gzip member to its end and nothing after."""
    gzip = coding != "deflate"
    name = "gzip" if gzip else "deflate"
    wbits = 16 + zlib.MAX_WBITS if gzip else zlib.MAX_WBITS
    if not gzip and body[:1] and (body[0] & 0x0F) != 8:
        wbits = -zlib.MAX_WBITS  # raw deflate, which some clients send as "deflate"
    out: list[bytes] = []
    size = 0
    rest = body
    while True:
        inflater = zlib.decompressobj(wbits)
        try:
            chunk = inflater.decompress(rest, max_bytes + 1 - size)
        except zlib.error as exc:
            raise InvalidInput(f"the body is not valid {name} data ({exc})") from None
        size += len(chunk)
        if size > max_bytes or inflater.unconsumed_tail:
            raise PayloadTooLarge(f"the decompressed body exceeds the limit of {max_bytes} bytes")
        out.append(chunk)
        if not inflater.eof:
            raise InvalidInput(f"the {name} body is cut short: its stream does not end")
        rest = inflater.unused_data
        if not rest:
            break
        if not (gzip and rest[:2] == b"\x1f\x8b"):
            raise InvalidInput(f"{len(rest)} bytes follow the end of the {name} stream")
    return out[0] if len(out) == 1 else b"".join(out)


# --- media types ---------------------------------------------------------------------------


def media_type(content_type: str | None) -> str | None:
    """`application/json; charset=utf-8` → `application/json`; None when absent or blank."""
    if content_type is None:
        return None
    kind = content_type.split(";", 1)[0].strip().lower()
    return kind or None


def require_media_type(
    content_type: str | None,
    accepted: tuple[str, ...] = JSON_TYPES,
    *,
    missing_ok: bool = True,
    send: str = "application/json",
) -> str | None:
    """The body's media type if the route takes it, else 415 telling what to send. `accepted`
    holds exact types and suffixes (`+json`); `missing_ok`: a body without Content-Type is
    taken too (as the route's first type)."""
    kind = media_type(content_type)
    if kind is None:
        if missing_ok:
            return None
        raise UnsupportedMediaType(f"Content-Type is missing: send Content-Type: {send}")
    for wanted in accepted:
        if kind == wanted or (wanted.startswith("+") and kind.endswith(wanted)):
            return kind
    raise UnsupportedMediaType(
        f"Content-Type '{content_type}' is not accepted here: send Content-Type: {send}"
    )


def is_json_type(content_type: str | None) -> bool:
    kind = media_type(content_type)
    return kind is not None and (kind == "application/json" or kind.endswith("+json"))


# --- forms -------------------------------------------------------------------------------------


def parse_form(raw: bytes) -> dict[str, str]:
    """An application/x-www-form-urlencoded body. A name sent twice is refused, naming it (RFC
    6749 §3.1: "Request and response parameters MUST NOT be included more than once"), as are
    bytes that are not UTF-8 once percent-decoded."""
    try:
        pairs = parse_qsl(raw.decode("ascii"), keep_blank_values=True, errors="strict")
    except (UnicodeDecodeError, ValueError):
        raise InvalidInput(
            "the form body is not valid: send UTF-8, percent-encoded",
            [Problem("is not a valid application/x-www-form-urlencoded body")],
        ) from None
    form: dict[str, str] = {}
    for name, value in pairs:
        if name in form:
            raise InvalidInput(
                f"the parameter '{name}' is sent more than once",
                [Problem("is sent more than once; each parameter may appear once", name)],
            )
        form[name] = value
    return form


# --- JSON ------------------------------------------------------------------------------------


def parse_json(raw: bytes) -> Any:
    """The JSON value of a body (dicts, lists, str, int, float, bool, None), checked as I-JSON.

    Numbers: an integer of any size is an int (callers check it fits what they store); a
    float beyond float64 (1e400) is ±inf, which every value check refuses as not finite."""
    if raw.startswith(_BOM):  # RFC 8259 §8.1: a parser may ignore it; some Windows tools send it
        raw = raw[len(_BOM) :]
    try:
        return jiter.from_json(
            raw, allow_inf_nan=False, catch_duplicate_keys=True, cache_mode="keys"
        )
    except ValueError as exc:
        raise json_error(str(exc), raw) from None


def decode_json(raw: bytes, decoder: msgspec.json.Decoder[T]) -> T:
    """`raw` checked as I-JSON, then decoded by a typed msgspec decoder (whose
    msgspec.ValidationError, if any, the caller turns into its own problems)."""
    if raw.startswith(_BOM):
        raw = raw[len(_BOM) :]
    parse_json(raw)
    try:
        return decoder.decode(raw)
    except msgspec.DecodeError as exc:
        if isinstance(exc, msgspec.ValidationError):
            raise
        raise json_error(str(exc), raw) from None


def decode_fast(raw: bytes, decoder: msgspec.json.Decoder[T]) -> T:
    """A hot body decoded by msgspec alone, its I-JSON checks done without parsing it again
    (see the module's docstring). For decoders whose type has no `Any` inside: their nesting is
    bounded by the type. msgspec's DecodeError and ValidationError are the caller's."""
    value = decoder.decode(raw)
    check_names(raw, _encoder.encode(value).count(b":"))
    return value


def check_names(raw: bytes, members: int, texts: Iterable[Iterable[str | None]] = ()) -> None:
    """`raw`, which msgspec decoded into a type without `Any` inside, refused as `parse_json`
    refuses it if one of its objects repeats a name (or it holds a lone surrogate escape).
    `members`: how many members the decoded value's objects hold (or, as `decode_fast` counts
    them, every colon of its JSON); `texts`: its strings (None is skipped), whose colons are
    counted only when the body holds more colons than members. A member sent as null where the
    type's default is None may be left out of `members`: the full check then runs, and finds
    nothing."""
    colons = raw.count(b":")
    # (b"\\" alone is a memchr; the two-byte search costs 4 times as much on a clean body.)
    if (b"\\" in raw and b"\\u" in raw) or (
        colons != members
        and colons != members + sum("".join(filter(None, t)).count(":") for t in texts)
    ):
        parse_json(raw)  # names the repeated name, or refuses the lone surrogate


def json_error(message: str, raw: bytes) -> InvalidInput:
    """A parser's complaint as a 400 a client can act on (the name repeated, the place)."""
    where = ""
    found = _POSITION.search(message)
    if found:
        message = message[: found.start()]
        where = f" (line {found.group(1)}, column {found.group(2)})"
    duplicate = _DUPLICATE.match(message)
    if duplicate:
        name = duplicate.group(1)
        reason = "appears twice in one object; I-JSON (RFC 7493) allows each name once"
        return InvalidInput(
            f"the name '{name}' appears twice in one object{where}", [Problem(reason + where, name)]
        )
    if not raw.strip():
        reason = "the body is empty: send a JSON value"
    elif message.startswith("recursion limit exceeded"):
        reason = f"the body nests arrays and objects more than {MAX_JSON_DEPTH} levels deep"
    elif "surrogate" in message or "hex escape" in message:
        reason = (
            "the body holds a \\uD800-\\uDFFF escape without its pair, which is no Unicode "
            f"character{where}"
        )
    elif "unicode code point" in message or "utf-8" in message.lower():
        reason = f"the body is not valid UTF-8{where}"
    elif message.startswith(("expected value", "invalid number")) and _NON_FINITE.search(raw):
        reason = f"the body is not valid JSON: NaN and Infinity are not JSON numbers{where}"
    else:
        reason = f"the body is not valid JSON: {message}{where}"
    return InvalidInput(reason, [Problem(reason)])
