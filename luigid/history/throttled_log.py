"""A warning that is logged at most once per interval, with a count of what it stood for.

Used where one cause (a full queue, a dead database) would otherwise log once per task event.
"""

from __future__ import annotations

import logging
import threading
import time


class ThrottledWarning:
    def __init__(self, logger: logging.Logger, interval: float = 60.0) -> None:
        self._logger = logger
        self._interval = interval
        self._last: float | None = None
        self._suppressed = 0
        self._lock = threading.Lock()

    def warn(self, message: str, *args: object) -> None:
        now = time.monotonic()
        with self._lock:
            if self._last is not None and now - self._last < self._interval:
                self._suppressed += 1
                return
            suppressed, self._suppressed, self._last = self._suppressed, 0, now
        if suppressed:
            message += " (%d similar warnings suppressed)"
            args = (*args, suppressed)
        self._logger.warning(message, *args)
