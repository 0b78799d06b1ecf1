"""Warnings that cannot flood the log: at most a few lines per interval, each later line
saying how many were held back.

A fault that repeats in a loop (a full disk, a dead database or SMTP server, no descriptors
left to accept with) would otherwise log once per event, up to hundreds of thousands of lines
a second. Every warning that can repeat goes through here. It lives in core, the bottom layer,
because every layer has such warnings and imports nothing from luigid.
"""

from __future__ import annotations

import logging
import threading
import time

#: seconds between two lines of one repeated warning, unless a caller says otherwise
DEFAULT_INTERVAL = 60.0
SUPPRESSED_NOTE = " (%d similar warnings suppressed)"


class Throttle:
    """Decides whether one more occurrence of something is told now; counts the others.

    The first ``burst`` occurrences of an interval are told; the rest are counted, and the
    count is handed to the next occurrence that is told. Thread-safe.
    """

    def __init__(self, interval: float = DEFAULT_INTERVAL, burst: int = 1) -> None:
        self.interval = interval
        self.burst = burst
        self._window_start: float | None = None
        self._told = 0
        self._held = 0
        self._lock = threading.Lock()

    def due(self, now: float | None = None) -> int | None:
        """None: keep quiet about this one. Otherwise tell it, with the number held back since
        the last one told."""
        now = time.monotonic() if now is None else now
        with self._lock:
            if self._window_start is None or now - self._window_start >= self.interval:
                self._window_start, self._told = now, 0
            if self._told >= self.burst:
                self._held += 1
                return None
            self._told += 1
            held, self._held = self._held, 0
            return held

    @property
    def held(self) -> int:
        """Occurrences counted but not told yet."""
        return self._held


class ThrottledWarning:
    """``warn(message, *args)`` logs through ``logger`` as ``Throttle`` allows, adding the
    count of held-back warnings to the line."""

    def __init__(self, logger: logging.Logger, interval: float = DEFAULT_INTERVAL, burst: int = 1) -> None:
        self._logger = logger
        self.throttle = Throttle(interval, burst)

    def warn(self, message: str, *args: object, exc_info: bool = False) -> bool:
        """Log or count one occurrence; True when it was logged."""
        held = self.throttle.due()
        if held is None:
            return False
        if held:
            message += SUPPRESSED_NOTE
            args = (*args, held)
        # stacklevel: the record names the caller's line, not this one
        self._logger.warning(message, *args, exc_info=exc_info or None, stacklevel=2)
        return True
