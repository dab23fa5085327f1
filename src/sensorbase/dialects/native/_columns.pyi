# The compiled module of _columns.c (built by setup.py where a C compiler is found).
from collections.abc import Sequence
from typing import overload

from sensorbase.model import SeriesKey

NAMED_KEYS_AT: int  # -1 where str hashes are not their bytes' (then every body's keys are a list)

class Keys(Sequence[SeriesKey]):
    """A body's distinct series keys, each SeriesKey made when first asked for."""

    @overload
    def __getitem__(self, index: int, /) -> SeriesKey: ...
    @overload
    def __getitem__(self, index: slice, /) -> list[SeriesKey]: ...
    def __len__(self) -> int: ...
    @property
    def _names(self) -> object: ...

def decode(
    body: bytes,
    max_points: int,
    bucket: str | None,
    source: str | None,
    key_type: type[SeriesKey],
    scale: int,
    /,
) -> tuple[list[SeriesKey] | Keys, bytearray, bytearray, bytearray] | None: ...
