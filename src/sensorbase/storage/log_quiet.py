"""When the write log has gone quiet, for both backends' fold helpers: a quiet log is folded
whatever it holds, and its small chunks merged (sqlite/folder.py, postgres/folder.py).

Quiet means no new row for `least_s`, or, while rows come slowly, for twice the longest of
the last few gaps between them. A fleet's first commits each create thousands of series, and
on PostgreSQL took over a second each (100,000 devices created at ~9,000 points/s): a fixed
second without a new row then came between two commits of one burst of writes, and the
helper folded ~100,000 one-point series (~12 us a series) in the middle of it, work that ran
on into the writes that followed (a third of `curve.py`'s 100,000-series runs on PostgreSQL
ingested at 0.2-0.33x the 1,000-series rate, the helper busy throughout: benchmarks/README.md,
"The fold of a fleet's first commits"). Those tiny chunks are refilled by the next fold
anyway. A gap longer than `QUIET_MOST_S` is a pause, not a slow commit: it is not remembered,
and no gap makes the wait longer than that."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

QUIET_MOST_S = 10.0  # the longest a log without new rows waits for its fold
QUIET_GAPS = 8  # gaps between new rows remembered
QUIET_GAP_FACTOR = 2.0  # a pause is this many times the longest of them


class QuietLog:
    """Told the log's newest row id at each look (`quiet`), whether the log has gone quiet."""

    def __init__(self, least_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.least_s = least_s
        self.clock = clock
        self._newest: object = None
        self._since = clock()
        self._gaps: deque[float] = deque(maxlen=QUIET_GAPS)

    def quiet(self, newest: object) -> bool:
        now = self.clock()
        if newest != self._newest:
            gap = now - self._since
            if self._newest is not None and gap < QUIET_MOST_S:
                self._gaps.append(gap)
            self._newest, self._since = newest, now
            return False
        return now - self._since >= self.wait_s()

    def wait_s(self) -> float:
        """How long without a new row makes the log quiet now."""
        longest = max(self._gaps, default=0.0)
        return min(QUIET_MOST_S, max(self.least_s, QUIET_GAP_FACTOR * longest))
