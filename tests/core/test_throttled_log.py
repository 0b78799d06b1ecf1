"""The one rate-limited warning every repeated fault goes through."""

from __future__ import annotations

import logging

import pytest

from luigid.core.throttled_log import Throttle, ThrottledWarning


def test_one_told_per_interval_and_the_next_counts_the_rest() -> None:
    throttle = Throttle(interval=60.0)
    assert throttle.due(now=0.0) == 0
    assert [throttle.due(now=t) for t in (1.0, 2.0, 59.9)] == [None, None, None]
    assert throttle.held == 3
    assert throttle.due(now=60.0) == 3  # a new interval: told, with what was held back
    assert throttle.due(now=61.0) is None


def test_a_burst_is_told_in_full_before_holding_back() -> None:
    throttle = Throttle(interval=60.0, burst=3)
    assert [throttle.due(now=float(t)) for t in range(5)] == [0, 0, 0, None, None]
    assert throttle.due(now=70.0) == 2


def test_warning_names_the_caller_and_adds_the_count(caplog: pytest.LogCaptureFixture) -> None:
    warning = ThrottledWarning(logging.getLogger("test.throttle"), interval=0.0)
    warning.throttle.interval = 3600.0
    with caplog.at_level(logging.WARNING, logger="test.throttle"):
        told = [warning.warn("disk full on %s", "sda") for _ in range(4)]
        warning.throttle.interval = 0.0  # the next one starts a new interval
        warning.warn("disk full on %s", "sda")
    assert told == [True, False, False, False]
    assert [r.getMessage() for r in caplog.records] == [
        "disk full on sda",
        "disk full on sda (3 similar warnings suppressed)",
    ]
    assert all(r.filename == "test_throttled_log.py" for r in caplog.records)
    assert all(r.exc_info is None for r in caplog.records)
