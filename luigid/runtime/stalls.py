"""How long the event loop was held: a timer that measures its own lateness.

Every ``INTERVAL`` seconds a callback is due; while some request (or a prune, a fork for a
snapshot...) holds the loop, it cannot run, and how late it finally runs is how long an
event arriving at its due time waited: the delay that a request saw on top of its own cost.
That is a lower bound of the hold itself, short of it by at most one interval (the hold may
have begun up to ``INTERVAL`` before the timer was due). It costs one short callback per
interval and nothing per request.

A stall is not always luigid's doing: on a busy machine the process may simply not be given
a CPU. So the loop thread's CPU time is read too: the part of a stall spent on the CPU (at
most the thread's CPU time since the previous tick) is what luigid's own work cost.

The longest stall since start is logged at shutdown and exposed to metrics collectors;
stalls over ``WARN_ABOVE`` are logged as warnings, at most one line per ``WARN_EVERY``.
With a ``LoopTrace`` (``luigid.runtime.loop_trace``) both also name what held the loop.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Protocol

logger = logging.getLogger("luigi.server")

#: Seconds between two timer callbacks: the resolution of the measurement.
INTERVAL = 0.02
#: Stalls longer than this are warned about (the scheduler's target: no request holds the
#: loop for more than 50 ms).
WARN_ABOVE = 0.05
#: Seconds between two warnings; stalls in between are counted and reported in the next one.
WARN_EVERY = 60.0
#: Length of the windows behind the recent maximum (see ``StallMonitor.reading``).
RECENT_WINDOW = 60.0


class Trace(Protocol):
    def take(self) -> tuple[float, str]: ...


def culprit(trace: Trace) -> str:
    """What the trace saw hold the loop since the monitor's previous tick."""
    took, name = trace.take()
    if name:
        return f"{name}, {took * 1000:.1f} ms on CPU"
    # no callback long enough to be named: the loop's own work, or no CPU for the process
    return f"no callback over {took * 1000:.1f} ms on CPU"


class StallMonitor:
    """Start it inside the running loop with ``start()``; ``stop()`` before work that is
    expected to block (the final save at shutdown)."""

    def __init__(
        self,
        interval: float = INTERVAL,
        warn_above: float = WARN_ABOVE,
        clock: Callable[[], float] = time.monotonic,
        cpu_clock: Callable[[], float] = time.thread_time,
        trace: Trace | None = None,
    ) -> None:
        self.interval = interval
        self.warn_above = warn_above
        self._clock = clock
        self._cpu_clock = cpu_clock
        #: names what held the loop (None: stalls are measured, not attributed)
        self.trace = trace
        self._timer: asyncio.TimerHandle | None = None
        self._due = 0.0
        self._cpu = 0.0
        #: longest stall since start, the longest on-CPU part of one, and how many stalls
        #: exceeded ``warn_above``
        self.longest = 0.0
        self.longest_on_cpu = 0.0
        self.over_threshold = 0
        #: what held the loop during the longest stall and the longest on the CPU ("" without a trace)
        self.longest_culprit = ""
        self.longest_on_cpu_culprit = ""
        # the recent maximum: this window's and the previous one's
        self._window_start = 0.0
        self._window_max = 0.0
        self._previous_window_max = 0.0
        # warnings: stalls over the threshold not yet reported, and the longest of them
        self._unreported = 0
        self._unreported_max = 0.0
        self._unreported_max_cpu = 0.0
        self._unreported_max_culprit = ""
        self._warned_at: float | None = None

    @property
    def running(self) -> bool:
        return self._timer is not None

    def start(self) -> None:
        now = self._clock()
        self._window_start = now
        self._cpu = self._cpu_clock()
        self._schedule(now)

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._unreported:
            self._warn(self._clock())

    def _schedule(self, now: float) -> None:
        self._due = now + self.interval
        self._timer = asyncio.get_running_loop().call_later(self.interval, self._tick)

    def _tick(self) -> None:
        now, cpu = self._clock(), self._cpu_clock()
        stall = max(0.0, now - self._due)
        blamed = culprit(self.trace) if self.trace is not None else ""
        self.record(stall, now, on_cpu=min(stall, cpu - self._cpu), culprit=blamed)
        self._cpu = cpu
        self._schedule(now)

    def record(self, stall: float, now: float, on_cpu: float | None = None, culprit: str = "") -> None:
        """Account for a stall of ``stall`` seconds that ended at ``now``, ``on_cpu`` of them
        spent on the CPU (all of it when not known), held by ``culprit`` (if known)."""
        on_cpu = stall if on_cpu is None else on_cpu
        if on_cpu > self.longest_on_cpu:
            self.longest_on_cpu, self.longest_on_cpu_culprit = on_cpu, culprit
        if now - self._window_start >= RECENT_WINDOW:
            elapsed_windows = (now - self._window_start) // RECENT_WINDOW
            self._previous_window_max = self._window_max if elapsed_windows == 1 else 0.0
            self._window_max = 0.0
            self._window_start += elapsed_windows * RECENT_WINDOW
        if stall > self._window_max:
            self._window_max = stall
        if stall > self.longest:
            self.longest = stall
            self.longest_culprit = culprit
        if stall > self.warn_above:
            if culprit:  # traced (a debugging aid): every stall over the limit, named
                logger.info(
                    "Event loop held %.1f ms (%.1f ms on CPU) by %s", stall * 1000, on_cpu * 1000, culprit
                )
            self.over_threshold += 1
            self._unreported += 1
            if stall > self._unreported_max:
                self._unreported_max, self._unreported_max_cpu = stall, on_cpu
                self._unreported_max_culprit = culprit
        if self._unreported and (self._warned_at is None or now - self._warned_at >= WARN_EVERY):
            self._warn(now)

    def _warn(self, now: float) -> None:
        limit = f"{self.warn_above * 1000:.0f} ms"
        longest, on_cpu = self._unreported_max * 1000, self._unreported_max_cpu * 1000
        worst = f"{longest:.1f} ms ({on_cpu:.1f} ms of it on CPU)"
        if self._unreported_max_culprit:
            worst += f" by {self._unreported_max_culprit}"
        if self._unreported == 1:
            what = f"for {worst}, over {limit}"
        else:
            what = f"for up to {worst}, {self._unreported} times over {limit} since the last warning"
        logger.warning("The event loop was held %s: requests arriving meanwhile waited", what)
        self._warned_at = now
        self._unreported = 0
        self._unreported_max = self._unreported_max_cpu = 0.0
        self._unreported_max_culprit = ""

    def reading(self) -> dict[str, float]:
        """For metrics: the longest stall since start, the longest on-CPU part of one, the
        longest stall in the last one or two windows of ``RECENT_WINDOW`` (seconds), and how
        many stalls exceeded ``warn_above``."""
        return {
            "longest_seconds": self.longest,
            "longest_on_cpu_seconds": self.longest_on_cpu,
            "recent_longest_seconds": max(self._window_max, self._previous_window_max),
            "over_threshold": self.over_threshold,
        }

    def summary(self) -> str:
        """One line for the log at shutdown; ``bench/run.py`` reads it back."""
        line = (
            f"Longest event-loop stall since start: {self.longest * 1000:.1f} ms "
            f"(longest on CPU {self.longest_on_cpu * 1000:.1f} ms; "
            f"{self.over_threshold} over {self.warn_above * 1000:.0f} ms)"
        )
        if self.longest_culprit:
            line += f"; held by {self.longest_culprit}"
        if self.longest_on_cpu_culprit:
            line += f"; longest on CPU held by {self.longest_on_cpu_culprit}"
        return line
