"""When the write log counts as quiet (storage/log_quiet.py): both fold helpers ask it."""

from __future__ import annotations

import pytest

from sensorbase.storage.log_quiet import QUIET_MOST_S, QuietLog


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def looks(log: QuietLog, clock: Clock, newest: object, every_s: float, times: int) -> list[bool]:
    """What `times` looks, `every_s` apart, at a log whose newest row stays `newest` say."""
    seen = []
    for _ in range(times):
        clock.now += every_s
        seen.append(log.quiet(newest))
    return seen


def test_rows_coming_fast_leave_the_least_wait() -> None:
    clock = Clock()
    log = QuietLog(1.0, clock)
    for row in range(20):  # a row at every look, half a second apart
        clock.now += 0.5
        assert not log.quiet(row)
    assert log.wait_s() == 1.0
    assert looks(log, clock, 19, 0.5, 2) == [False, True]


def test_slow_commits_are_not_taken_for_a_pause() -> None:
    """A fleet's first commits, 1.5 s apart: a fixed second would fold between each two."""
    clock = Clock()
    log = QuietLog(1.0, clock)
    # The first gap: nothing to measure it by yet.
    assert looks(log, clock, 0, 0.5, 3) == [False, False, True]
    for row in range(1, 6):
        assert looks(log, clock, row, 0.5, 3) == [False, False, False]
    assert log.wait_s() == pytest.approx(3.0)
    # Until twice the longest gap (3 s since row 5 came, a second of it looked at above)...
    assert looks(log, clock, 5, 0.5, 3) == [False] * 3
    # ...and once the writes have stopped for twice the longest gap, it is.
    assert looks(log, clock, 5, 0.5, 1) == [True]


def test_no_gap_makes_the_wait_longer_than_the_most() -> None:
    clock = Clock()
    log = QuietLog(1.0, clock)
    log.quiet(1)
    clock.now += QUIET_MOST_S * 0.9  # slow, but remembered
    log.quiet(2)
    assert log.wait_s() == QUIET_MOST_S
    clock.now += QUIET_MOST_S - 0.01
    assert not log.quiet(2)
    clock.now += 0.02
    assert log.quiet(2)


def test_a_pause_is_not_remembered_as_a_gap() -> None:
    """Writes again after an hour's pause: the hour does not lengthen the next wait."""
    clock = Clock()
    log = QuietLog(2.0, clock)
    log.quiet(1)
    clock.now += 3600
    assert log.quiet(1)
    log.quiet(2)
    assert log.wait_s() == 2.0


def test_old_gaps_are_forgotten_as_new_rows_come() -> None:
    clock = Clock()
    log = QuietLog(1.0, clock)
    log.quiet(0)
    clock.now += 4.0
    log.quiet(1)
    assert log.wait_s() == 8.0
    for row in range(2, 12):  # fast again
        clock.now += 0.5
        log.quiet(row)
    assert log.wait_s() == 1.0


def test_an_empty_log_is_quiet_after_the_least_wait() -> None:
    clock = Clock()
    log = QuietLog(2.0, clock)
    assert looks(log, clock, None, 0.5, 4) == [False, False, False, True]
