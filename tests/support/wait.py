"""Polling with a bound: the limit only stops a broken run from hanging, it asserts no timing."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_for(
    predicate: Callable[[], T], timeout: float = 60.0, what: str = "condition", interval: float = 0.05
) -> T:
    """Poll until ``predicate()`` is truthy and return its value; fail naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        last = predicate()
        if last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what} (last value: {last!r})")
        time.sleep(interval)
