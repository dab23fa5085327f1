# The compiled module of _chunk_blocks.c (built by setup.py where a C compiler is found).
import numpy as np
import numpy.typing as npt

def scaled(
    values: npt.NDArray[np.float64], most_decimals: int, /
) -> tuple[int, bytes | None, int]: ...
def regular(times: npt.NDArray[np.int64], /) -> bool: ...
def compact_numbers(
    decimals: int,
    times: npt.NDArray[np.int64],
    stored: npt.NDArray[np.int64],
    block_points: int,
    sizes: list[int],
    /,
) -> bytes: ...
