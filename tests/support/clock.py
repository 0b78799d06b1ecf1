"""A clock that only moves when the test says so."""

from __future__ import annotations

import time

import pytest

#: An arbitrary, recognisable epoch second for a fake clock to start at.
START = 1_700_000_000.0


class FakeClock:
    """A stand-in for ``time.time``: call it for the time, move ``now`` or call ``advance``."""

    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> float:
        self.now += seconds
        return self.now

    def install(self, monkeypatch: pytest.MonkeyPatch) -> FakeClock:
        """Drive ``time.time`` (so every timestamp the scheduler takes) from this clock."""
        monkeypatch.setattr(time, "time", self)
        return self
