"""Parsing a query's loose parameters into a QuerySpec: every bad one named at once."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import pytest

from sensorbase.errors import InvalidInput
from sensorbase.query.spec import Cursor, Every, parse_spec, split_list
from sensorbase.times import parse_iso_us


def fields_of(**params: object) -> list[str | None]:
    with pytest.raises(InvalidInput) as refused:
        parse_spec(**params)  # type: ignore[arg-type]
    return [p.field for p in refused.value.problems]


def test_lists_come_comma_separated_or_repeated() -> None:
    assert split_list("a, b,,c") == ["a", "b", "c"]
    assert split_list(["a,b", "c"]) == ["a", "b", "c"]
    assert split_list(" , ") is None and split_list(None) is None


def test_defaults_are_a_raw_ascending_read_of_everything() -> None:
    spec = parse_spec()
    assert (spec.mode, spec.order, spec.limit, spec.aggregates) == ("raw", "asc", None, ())
    assert spec.time_range.start_us is None and spec.time_range.end_us is None
    assert spec.tz == ZoneInfo("UTC")


def test_aggregates_or_every_imply_the_aggregate_mode() -> None:
    assert parse_spec(aggregate="min,max").mode == "aggregate"
    spec = parse_spec(every="15m")
    assert spec.mode == "aggregate" and spec.every == Every(15, "m")
    assert spec.aggregates == ("count", "min", "max", "avg")
    assert parse_spec(every="1mo", tz="Europe/Paris").every == Every(1, "mo")


def test_latest_reads_newest_first() -> None:
    assert parse_spec(mode="latest").order == "desc"


def test_a_range_by_instants() -> None:
    spec = parse_spec(start="2026-01-01T00:00:00Z", end="2026-01-02T00:00:00Z")
    assert spec.time_range.start_us == parse_iso_us("2026-01-01T00:00:00Z")
    assert spec.time_range.end_us == parse_iso_us("2026-01-02T00:00:00Z")


def test_last_is_a_range_ending_now() -> None:
    spec = parse_spec(last="1h")
    assert spec.time_range.end_us is not None and spec.time_range.start_us is not None
    assert spec.time_range.end_us - spec.time_range.start_us == 3_600_000_000


def test_every_bad_parameter_is_named_at_once() -> None:
    assert fields_of(
        start="yesterday",
        aggregate="mean",
        mode="sideways",
        tz="Mars/Olympus",
        limit=0,
        order="up",
    ) == ["start", "aggregate", "mode", "tz", "limit", "order"]


def test_ranges_and_widths_that_cannot_be() -> None:
    assert fields_of(start="2026-01-02T00:00:00Z", end="2026-01-01T00:00:00Z") == ["end"]
    assert fields_of(last="1h", start="2026-01-01T00:00:00Z") == ["last"]
    assert fields_of(every="0m") == ["every"]
    assert fields_of(every="1h", mode="raw") == ["every"]
    assert fields_of(every="1000000000h") == ["every"]


def test_a_cursor_round_trips_and_a_forged_one_is_refused() -> None:
    cursor = Cursor(42, 1_700_000_000_000_000)
    assert parse_spec(cursor=cursor.encode()).cursor == cursor
    assert fields_of(cursor="not-a-cursor") == ["cursor"]
