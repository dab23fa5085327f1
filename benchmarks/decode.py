#!/usr/bin/env python3
"""The native write's decode alone, in process: bench.py's 5,000-point fleet body (or one of
--series distinct sources) decoded by `decode_fast` through the compiled `_columns` module and
through msgspec's path (the module set aside), alternated, CPU time per point:

  .venv/bin/python benchmarks/decode.py
  .venv/bin/python benchmarks/decode.py --series 5000 --rounds 9
"""

from __future__ import annotations

import argparse
import statistics
import time

from bench import BATCH, _body
from sensorbase.dialects.native import fast_decode


def _per_point_us(body: bytes, points: int, repeat: int) -> float:
    start = time.process_time()
    for _ in range(repeat):
        batch = fast_decode.decode_fast(body, "farm", None, "s", 100_000)
    assert batch is not None and len(batch) == points
    return (time.process_time() - start) / repeat / points * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--series", type=int, default=1000, help="distinct sources in the body")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=200, help="decodes per round")
    args = parser.parse_args()
    sources = [i % args.series for i in range(BATCH)]
    times = [1_577_836_800 + i // args.series for i in range(BATCH)]
    values = [round(20 + (i * 7919 % 1000) / 97, 2) for i in range(BATCH)]
    body = _body(sources, times, values, big=False)
    compiled = fast_decode.decode_columns
    if compiled is None:
        raise SystemExit("the _columns module is not built: pip install -e . with a C compiler")
    figures: dict[str, list[float]] = {"msgspec": [], "_columns": []}
    for _ in range(args.rounds):
        for name, decoder in (("msgspec", None), ("_columns", compiled)):
            fast_decode.decode_columns = decoder
            figures[name].append(_per_point_us(body, BATCH, args.repeat))
    fast_decode.decode_columns = compiled
    print(f"one {BATCH:,}-point body ({len(body):,} bytes, {args.series:,} series), CPU us/point:")
    for name, runs in figures.items():
        print(f"  {name:8} median {statistics.median(runs):.3f} ({min(runs):.3f}-{max(runs):.3f})")


if __name__ == "__main__":
    main()
