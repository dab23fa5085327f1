"""A corpus of malformed requests: each class of mistake a client (or an attacker) makes, built
against any route from that route's own good request.

A `Route` says how to send its request and where in its body each part of a point lives
(value, time, source, field, meta); a `Case` makes one malformed request of a route, or says it
does not apply (a dialect whose document accepts numeric strings is not asked to refuse one).
tests/dialects/test_malformed.py sends every case to every route on every backend.
"""

from __future__ import annotations

import copy
import gzip
import json
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

Path = tuple[str | int, ...]
MARK = "__MALFORMED__"  # a value put in a part, then replaced in the encoded text
MAX_BODY_BYTES = 256 * 1024  # the settings the corpus runs under (small: fast bomb cases)
MAX_POINTS = 500


@dataclass
class Request:
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)  # added to (or replacing) the route's
    drop_headers: tuple[str, ...] = ()


@dataclass
class Route:
    """One route's good request, and where each part of its point lives in the body."""

    name: str
    path: str
    headers: dict[str, str]
    good: Any  # the body, as a Python value
    parts: dict[str, Path]  # part -> path in the body: value, time, source, field, meta
    words: dict[str, str]  # part -> the word a refusal must show (the dialect's own name)
    items: Path | None = None  # where the list of items is (batch routes)
    accepts: frozenset[str] = frozenset()  # cases the dialect's document makes valid
    form: bool = False  # the good body is a form, not JSON
    writes: bool = True  # a write route (credential cases, stored points apply)
    renames: bool = False  # the field part is a key of an object (dakkio's `values`)
    max_items: int = MAX_POINTS  # the most items the route takes

    def encode(self, body: Any) -> bytes:
        return json.dumps(body).encode()

    def raw(self) -> bytes:
        return self.encode(self.good)

    def with_part(self, part: str, value: Any) -> Any:
        """The good body with `part` set to `value` (None path: the route lacks the part)."""
        body = copy.deepcopy(self.good)
        path = self.parts[part]
        if self.renames and part == "field":
            holder = _get(body, path[:-1])
            holder[value] = holder.pop(path[-1])
            return body
        _set(body, path, value)
        return body

    def without_part(self, part: str) -> Any:
        body = copy.deepcopy(self.good)
        path = self.parts[part]
        del _get(body, path[:-1])[path[-1]]
        return body

    def marked(self, part: str, text: bytes) -> bytes:
        """The good body's JSON with the value of `part` written as `text` (raw bytes)."""
        encoded = self.encode(self.with_part(part, MARK))
        return encoded.replace(json.dumps(MARK).encode(), text, 1)

    def with_items(self, count: int) -> Any:
        assert self.items is not None
        body = copy.deepcopy(self.good)
        one = _get(body, self.items)[0]
        many = [copy.deepcopy(one) for _ in range(count)]
        if not self.items:  # the body is the list
            return many
        _set(body, self.items, many)
        return body


def _get(body: Any, path: Path) -> Any:
    for step in path:
        body = body[step]
    return body


def _set(body: Any, path: Path, value: Any) -> None:
    _get(body, path[:-1])[path[-1]] = value


@dataclass(frozen=True)
class Case:
    name: str
    make: Callable[[Route], Request | None]
    part: str | None = None  # the part the refusal must name


def _json(route: Route, body: Any) -> Request:
    return Request(route.encode(body))


def _needs(*parts: str) -> Callable[[Route], bool]:
    return lambda route: all(p in route.parts for p in parts)


def _part_case(name: str, part: str, value: Any) -> Case:
    def make(route: Route) -> Request | None:
        if part not in route.parts or name in route.accepts:
            return None
        return _json(route, route.with_part(part, value))

    return Case(name, make, part)


def _raw_case(name: str, part: str, text: bytes, names_part: bool = True) -> Case:
    def make(route: Route) -> Request | None:
        if part not in route.parts or (route.renames and part == "field") or route.form:
            return None
        return Request(route.marked(part, text))

    return Case(name, make, part if names_part else None)


def _body_case(name: str, make_body: Callable[[Route], bytes | None]) -> Case:
    def make(route: Route) -> Request | None:
        if route.form:
            return None
        body = make_body(route)
        return None if body is None else Request(body)

    return Case(name, make)


def _transport_case(name: str, make: Callable[[Route], Request | None]) -> Case:
    return Case(name, make)


def _duplicate_top(route: Route) -> bytes | None:
    raw = route.raw()
    if not raw.startswith(b"{"):
        return None
    first = next(iter(route.good))
    return b"{" + json.dumps(first).encode() + b": null, " + raw[1:]


def _duplicate_in(part: str) -> Callable[[Route], bytes | None]:
    def make(route: Route) -> bytes | None:
        if part not in route.parts or (route.renames and part == "field"):
            return None
        key = route.parts[part][-1]
        if not isinstance(key, str):
            return None
        good_value = json.dumps(_get(route.good, route.parts[part])).encode()
        pair = json.dumps(key).encode() + b": " + good_value
        return route.marked(part, good_value + b", " + pair)

    return make


def _gzip(raw: bytes) -> bytes:
    return gzip.compress(raw)


def _encoded(coding: str, body: Callable[[bytes], bytes]) -> Callable[[Route], Request | None]:
    def make(route: Route) -> Request | None:
        return Request(body(route.raw()), {"Content-Encoding": coding})

    return make


def _content_type(kind: str) -> Callable[[Route], Request | None]:
    def make(route: Route) -> Request | None:
        if route.form and kind.startswith("application/x-www-form"):
            return None
        return Request(route.raw(), {"Content-Type": kind})

    return make


def _credentials(kind: str) -> Callable[[Route], Request | None]:
    def make(route: Route) -> Request | None:
        if not route.writes:
            return None
        return Request(route.raw(), {"X-Credential": kind})  # the test swaps in the credential

    return make


def _items(count: int) -> Callable[[Route], Request | None]:
    def make(route: Route) -> Request | None:
        if route.items is None:
            return None
        return _json(route, route.with_items(count))

    return make


def _item_not_object(route: Route) -> Request | None:
    if route.items is None:
        return None
    body = copy.deepcopy(route.good)
    _get(body, route.items).append(1)
    return _json(route, body)


def _unknown_name(route: Route) -> Request | None:
    if "unknown" in route.accepts or "value" not in route.parts:
        return None
    body = copy.deepcopy(route.good)
    _get(body, route.parts["value"][:-1])["colour"] = "red"
    return _json(route, body)


def _missing(part: str) -> Callable[[Route], Request | None]:
    def make(route: Route) -> Request | None:
        if part not in route.parts or (route.renames and part == "field"):
            return None
        if f"missing_{part}" in route.accepts:
            return None
        return _json(route, route.without_part(part))

    return make


_BIG = "x" * 100_000
_LONG = "s" * 300
_HUGE = "s" * 10_000

CASES: list[Case] = [
    # -- not JSON, or not I-JSON ---------------------------------------------------------
    _body_case("not_json", lambda r: b"this is not json"),
    _body_case("empty_body", lambda r: b""),
    _body_case("truncated", lambda r: r.raw()[: len(r.raw()) // 2]),
    _body_case("trailing_garbage", lambda r: r.raw() + b" garbage"),
    _body_case("two_values", lambda r: r.raw() + b" {}"),
    _body_case("nested_1000", lambda r: b"[" * 1000 + b"]" * 1000),
    _body_case("nested_100000_open", lambda r: b"[" * 100_000),
    _body_case("scalar_body", lambda r: b"42"),
    _body_case("null_body", lambda r: b"null"),
    _body_case("string_body", lambda r: b'"hello"'),
    _body_case("wrong_container", lambda r: b"[]" if r.raw().startswith(b"{") else b"{}"),
    _body_case("duplicate_top_level_name", _duplicate_top),
    _body_case("duplicate_value_name", _duplicate_in("value")),
    _body_case("duplicate_time_name", _duplicate_in("time")),
    _raw_case("invalid_utf8", "source", b'"ab\xff\xfe"', names_part=False),
    _raw_case("utf8_encoded_surrogate", "source", b'"\xed\xa0\x80"', names_part=False),
    _raw_case("lone_high_surrogate", "source", b'"\\ud800"', names_part=False),
    _raw_case("lone_low_surrogate", "source", b'"\\udc00x"', names_part=False),
    _raw_case("raw_control_character", "source", b'"a\x01b"', names_part=False),
    _raw_case("nan_literal", "value", b"NaN", names_part=False),
    _raw_case("infinity_literal", "value", b"Infinity", names_part=False),
    _raw_case("negative_infinity_literal", "value", b"-Infinity", names_part=False),
    _raw_case("meta_nested_300", "meta", b"[" * 300 + b"]" * 300, names_part=False),
    # -- encodings, media types, sizes ------------------------------------------------------
    _transport_case("gzip_cut_short", _encoded("gzip", lambda raw: _gzip(raw)[:-6])),
    _transport_case("gzip_trailing_garbage", _encoded("gzip", lambda raw: _gzip(raw) + b"junk")),
    _transport_case("gzip_not_gzip", _encoded("gzip", lambda raw: raw)),
    _transport_case("deflate_not_deflate", _encoded("deflate", lambda raw: b"\x00\x01" + raw)),
    _transport_case("brotli_unsupported", _encoded("br", _gzip)),
    _transport_case("unknown_coding", _encoded("compress", lambda raw: raw)),
    _transport_case(
        "gzip_bomb",
        _encoded("gzip", lambda raw: gzip.compress(b" " * (MAX_BODY_BYTES * 8) + raw)),
    ),
    _transport_case(
        "deflate_bomb",
        _encoded("deflate", lambda raw: zlib.compress(b" " * (MAX_BODY_BYTES * 8) + raw)),
    ),
    _transport_case("oversized", lambda r: Request(b" " * (MAX_BODY_BYTES + 1) + r.raw())),
    _transport_case("content_type_html", _content_type("text/html")),
    _transport_case("content_type_multipart", _content_type("multipart/form-data; boundary=x")),
    _transport_case("content_type_xml", _content_type("application/xml")),
    # -- credentials ------------------------------------------------------------------------
    _transport_case("no_credentials", _credentials("none")),
    _transport_case("wrong_secret", _credentials("wrong_secret")),
    _transport_case("unknown_key", _credentials("unknown_key")),
    _transport_case("garbage_token", _credentials("garbage")),
    _transport_case("revoked_key", _credentials("revoked")),
    _transport_case("read_only_key", _credentials("read_only")),
    # -- values -----------------------------------------------------------------------------
    _part_case("value_numeric_string", "value", "21.5"),
    _part_case("value_true", "value", True),
    _part_case("value_null", "value", None),
    _part_case("value_object", "value", {"v": 1}),
    _part_case("value_array", "value", [1]),
    _part_case("value_empty_string", "value", ""),
    _part_case("value_nan_string", "value", "NaN"),
    _raw_case("value_1e400", "value", b"1e400"),
    _raw_case("value_minus_1e400", "value", b"-1e400"),
    _raw_case("value_400_digits", "value", b"1" + b"0" * 400),
    Case("value_missing", _missing("value"), "value"),
    # -- times ------------------------------------------------------------------------------
    _part_case("time_not_a_time", "time", "yesterday"),
    _part_case("time_empty", "time", ""),
    _part_case("time_before_1970", "time", "1900-01-01T00:00:00Z"),
    _part_case("time_far_future", "time", "2100-01-01T00:00:00Z"),
    _part_case("time_month_13", "time", "2024-13-01T10:00:00Z"),
    _part_case("time_day_first_slashes", "time", "15/01/2024"),
    _part_case("time_true", "time", True),
    _part_case("time_object", "time", {"t": 1}),
    _raw_case("time_huge_number", "time", b"1e30"),
    # -- names and meta ---------------------------------------------------------------------
    _part_case("source_300_characters", "source", _LONG),
    _part_case("source_10000_characters", "source", _HUGE),
    _part_case("source_nul", "source", "a\x00b"),
    _part_case("source_control_character", "source", "a\x07b"),
    _part_case("source_empty", "source", ""),
    _part_case("source_blank", "source", "   "),
    _part_case("source_number", "source", 5),
    _part_case("field_300_characters", "field", "f" * 300),
    _part_case("field_nul", "field", "f\x00g"),
    _part_case("field_empty", "field", ""),
    _part_case("field_control_character", "field", "f\x1bg"),
    _part_case("meta_100_kb", "meta", {"blob": _BIG}),
    # -- batches ----------------------------------------------------------------------------
    _transport_case("too_many_items", lambda r: _items(r.max_items + 1)(r)),
    _transport_case("empty_batch", _items(0)),
    _transport_case("item_not_an_object", _item_not_object),
    _transport_case("unknown_name_in_item", _unknown_name),
]
