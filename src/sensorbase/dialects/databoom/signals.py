"""The body of `POST /v1/signals/push`: a device's signal values, in list form or history form,
decoded into columns.

The fast path decodes the body straight into typed structs and builds each signal's columns
with list comprehensions (each distinct date string parsed once); a body it refuses is walked
item by item, so that the refusal names every bad signal and entry.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from typing import Any

import msgspec
import numpy as np

from sensorbase.dialects import openapi
from sensorbase.dialects.body import parse_json
from sensorbase.dialects.databoom.dates import STORED_MS, date_us, dates_us
from sensorbase.errors import PayloadTooLarge, Problem, invalid
from sensorbase.limits import BLANK
from sensorbase.model import PointBatch, SeriesKey

_META_STRINGS = ("description", "unit", "type")
_MAX_INT = 2**1023  # beyond it an integer is no float64
_TOKEN_HINT = "a signal token must be a non-empty string of at most 200 characters, without '/'"


# --- the body, as the decoder below reads it (declared in the OpenAPI document) --------------

DATE = {
    "anyOf": [
        {**openapi.DATE_TIME, "description": "Also the other forms JavaScript's Date reads"},
        {"type": "number", "minimum": STORED_MS[0], "maximum": STORED_MS[1]},
        {"type": "null"},
    ],
    "description": "A date string (without a zone: UTC), or milliseconds since 1970",
}
# A signal token: a name without '/' (the server's names: limits.py).
TOKEN = {
    "type": "string",
    "maxLength": 200,
    "pattern": f"^[^/\\x00-\\x1f\\x7f]*[^/\\x00-\\x1f\\x7f{BLANK}][^/\\x00-\\x1f\\x7f]*$",
}
_TEXT = openapi.nullable({"type": "string"})
_META = openapi.nullable(
    {
        "type": "object",
        "properties": {
            "description": {"type": "string"},
            "unit": {"type": "string"},
            "type": {"type": "string"},
            "tags": {"type": "array", "items": {"type": "string"}},
        },
    }
)
_HISTORY = {
    "type": "array",
    "items": {
        "type": "object",
        "required": ["value"],
        "properties": {"date": DATE, "value": {"type": "number"}},
    },
}
_SIGNAL = {"date": DATE, "meta": _META, "description": _TEXT}
# A list-form entry reads `value`, unless it has only a `history`; a history-form signal reads
# `history`, unless it has only a `value`. What is not read is not checked.
_LISTED = {
    "type": "object",
    "required": ["name"],
    "properties": {"name": TOKEN, **_SIGNAL},
    "if": {"required": ["value"]},
    "then": {"properties": {"value": {"type": "number"}}},
    "else": {"required": ["history"], "properties": {"history": _HISTORY}},
}
_KEYED = {
    "type": "object",
    "properties": _SIGNAL,
    "if": {"required": ["history"]},
    "then": {"properties": {"history": _HISTORY}},
    "else": {"required": ["value"], "properties": {"value": {"type": "number"}}},
}
BODY_SCHEMA = {
    "type": "object",
    "required": ["device", "signals"],
    "properties": {
        "device": {**openapi.NONBLANK, "description": "The device token: a source's key"},
        "date": {**DATE, "description": "Of every value without its own; absent: now"},
        "signals": {
            "anyOf": [
                {"type": "array", "items": _LISTED},
                {"type": "object", "propertyNames": TOKEN, "additionalProperties": _KEYED},
            ]
        },
    },
}
SAMPLE = {
    "device": "6541469",
    "date": "2020-02-05T02:59:33.000+0000",
    "signals": [
        {"name": "pressure", "value": 1019},
        {"name": "temperature", "value": 21.5, "meta": {"unit": "°C", "tags": ["outdoor"]}},
    ],
}


@dataclass(frozen=True, slots=True)
class Segment:
    """Consecutive points of one signal, from one place of the body."""

    start: int  # index of its first point
    token: str
    position: int | None  # index in a list-form `signals`
    history: bool  # from a history (point k is entry k - start)

    def describe(self, point: int) -> str:
        where = f"signal '{self.token}'"
        if self.history:
            return f"{where}, history entry {point - self.start}"
        return where if self.position is None else f"{where} (signals[{self.position}])"


@dataclass
class Push:
    """A decoded push: the columns, and where each point came from (for messages)."""

    device: str
    index: dict[str, int] = field(default_factory=dict)  # signal token → key index
    metas: dict[str, dict[str, Any]] = field(default_factory=dict)  # first meta of each token
    series_index: list[int] = field(default_factory=list)
    time_us: list[int] = field(default_factory=list)
    value: list[float] = field(default_factory=list)
    segments: list[Segment] = field(default_factory=list)

    def signal(self, token: str, meta: dict[str, Any]) -> int:
        """The key index of a token; the first meta given for it is the one kept."""
        if meta and token not in self.metas:
            self.metas[token] = meta
        return self.index.setdefault(token, len(self.index))

    def segment(self, token: str, position: int | None, history: bool) -> None:
        self.segments.append(Segment(len(self.value), token, position, history))

    def where(self, point: int) -> str:
        """Where point `point` came from: "signal 'x', history entry 2"."""
        starts = [s.start for s in self.segments]
        return self.segments[bisect.bisect_right(starts, point) - 1].describe(point)

    def batch(self, bucket: str, source: str) -> PointBatch:
        return PointBatch(
            keys=[SeriesKey(bucket, source, token) for token in self.index],
            series_index=np.array(self.series_index, np.int32),
            time_us=np.array(self.time_us, np.int64),
            value=np.array(self.value, np.float64),
        )


def _meta(entry: dict[str, Any], where: str, problems: list[Problem]) -> dict[str, Any]:
    """A signal's meta: its `meta` object, plus a signal-level `description` when meta has none."""
    meta = entry.get("meta")
    if meta is None:
        meta = {}
    elif not isinstance(meta, dict):
        problems.append(Problem("must be an object", f"{where}, meta"))
        return {}
    for name in _META_STRINGS:
        if name in meta and not isinstance(meta[name], str):
            problems.append(Problem("must be a string", f"{where}, meta.{name}"))
    tags = meta.get("tags")
    if tags is not None and not (isinstance(tags, list) and all(isinstance(t, str) for t in tags)):
        problems.append(Problem("must be a list of strings", f"{where}, meta.tags"))
    description = entry.get("description")
    if description is not None:
        if not isinstance(description, str):
            problems.append(Problem("must be a string", f"{where}, description"))
        elif "description" not in meta:
            meta = {**meta, "description": description}
    return meta


class _Decoder:
    """Walks a push body once, building the columns and collecting every problem."""

    def __init__(self, received_us: int) -> None:
        self.received_us = received_us
        self.dates: dict[str, int] = {}
        self.problems: list[Problem] = []

    def decode(self, data: Any) -> Push:
        """The push of a body's JSON value (parsed and checked as I-JSON already)."""
        if not isinstance(data, dict):
            raise invalid([Problem("the body must be a JSON object {device, date?, signals}")])
        device = data.get("device")
        if not isinstance(device, str) or not device.strip():
            reason = "is required" if device is None else "must be a non-empty string"
            self.problems.append(Problem(f"{reason} (the device token)", "device"))
            device = ""
        default_us = self.date(data.get("date"), self.received_us, "date")
        push = Push(device)
        signals = data.get("signals")
        if isinstance(signals, list):
            self._list(signals, default_us, push)
        elif isinstance(signals, dict):
            self._history(signals, default_us, push)
        else:
            reason = "is required" if signals is None else "must be a list or an object"
            forms = "[{name, value}, ...] or {<token>: {history: [{date, value}, ...]}}"
            self.problems.append(Problem(f"{reason}: {forms}", "signals"))
        if self.problems:
            raise invalid(self.problems)
        return push

    def date(self, value: Any, default_us: int, where: str) -> int:
        if value is None:
            return default_us
        try:
            return date_us(value, self.dates, STORED_MS)
        except ValueError as exc:
            self.problems.append(Problem(str(exc), where))
            return 0

    def _token(self, token: Any, where: str) -> str | None:
        if isinstance(token, str) and valid_token(token):
            return token
        self.problems.append(Problem(_TOKEN_HINT, where))
        return None

    def _add(self, push: Push, index: int, time_us: int, value: Any, where: str) -> None:
        if type(value) is float or (type(value) is int and -_MAX_INT < value < _MAX_INT):
            push.series_index.append(index)
            push.time_us.append(time_us)
            push.value.append(value)
            return
        got = "it is missing" if value is None else f"got {type(value).__name__} {value!r:.40}"
        self.problems.append(Problem(f"must be a number; {got}", f"{where}, value"))

    def _list(self, signals: list[Any], default_us: int, push: Push) -> None:
        for i, entry in enumerate(signals):
            if not isinstance(entry, dict):
                self.problems.append(Problem("must be an object {name, value}", f"signals[{i}]"))
                continue
            token = self._token(entry.get("name"), f"signals[{i}], name")
            if token is not None:
                self._signal(push, token, i, entry, default_us)

    def _history(self, signals: dict[str, Any], default_us: int, push: Push) -> None:
        for token, entry in signals.items():
            where = f"signal '{token}'"
            if isinstance(entry, list):
                hint = 'key each signal by its token: {"<token>": {"history": [...]}}'
                self.problems.append(Problem(f"must be an object ({hint})", where))
            elif not isinstance(entry, dict):
                self.problems.append(Problem("must be an object {history: [...]}", where))
            elif self._token(token, where) is not None:
                self._signal(push, token, None, entry, default_us)

    def _signal(
        self, push: Push, token: str, position: int | None, entry: dict[str, Any], default_us: int
    ) -> None:
        """One signal: a `value`, or a `history` (the history form's way; a list entry may
        carry one too), at the signal's own `date`, else the body's."""
        where = f"signal '{token}'" + ("" if position is None else f" (signals[{position}])")
        index = push.signal(token, _meta(entry, where, self.problems))
        signal_us = self.date(entry.get("date"), default_us, f"{where}, date")
        if _takes_history(position, "history" in entry, "value" in entry):
            push.segment(token, position, True)
            self._entries(entry.get("history"), signal_us, push, index, token)
        else:
            push.segment(token, position, False)
            self._add(push, index, signal_us, entry.get("value"), where)

    def _entries(self, history: Any, default_us: int, push: Push, index: int, token: str) -> None:
        if not isinstance(history, list):
            self.problems.append(
                Problem("must be a list of {date, value}", f"signal '{token}', history")
            )
            return
        for j, item in enumerate(history):
            where = f"signal '{token}', history entry {j}"
            if not isinstance(item, dict):
                self.problems.append(Problem("must be an object {date, value}", where))
                continue
            at_us = self.date(item.get("date"), default_us, f"{where}, date")
            self._add(push, index, at_us, item.get("value"), where)


class _Entry(msgspec.Struct):
    value: float
    date: str | int | float | None = None


class _Keyed(msgspec.Struct):
    """A signal of the history form (or a list-form entry: `name` is then set)."""

    name: str | msgspec.UnsetType = msgspec.UNSET
    value: float | msgspec.UnsetType = msgspec.UNSET
    history: list[_Entry] | msgspec.UnsetType = msgspec.UNSET
    date: str | int | float | None = None
    meta: dict[str, Any] | None = None
    description: str | None = None


class _Body(msgspec.Struct):
    device: str
    signals: list[_Keyed] | dict[str, _Keyed]
    date: str | int | float | None = None


_typed = msgspec.json.Decoder(_Body)


class _Refused(Exception):
    """The fast path met something it does not judge: the walker will name it."""


def _takes_history(position: int | None, has_history: bool, has_value: bool) -> bool:
    """A history-form signal reads `history` unless it has only a `value`; a list-form entry
    reads `value` unless it has only a `history`."""
    if position is None:
        return has_history or not has_value
    return has_history and not has_value


def _fast(body: bytes, received_us: int) -> Push:
    """The common case, with no per-point Python beyond building the columns."""
    try:
        data = _typed.decode(body)
    except (msgspec.ValidationError, msgspec.DecodeError):
        raise _Refused from None
    if not data.device.strip():
        raise _Refused
    dates: dict[Any, int] = {None: _time(data.date, received_us)}
    push = Push(data.device)
    items: list[tuple[Any, _Keyed, int | None]]
    if isinstance(data.signals, list):
        items = [(signal.name, signal, i) for i, signal in enumerate(data.signals)]
    else:
        items = [(token, signal, None) for token, signal in data.signals.items()]
    for token, signal, position in items:
        if not isinstance(token, str) or not valid_token(token):
            raise _Refused
        problems: list[Problem] = []
        meta = _meta({"meta": signal.meta, "description": signal.description}, "", problems)
        if problems:
            raise _Refused
        index = push.signal(token, meta)
        lookup = dates
        if signal.date is not None:  # the default of this signal's values
            lookup = {**dates, None: _time(signal.date, 0)}
        has_value = signal.value is not msgspec.UNSET
        if isinstance(signal.history, list) and _takes_history(position, True, has_value):
            entries = signal.history
            push.segment(token, position, True)
            moments = [e.date for e in entries]
            try:
                lookup.update(dates_us(set(moments).difference(lookup)))
            except ValueError:
                raise _Refused from None
            push.time_us += [lookup[m] for m in moments]
            push.value += [e.value for e in entries]
            push.series_index += [index] * len(entries)
        elif isinstance(signal.value, float):
            push.segment(token, position, False)
            push.time_us.append(lookup[None])
            push.value.append(signal.value)
            push.series_index.append(index)
        else:
            raise _Refused
    return push


def _time(moment: Any, default_us: int) -> int:
    if moment is None:
        return default_us
    try:
        return date_us(moment, {}, STORED_MS)
    except ValueError:
        raise _Refused from None


def valid_token(token: str) -> bool:
    return bool(token.strip()) and "/" not in token and len(token) <= 200


def decode_push(body: bytes, received_us: int, max_points: int) -> Push:
    data = parse_json(body)  # the I-JSON checks, once (the fast path decodes again, typed)
    count = _values(data)
    if count > max_points:  # before any value is looked at: refusing costs no more
        raise PayloadTooLarge(f"{count} values in one push; the limit is {max_points}")
    try:
        return _fast(body, received_us)
    except _Refused:
        return _Decoder(received_us).decode(data)


def _values(data: Any) -> int:
    """How many values a push carries at most (a signal's `value` and its `history`)."""
    signals = data.get("signals") if isinstance(data, dict) else None
    entries = signals if isinstance(signals, list) else []
    if isinstance(signals, dict):
        entries = list(signals.values())
    count = 0
    for entry in entries:
        history = entry.get("history") if isinstance(entry, dict) else None
        count += 1 + (len(history) if isinstance(history, list) else 0)
    return count


def decode_object(data: Any, received_us: int) -> Push:
    """The push of a JSON value already parsed (a template push's message, say), walked."""
    return _Decoder(received_us).decode(data)


def values_in(data: Any) -> int:
    """How many values a push's JSON value carries at most (before any is looked at)."""
    return _values(data)
