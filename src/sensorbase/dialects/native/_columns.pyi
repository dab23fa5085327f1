# The compiled module of _columns.c (built by setup.py where a C compiler is found).
from sensorbase.model import SeriesKey

def decode(
    body: bytes,
    max_points: int,
    bucket: str | None,
    source: str | None,
    key_type: type[SeriesKey],
    scale: int,
    /,
) -> tuple[list[SeriesKey], bytearray, bytearray, bytearray] | None: ...
