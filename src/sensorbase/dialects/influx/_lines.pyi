# The compiled module of _lines.c (built by setup.py where a C compiler is found).
def parse(
    body: bytes, mul: int, div: int, now_us: int, seed: int, /
) -> tuple[list[bytes], list[bytes], bytearray, bytearray, bytearray, bytearray, int] | None: ...
