# The compiled module of _points_json.c (built by setup.py where a C compiler is found).
import numpy as np
import numpy.typing as npt

def encode(time_us: npt.NDArray[np.int64], numbers: bytes, /) -> bytes | None: ...
