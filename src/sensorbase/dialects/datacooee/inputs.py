"""Datacooee's nouns on Sensorbase's objects.

- An *input* (`senxxxxxxxxxx`) is a source, found by its key anywhere in the organisation,
  holding one numeric field: the single number field its schema declares, or (without a
  schema) the field `value`, or else its only series. Its `name` is the source's name and its
  `measure_unit` that field's unit.
- An *asset* (an integer such as 67) is a group: sources gathered under one integer id.

Every lookup takes the principal: another organisation's input or asset is "not found", and a
key limited to one bucket may use only inputs of that bucket.
"""

from __future__ import annotations

from dataclasses import dataclass

from sensorbase.auth.keys import Principal
from sensorbase.errors import Forbidden, NotFound, Problem, UnprocessableInput, invalid
from sensorbase.model import Group, Series, Source
from sensorbase.storage.base import Reader

VALUE_FIELD = "value"


@dataclass(frozen=True, slots=True)
class Input:
    source: Source
    bucket_key: str
    field: str
    unit: str | None
    series_id: int | None  # None until a reading is stored


def value_field(source: Source, series: list[Series]) -> tuple[str, str | None, int | None]:
    """(field, unit, series id or None) of the input's one numeric field."""
    by_field = {s.field: s for s in series}
    if source.schema is not None:
        numeric = [name for name, spec in source.schema.items() if spec.type == "number"]
        if len(numeric) != 1:
            raise UnprocessableInput(
                f"source '{source.key}' declares {len(numeric)} numeric fields "
                f"({', '.join(sorted(numeric)) or 'none'}); a Datacooee input has exactly one"
            )
        name = numeric[0]
        found = by_field.get(name)
        unit = source.schema[name].unit or (found.unit if found else None)
        return name, unit, found.id if found else None
    if VALUE_FIELD in by_field:
        found = by_field[VALUE_FIELD]
    elif len(series) == 1:
        found = series[0]
    elif not series:
        return VALUE_FIELD, None, None
    else:
        raise UnprocessableInput(
            f"source '{source.key}' holds {len(series)} fields "
            f"({', '.join(sorted(by_field))}); a Datacooee input has exactly one"
        )
    return found.field, found.unit, found.id


def _as_input(reader: Reader, source: Source) -> Input:
    bucket = reader.get_bucket_by_id(source.org_id, source.bucket_id)
    assert bucket is not None  # a source's bucket exists: the foreign key says so
    field, unit, series_id = value_field(source, reader.list_source_series(source.id))
    return Input(source, bucket.key, field, unit, series_id)


def find_source(reader: Reader, who: Principal, key: str) -> Source | None:
    """The principal's source `key`; Forbidden when its key is limited to another bucket."""
    if who.bucket_id is not None:
        mine = reader.get_source(who.bucket_id, key)
        if mine is not None:
            return mine
    found = reader.find_source(who.org_id, key)
    if found is not None and who.bucket_id is not None:
        raise Forbidden(f"this key is limited to a bucket that does not hold input '{key}'")
    return found


def get_input(reader: Reader, who: Principal, key: str) -> Input:
    source = find_source(reader, who, key)
    if source is None:
        raise NotFound(f"input '{key}' not found")
    return _as_input(reader, source)


def get_inputs(reader: Reader, who: Principal, keys: list[str], parameter: str) -> list[Input]:
    """Inputs in the order asked; every unknown one named (404)."""
    sources = [find_source(reader, who, key) for key in keys]
    missing = [key for key, source in zip(keys, sources, strict=True) if source is None]
    if missing:
        quoted = ", ".join(f"'{k}'" for k in missing)
        raise NotFound(
            f"input{'s' if len(missing) > 1 else ''} {quoted} not found",
            [Problem(f"names an input that does not exist: '{k}'", parameter) for k in missing],
        )
    return [_as_input(reader, s) for s in sources if s is not None]


def get_asset(reader: Reader, who: Principal, asset_id: int, parameter: str) -> Group:
    group = reader.get_group(who.org_id, asset_id)
    if group is None:
        raise NotFound(
            f"asset {asset_id} not found", [Problem(f"{asset_id} is not an asset", parameter)]
        )
    return group


def asset_inputs(
    reader: Reader,
    who: Principal,
    group: Group,
    keys: list[str] | None,
    parameter: str,
) -> list[Input]:
    """The asset's inputs (by creation), or those of `keys` in that order, each a member."""
    members = [reader.get_source_by_id(who.org_id, sid) for sid in group.source_ids]
    sources = [s for s in members if s is not None]
    if keys is not None:
        by_key = {s.key: s for s in reversed(sources)}  # the oldest wins a shared key
        strangers = [k for k in keys if k not in by_key]
        if strangers:
            raise invalid(
                [
                    Problem(f"'{k}' is not an input of asset {group.id}", parameter)
                    for k in strangers
                ]
            )
        sources = [by_key[k] for k in keys]
    if who.bucket_id is not None:
        outside = [s.key for s in sources if s.bucket_id != who.bucket_id]
        if outside:
            raise Forbidden(
                f"this key is limited to one bucket; asset {group.id} has inputs outside it "
                f"({', '.join(outside)})"
            )
    return [_as_input(reader, s) for s in sources]
