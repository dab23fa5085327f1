"""The compiled decoder of the native write's common body (`_columns.c`) gives, for every body
it takes, the very batch msgspec's path gives (keys, rows, the bits of every time and value),
and takes no body that msgspec's path refuses, defers or words as an error; the write path works
without it."""

from __future__ import annotations

import json
import math
import os
import shutil
import struct
import sys
import sysconfig
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sensorbase.dialects import native
from sensorbase.dialects.native import fast_decode
from sensorbase.errors import InvalidInput
from sensorbase.model import PointBatch, SeriesKey
from sensorbase.times import PRECISION_US
from tests.conftest import Org

COMPILED = fast_decode.decode_columns
PRECISIONS = ["s", "ms", "us", "ns"]
BUILDABLE = (
    bool(shutil.which(sysconfig.get_config_var("CC").split()[0]))
    and (Path(sysconfig.get_paths()["include"]) / "Python.h").exists()
)
NOT_BUILT = (
    "the _columns module is not built: no C compiler or Python headers here (Debian: apt-get "
    "install gcc python3-dev, then .venv/bin/pip install -e .)"
)
needs_module = pytest.mark.skipif(COMPILED is None, reason=NOT_BUILT)


def test_the_compiled_module_is_built() -> None:
    """`pip install -e .` compiles _columns.c (setup.py) wherever a C compiler and Python's
    headers are found. Without them the install goes on without it (and this skips, except
    under SENSORBASE_REQUIRE_COMPILED=1, as on CI, where it fails)."""
    if COMPILED is not None:
        return
    if BUILDABLE:
        pytest.fail(
            "a C compiler and Python.h are here but _columns.c was not built: pip install -e ."
        )
    if os.environ.get("SENSORBASE_REQUIRE_COMPILED") == "1":
        pytest.fail(f"{NOT_BUILT} (SENSORBASE_REQUIRE_COMPILED=1)")
    pytest.skip(NOT_BUILT)


def _msgspec_path(
    body: bytes, bucket: str | None, source: str | None, precision: str, max_points: int
) -> PointBatch | InvalidInput | None:
    saved = fast_decode.decode_columns
    fast_decode.decode_columns = None
    try:
        return fast_decode.decode_fast(body, bucket, source, precision, max_points)
    except InvalidInput as exc:  # a repeated name, a lone surrogate escape
        return exc
    finally:
        fast_decode.decode_columns = saved


def _compiled_path(
    body: bytes, bucket: str | None, source: str | None, precision: str, max_points: int
) -> tuple[bool, PointBatch | None]:
    """Whether the compiled decoder took the body, and the batch decode_fast makes of it."""
    assert COMPILED is not None
    columns = COMPILED(body, max_points, bucket, source, SeriesKey, PRECISION_US[precision])
    if columns is None:
        return False, None
    return True, fast_decode._from_columns(columns)


def _identical(a: PointBatch | None, b: PointBatch | InvalidInput | None) -> None:
    if a is None or b is None or isinstance(b, InvalidInput):
        assert a is None and b is None, (a, b)
        return
    assert a.keys == b.keys
    assert all(type(k) is SeriesKey for k in a.keys)
    assert a.series_index.dtype == np.int32 and a.time_us.dtype == np.int64
    assert a.series_index.tolist() == b.series_index.tolist()
    assert a.time_us.tolist() == b.time_us.tolist()
    assert a.value.dtype == b.value.dtype == np.float64
    assert a.value.tobytes() == b.value.tobytes()  # bit for bit: -0.0 is not 0.0
    assert a.extra is b.extra is None


def check(
    body: bytes,
    bucket: str | None = "farm",
    source: str | None = None,
    precision: str = "s",
    max_points: int = 100_000,
) -> bool:
    """The compiled decoder agrees with msgspec's path on `body`; whether it took it."""
    took, batch = _compiled_path(body, bucket, source, precision, max_points)
    reference = _msgspec_path(body, bucket, source, precision, max_points)
    if took:
        _identical(batch, reference)
    else:  # decode_fast goes on to msgspec's path itself
        assert batch is None
    return took


# --- bodies of the common shape, written out token by token -------------------------------

SPACE = st.sampled_from(["", "", "", " ", "\n", "\t", "\r\n  "])
# Names without quotes, backslashes or control characters (which JSON would escape), repeated
# across points as a fleet's are, empty now and then, and not only ASCII.
NAME_CHARS = st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters='"\\')
NAMES = st.lists(
    st.one_of(st.text("abc", min_size=1, max_size=3), st.text(NAME_CHARS, max_size=6)),
    min_size=1,
    max_size=4,
)


def _mostly(common: st.SearchStrategy[str], rare: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """`common` 19 times in 20: a body of a dozen points is then often all common."""
    return st.integers(0, 19).flatmap(lambda k: rare if k == 0 else common)


@st.composite
def json_numbers(draw: st.DrawFn) -> str:
    """A JSON number token (RFC 8259 §6): integers, decimals and exponents of any length."""
    kind = draw(st.sampled_from(["float", "int", "grammar"]))
    if kind == "float":
        return repr(draw(st.floats(allow_nan=False, allow_infinity=False)))
    if kind == "int":
        return str(draw(st.integers(-(2**80), 2**80)))
    sign = draw(st.sampled_from(["", "-"]))
    whole = draw(st.sampled_from(["0", *"123456789"])) if draw(st.booleans()) else "0"
    if whole != "0":
        whole += draw(st.text("0123456789", max_size=25))
    fraction = (
        "." + draw(st.text("0123456789", min_size=1, max_size=25)) if draw(st.booleans()) else ""
    )
    exponent = ""
    if draw(st.booleans()):
        exponent = draw(st.sampled_from("eE")) + draw(st.sampled_from(["", "+", "-"]))
        exponent += draw(_mostly(st.integers(0, 30).map(str), st.integers(0, 400).map(str)))
    return sign + whole + fraction + exponent


def _string(name: str) -> str:
    return json.dumps(name, ensure_ascii=False)


@st.composite
def bodies(draw: st.DrawFn) -> bytes:
    names = draw(NAMES)
    optional = st.one_of(st.just(None), st.just("null"), st.sampled_from(names).map(_string))

    def obj(members: list[tuple[str, str]]) -> str:
        members = draw(st.permutations(members))
        parts = [f"{draw(SPACE)}{_string(k)}{draw(SPACE)}:{draw(SPACE)}{v}" for k, v in members]
        return "{" + ",".join(parts) + draw(SPACE) + "}"

    points = []
    for _ in range(draw(st.integers(1, 12))):
        time = draw(
            _mostly(
                st.integers(-(2**40), 2**40).map(str),  # every precision scales it in int64
                st.one_of(st.integers(-(2**64), 2**64).map(str), json_numbers()),
            )
        )
        members = [
            ("field", _string(draw(st.sampled_from(names)))),
            ("value", draw(json_numbers())),
            ("time", time),
        ]
        for name in ("bucket", "source"):
            value = draw(optional)
            if value is not None:
                members.append((name, value))
        points.append(draw(SPACE) + obj(members) + draw(SPACE))
    array = "[" + ",".join(points) + "]"
    if draw(st.booleans()):
        return (draw(SPACE) + array + draw(SPACE)).encode()
    top = [("points", array)]
    for name in ("bucket", "source"):
        value = draw(optional)
        if value is not None:
            top.append((name, value))
    return (draw(SPACE) + obj(top) + draw(SPACE)).encode()


DEFAULTS = st.sampled_from(["farm", "farm", "s0", None, ""])


@needs_module
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(bodies(), DEFAULTS, DEFAULTS, st.sampled_from(PRECISIONS), st.integers(1, 14))
def test_bodies_of_the_common_shape(
    body: bytes, bucket: str | None, source: str | None, precision: str, max_points: int
) -> None:
    took = check(body, bucket, source, precision, max_points)
    reference = _msgspec_path(body, bucket, source, precision, max_points)
    if isinstance(reference, PointBatch) and not _past_int64(body):
        assert took, "the compiled decoder left a body of the common shape to msgspec"


def _past_int64(body: bytes) -> bool:
    """Whether a point's time is past int64 (msgspec's path takes one such point, in `ns`)."""
    parsed = json.loads(body)
    points = parsed["points"] if isinstance(parsed, dict) else parsed
    return any(not -(2**63) <= p["time"] < 2**63 for p in points)


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """A body of the common shape with bytes changed, inserted, removed or cut off."""
    body = bytearray(draw(bodies()))
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(body)))
        action = draw(st.sampled_from(["set", "insert", "delete", "cut"]))
        byte = draw(
            st.one_of(st.sampled_from(b'{}[]",:.-+eE0 \\\x00\x80\xff"nul'), st.integers(0, 255))
        )
        if action == "insert":
            body.insert(at, byte)
        elif at < len(body):
            if action == "set":
                body[at] = byte
            elif action == "delete":
                del body[at]
            else:
                del body[at:]
    return bytes(body)


@needs_module
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(mutated(), st.binary(max_size=64)), DEFAULTS, st.sampled_from(PRECISIONS))
def test_mutations_and_garbage(body: bytes, bucket: str | None, precision: str) -> None:
    check(body, bucket, "s0", precision)


@needs_module
def test_every_prefix_of_a_body() -> None:
    """A body cut anywhere (bounds: no byte past the end is read) is never taken but whole."""
    point = {"source": "é", "field": "t", "time": -5, "value": -1.5e-7}
    body = json.dumps({"bucket": "b", "points": [point] * 3}, ensure_ascii=False).encode()
    taken = [end for end in range(len(body) + 1) if check(body[:end])]
    assert taken == [len(body)]


@needs_module
@pytest.mark.parametrize(
    "body",
    [
        b'[{"field": "t", "value": 1, "time": 5, "time": 6}]',  # a repeated name
        b'{"points": [{"field": "t", "value": 1, "time": 5}], "points": []}',
        b'[{"field": "t\\u003a", "value": 1, "time": 5}]',  # an escape
        b'[{"fi\\u0065ld": "t", "value": 1, "time": 5}]',  # an escape in a member's name
        b'[{"fields": "t", "value": 1, "time": 5}]',  # a known name's prefix, and its own
        b'[{"fiel": "t", "value": 1, "time": 5}]',
        b'[{"Field": "t", "value": 1, "time": 5}]',
        b'{"point": [{"field": "t", "value": 1, "time": 5}]}',
        b'[{"field": "t", "value": 1, "time": 5, "extra": 1}]',
        b'[{"field": "t", "value": 01, "time": 5}]',  # a leading zero
        b'[{"field": "t", "value": .5, "time": 5}]',
        b'[{"field": "t", "value": 1., "time": 5}]',
        b'[{"field": "t", "value": +1, "time": 5}]',
        b'[{"field": "t", "value": NaN, "time": 5}]',
        b'[{"field": "t", "value": Infinity, "time": 5}]',
        b'[{"field": "t", "value": 1e400, "time": 5}]',  # past float64
        b'[{"field": "t", "value": 1, "time": 5.0}]',
        b'[{"field": "t", "value": 1, "time": 1e3}]',
        b'[{"field": "t", "value": 1, "time": 9223372036854775808}]',  # past int64
        b'[{"field": "t", "value": 1, "time": 5}] x',  # trailing bytes
        b'\xef\xbb\xbf[{"field": "t", "value": 1, "time": 5}]',  # a byte order mark
        b'[{"field": "\xff", "value": 1, "time": 5}]',  # not UTF-8
        b'[{"field": "\xed\xa0\x80", "value": 1, "time": 5}]',  # a surrogate in UTF-8
        b'[{"field": "t\x01", "value": 1, "time": 5}]',  # a control character
        b'[{"field": "", "value": 1, "time": 5}]',  # an empty field name
        b'[{"field": "t", "value": true, "time": 5}]',
        b"[]",
        b'{"points": []}',
        b'{"bucket": "b"}',
        b"",
    ],
)
def test_bodies_left_to_the_other_paths(body: bytes) -> None:
    assert not check(body, source="s0")


@needs_module
@pytest.mark.parametrize("precision", PRECISIONS)
def test_times_in_microseconds_at_the_edges_of_int64(precision: str) -> None:
    """The module scales each time to microseconds as msgspec's path does: nanoseconds
    floored (as Python's `//`: -1 ns is -1 us), and a time whose microseconds are past int64 left
    to the general path, one point or several, first or last."""
    scale = PRECISION_US[precision]
    limit = (2**63 - 1) // scale if scale else 2**63 - 1
    times = [0, 1, -1, 999, -999, 1000, -1000, -1001, limit, -limit, limit + 1, -limit - 1]
    times += [2**63 - 1, -(2**63)]
    for time in times:
        for others in ([], [5], [5, 6]):
            points = [{"field": "t", "value": 1.5, "time": t} for t in [time, *others]]
            for body in (points, points[::-1]):
                encoded = json.dumps(body).encode()
                reference = _msgspec_path(encoded, "b", "s", precision, 100)
                took = check(encoded, "b", "s", precision)
                # (a time past int64 as sent is the module's to leave: see _past_int64)
                expected = isinstance(reference, PointBatch) and -(2**63) <= time < 2**63
                assert took == expected, (time, precision)


@needs_module
def test_numbers_are_pythons_floats() -> None:
    """Every kind of token (the fast paths' edges, Clinger's limits of 2**53 and 10**22,
    subnormals, the largest float, 19 digits and more) gives the float64 Python's float() makes
    of it, and an integer token the float of its int (msgspec's: -0 is 0.0)."""
    tokens = [
        "0", "-0", "-0.0", "0e5", "-0E-5", "1", "-1", "123456789012345678", "1234567890123456789",
        "9007199254740993", "9007199254740993.0", "18446744073709551616", "1e22", "1e23",
        "9007199254740991e22", "9007199254740993e-22", "0.1", "0.30000000000000004", "1.5e-7",
        "2.2250738585072011e-308", "2.2250738585072014e-308", "4.9e-324", "2.4e-324", "1e-400",
        "1.7976931348623157e308", "17976931348623157e292", "0.000000000000000000000000012345",
        "123456789012345678901234567890", "3.14159265358979323846264338327950288",
        "1" + "0" * 300, "0." + "0" * 330 + "1",
    ]  # fmt: skip
    rng = np.random.default_rng(28)
    tokens += [
        repr(float(f)) for f in rng.standard_normal(200) * 10.0 ** rng.integers(-30, 30, 200)
    ]
    tokens += [repr(struct.unpack("d", rng.bytes(8))[0]) for _ in range(300)]
    tokens = [t for t in tokens if math.isfinite(float(t))]
    body = ",".join(f'{{"field":"t","value":{t},"time":{i}}}' for i, t in enumerate(tokens))
    took, batch = _compiled_path(f"[{body}]".encode(), "b", "s", "s", 100_000)
    assert took and batch is not None
    expected = [float(int(t)) if t.lstrip("-").isdigit() else float(t) for t in tokens]
    assert batch.value.tobytes() == np.array(expected, np.float64).tobytes()
    check(f"[{body}]".encode(), "b", "s")


@needs_module
def test_defaults_and_keys_made_one() -> None:
    """Each point's bucket and source: its own, else the body's, else the query string's; an
    empty or null one is none, so two keys sent apart may name one series."""
    points = [
        {"field": "t", "value": 1, "time": 1, "bucket": None, "source": "a"},
        {"field": "t", "value": 2, "time": 2, "bucket": "farm", "source": "a"},
        {"field": "t", "value": 3, "time": 3, "bucket": "", "source": "b"},
        {"field": "t", "value": 4, "time": 4, "source": "a"},
        {"field": "u", "value": 5, "time": 5, "bucket": "other", "source": "a"},
    ]
    took, batch = _compiled_path(json.dumps(points).encode(), "farm", None, "s", 100)
    assert took and batch is not None
    assert batch.keys == [
        SeriesKey("farm", "a", "t"),
        SeriesKey("farm", "b", "t"),
        SeriesKey("other", "a", "u"),
    ]
    assert batch.series_index.tolist() == [0, 0, 1, 0, 2]
    assert check(json.dumps(points).encode(), "farm")
    body = json.dumps({"bucket": "", "source": "dev", "points": points[:1]}).encode()
    assert check(body, "farm")
    assert not check(body, None)  # no bucket anywhere: the general path names it


# --- the write path, with and without the module ----------------------------------------

FLEET = [
    {"source": f"s{i % 3}", "field": "value", "time": 1_577_836_800 + i // 3, "value": i / 10}
    for i in range(12)
]


async def _write_and_read(client: httpx.AsyncClient, org: Org) -> None:
    reply = await client.post(
        "/v1/write", params={"bucket": org.bucket, "precision": "s"}, json=FLEET,
        headers=org.headers,
    )  # fmt: skip
    assert reply.status_code == 200, reply.text
    assert reply.json() == {"written": 12, "series": 3}
    reply = await client.get(
        "/v1/query", params={"bucket": org.bucket, "source": "s1", "order": "asc"},
        headers=org.headers,
    )  # fmt: skip
    [series] = reply.json()["series"]
    assert [p["value"] for p in series["points"]] == [0.1, 0.4, 0.7, 1.0]
    assert series["points"][0]["time"] == "2020-01-01T00:00:00.000000Z"


@needs_module
async def test_a_write_decoded_by_the_module(
    client: httpx.AsyncClient, org: Org, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert COMPILED is not None
    taken: list[bool] = []

    def recorded(*args: Any) -> Any:
        columns = COMPILED(*args)
        taken.append(columns is not None)
        return columns

    monkeypatch.setattr(fast_decode, "decode_columns", recorded)
    await _write_and_read(client, org)
    assert taken == [True]


async def test_a_write_without_the_module(
    client: httpx.AsyncClient, org: Org, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Installed without a C compiler (the import of _columns fails), msgspec's path decodes."""
    calls: list[bytes] = []
    lean: Callable[[bytes], Any] = fast_decode._lean.decode
    monkeypatch.setattr(fast_decode, "decode_columns", None)
    monkeypatch.setattr(fast_decode, "_lean", _Recording(lean, calls))
    await _write_and_read(client, org)
    assert len(calls) == 1


class _Recording:
    """msgspec's decoder, its bodies noted."""

    def __init__(self, decode: Callable[[bytes], Any], calls: list[bytes]) -> None:
        self._decode, self._calls = decode, calls

    def decode(self, body: bytes) -> Any:
        self._calls.append(body)
        return self._decode(body)


def test_the_import_falls_back(monkeypatch: pytest.MonkeyPatch) -> None:
    """Where the module was not built, `_compiled` finds no decoder (and the write path above
    runs without one)."""
    monkeypatch.delattr(native, "_columns", raising=False)
    monkeypatch.setitem(sys.modules, "sensorbase.dialects.native._columns", None)
    assert fast_decode._compiled() is None


def colliding_names(n: int) -> list[str]:
    """`n` distinct 16-byte printable names that _columns.c's name hash (`hash_bytes`, not
    keyed) maps to one value: each step of it is invertible, so a client can pick any first
    8 bytes and solve for the last 8."""
    mask = (1 << 64) - 1
    mix, last = 0xFF51AFD7ED558CCD, 0x0123456789ABCDEF  # the state after both blocks
    before = ((last ^ (last >> 32)) * pow(mix, -1, 1 << 64)) & mask  # (xor-shift 32: involution)
    start = np.uint64(0x9E3779B97F4A7C15 ^ 16)
    rng = np.random.default_rng(7)
    found: list[str] = []
    while len(found) < n:
        first = rng.integers(0x21, 0x7F, size=(1 << 18, 8), dtype=np.uint8)
        with np.errstate(over="ignore"):
            state = (start ^ first.view("<u8").ravel()) * np.uint64(mix)
        state ^= state >> np.uint64(32)
        second = (state ^ np.uint64(before)).view(np.uint8).reshape(-1, 8)
        both = np.concatenate([first, second], axis=1)
        printable = (both >= 0x21) & (both < 0x7F) & (both != ord('"')) & (both != ord("\\"))
        found += [row.tobytes().decode() for row in both[printable.all(axis=1)]]
    return found[:n]


@needs_module
def test_names_made_to_hash_alike_are_left_to_the_keyed_dicts() -> None:
    """A body of names that all hash alike would make each lookup walk all of them (quadratic
    in a body's names): past 64 probes the compiled decoder defers, and msgspec's path, whose
    dicts hash with Python's keyed SipHash, decodes the body."""
    names = colliding_names(100)
    points = [{"source": s, "field": "t", "value": 1.0, "time": 1} for s in names]
    body = json.dumps({"bucket": "farm", "points": points}).encode()
    assert COMPILED is not None
    assert COMPILED(body, 1000, None, None, SeriesKey, 1) is None
    few = json.dumps({"bucket": "farm", "points": points[:20]}).encode()
    assert COMPILED(few, 1000, None, None, SeriesKey, 1) is not None  # (a short chain is walked)
    batch = _msgspec_path(body, None, None, "s", 1000)
    assert isinstance(batch, PointBatch) and [k.source for k in batch.keys] == names
    decoded = fast_decode.decode_fast(body, None, None, "s", 1000)
    assert decoded is not None and [k.source for k in decoded.keys] == names


@needs_module
def test_names_differing_only_in_their_last_bytes_are_not_deferred() -> None:
    """A fleet's names ("s000000" ... "s004999": the same first bytes) spread over the name
    table: the hash's finaliser brings every byte to the bits that pick a slot (without it,
    such a 5,000-series body went past MAX_PROBES and was deferred to msgspec's path)."""
    for width in range(5, 17):
        names = [f"s{i:0{width - 1}d}" for i in range(5000)]
        points = [{"source": s, "field": "value", "value": 1.5, "time": 1} for s in names]
        body = json.dumps(points).encode()
        assert COMPILED is not None
        decoded = COMPILED(body, 10_000, "farm", None, SeriesKey, 1)
        assert decoded is not None, width
        assert [k.source for k in decoded[0]] == names


# --- a body of many series: its keys as names (`_columns.Keys`) ---------------------------


@st.composite
def fleet_bodies(draw: st.DrawFn) -> tuple[bytes, str | None, str | None]:
    """A body of NAMED_KEYS_AT series or more: sources ASCII or not, one or two fields, every
    point's bucket its own or none (the body's or the query string's), in a list or an object
    with its own bucket and source; and the query string's defaults."""
    n = draw(st.integers(64, 160))
    accent = draw(st.sampled_from(["", "é", "传感器"]))
    sources = [f"s{i}{accent if i % 3 == 0 else ''}" for i in range(n)]
    fields = draw(st.sampled_from([["t"], ["t", "température"]]))
    own_bucket = draw(st.sampled_from([None, "farm", "ferme-2"]))
    points = [
        {"source": s, "field": fields[i % len(fields)], "value": i / 4, "time": i}
        | ({} if own_bucket is None else {"bucket": own_bucket})
        for i, s in enumerate(sources + sources[: n // 2])
    ]
    if draw(st.booleans()):
        body: Any = {"points": points} | draw(st.sampled_from([{}, {"bucket": "body-bucket"}]))
    else:
        body = points
    return json.dumps(body, ensure_ascii=False).encode(), draw(DEFAULTS), draw(DEFAULTS)


@needs_module
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fleet_bodies())
def test_a_fleets_keys_as_names_are_the_keys_of_msgspecs_path(
    case: tuple[bytes, str | None, str | None],
) -> None:
    body, bucket, source = case
    took, batch = _compiled_path(body, bucket, source, "s", 100_000)
    reference = _msgspec_path(body, bucket, source, "s", 100_000)
    assert took == (reference is not None)
    _identical(batch, reference)
    if batch is not None and isinstance(reference, PointBatch):
        assert COMPILED is not None and len(batch.keys) >= _columns_module().NAMED_KEYS_AT > 0
        assert type(batch.keys) is _columns_module().Keys
        keys = batch.keys
        assert keys[0] is keys[0]  # made once, kept
        assert keys[-1] == reference.keys[-1] and keys[np.int64(3)] == reference.keys[3]
        assert keys[2:9:3] == reference.keys[2:9:3] and list(keys) == reference.keys
        assert len(keys) == len(reference.keys) and keys != reference.keys[:-1]
        with pytest.raises(IndexError):
            keys[len(keys)]


def _columns_module() -> Any:
    from sensorbase.dialects.native import _columns

    return _columns


@needs_module
def test_a_body_of_few_series_keeps_a_list() -> None:
    """Below NAMED_KEYS_AT series (a one-point write above all) the keys are a plain list."""
    points = [{"source": f"s{i}", "field": "t", "value": 1, "time": i} for i in range(63)]
    took, batch = _compiled_path(json.dumps(points).encode(), "farm", None, "s", 100)
    assert took and batch is not None and type(batch.keys) is list
