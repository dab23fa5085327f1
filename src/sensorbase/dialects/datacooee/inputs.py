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
from sensorbase.catalog import Catalog
from sensorbase.catalog.groups import GroupView
from sensorbase.errors import Forbidden, NotFound, Problem, UnprocessableInput, invalid
from sensorbase.model import Bucket, Scope, Series, Source

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


async def _as_input(
    catalog: Catalog, who: Principal, source: Source, bucket: Bucket, recent: bool = False
) -> Input:
    series = await catalog.sources.series_of(who, source, recent=recent)
    field, unit, series_id = value_field(source, series)
    return Input(source, bucket.key, field, unit, series_id)


async def _find(
    catalog: Catalog, who: Principal, key: str, scope: Scope, recent: bool = False
) -> tuple[Source, Bucket] | None:
    """The principal's source `key`; Forbidden when its key is limited to another bucket."""
    return await catalog.sources.find(who, key, scope, forbid_elsewhere=True, recent=recent)


async def get_input(
    catalog: Catalog, who: Principal, key: str, scope: Scope, *, recent: bool = False
) -> Input:
    """`recent`: the input and its series as seen within `key_cache_s` will do (an upload,
    whose write checks them again)."""
    found = await _find(catalog, who, key, scope, recent)
    if found is None:
        raise NotFound(f"input '{key}' not found")
    return await _as_input(catalog, who, *found, recent=recent)


async def get_inputs(
    catalog: Catalog, who: Principal, keys: list[str], parameter: str
) -> list[Input]:
    """Inputs in the order asked; every unknown one named (404)."""
    found = [await _find(catalog, who, key, "data:read") for key in keys]
    missing = [key for key, item in zip(keys, found, strict=True) if item is None]
    if missing:
        quoted = ", ".join(f"'{k}'" for k in missing)
        raise NotFound(
            f"input{'s' if len(missing) > 1 else ''} {quoted} not found",
            [Problem(f"names an input that does not exist: '{k}'", parameter) for k in missing],
        )
    return [await _as_input(catalog, who, *item) for item in found if item is not None]


async def get_asset(catalog: Catalog, who: Principal, asset_id: int, parameter: str) -> GroupView:
    try:
        return await catalog.groups.get_to_read(who, asset_id)
    except NotFound:
        raise NotFound(
            f"asset {asset_id} not found", [Problem(f"{asset_id} is not an asset", parameter)]
        ) from None


async def asset_inputs(
    catalog: Catalog,
    who: Principal,
    asset: GroupView,
    keys: list[str] | None,
    parameter: str,
) -> list[Input]:
    """The asset's inputs (by creation), or those of `keys` in that order, each a member."""
    members = asset.members
    group = asset.group
    if keys is not None:
        by_key = {s.key: (s, b) for s, b in reversed(members)}  # the oldest wins a shared key
        strangers = [k for k in keys if k not in by_key]
        if strangers:
            raise invalid(
                [
                    Problem(f"'{k}' is not an input of asset {group.id}", parameter)
                    for k in strangers
                ]
            )
        members = [by_key[k] for k in keys]
    if who.bucket_id is not None:
        outside = [s.key for s, _ in members if s.bucket_id != who.bucket_id]
        if outside:
            raise Forbidden(
                f"this key is limited to one bucket; asset {group.id} has inputs outside it "
                f"({', '.join(outside)})"
            )
    return [await _as_input(catalog, who, s, b) for s, b in members]
