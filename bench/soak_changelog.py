"""The daemon's change log during a soak: sampling its files, and the figures its bound is judged on.

luigid appends every state-changing call to ``<state_path>.changelog.<gen>``; a snapshot starts
a new generation when it is taken (every ``[scheduler] state_snapshot_interval`` seconds, on a
tick of at most 1 s, later while a prune round holds it) and deletes the generations it covers
once it is on disk. So what is on disk at any moment is what was appended since the rotation
before the last completed snapshot: at most about one interval, plus the tick's lateness, the
snapshot's write time and the next tick that reaps it (the *slack*). Hence the bound the verdict
checks (``bench/soak_verdict.py``): the largest total size seen is at most the bytes appended in
the worst window of ``interval + slack`` seconds of the run. A log whose generations are never
deleted holds everything since the start, which exceeds any such window once the run is longer.

The bytes appended are measured, not guessed: each generation's largest size seen, summed over
every generation seen (a generation lives at least one interval, far longer than the sampling
period, so none is missed). The client's own count of state-changing calls gives the change rate
and the bytes per call, reported next to the bound as its ``window x rate x bytes`` reading.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bench.soak_load import LoadStats

#: The calls the soak makes that change the daemon's state (``mutating`` in luigid.core.rpc);
#: the rest (task_list, worker_list, resource_list) only read. A label's suffix, as in
#: ``add_task(DONE)``, names a variant of the same method.
STATE_CHANGING = frozenset({"add_task", "add_worker", "get_work", "ping"})


@dataclass(frozen=True)
class ChangeLogSample:
    at: float
    sizes: dict[int, int]  # generation -> bytes on disk

    @property
    def total(self) -> int:
        return sum(self.sizes.values())


def sample_changelog(state_path: Path, at: float) -> ChangeLogSample:
    """Sizes of the change-log files next to ``state_path`` (quarantined ones are not counted)."""
    prefix = state_path.name + ".changelog."
    sizes: dict[int, int] = {}
    for path in state_path.parent.glob(prefix + "*"):
        suffix = path.name[len(prefix) :]
        if not suffix.isdigit():
            continue
        try:
            sizes[int(suffix)] = path.stat().st_size
        except FileNotFoundError:  # deleted by a snapshot between listing and stat
            continue
    return ChangeLogSample(at, sizes)


def state_changing_calls(stats: LoadStats) -> int:
    """Answered state-changing calls the load made (failed ones may not have been logged)."""
    return sum(
        len(values) for label, values in stats.latencies.items() if label.split("(")[0] in STATE_CHANGING
    )


def appended(samples: Sequence[ChangeLogSample]) -> list[tuple[float, int]]:
    """Bytes appended since the start, at each sample: every generation's largest size so far."""
    largest: dict[int, int] = {}
    series = []
    for s in samples:
        for gen, size in s.sizes.items():
            largest[gen] = max(largest.get(gen, 0), size)
        series.append((s.at, sum(largest.values())))
    return series


def worst_window(series: Sequence[tuple[float, int]], window: float) -> int:
    """The most bytes appended between two samples at least ``window`` seconds apart and no
    more than one sample further (before the first sample counts as nothing appended)."""
    times = [t for t, _ in series]
    worst = 0
    for t, value in series:
        before = bisect.bisect_right(times, t - window) - 1
        worst = max(worst, value - (series[before][1] if before >= 0 else 0))
    return worst


@dataclass
class ChangeLogFigures:
    interval: float  # [scheduler] state_snapshot_interval the daemon ran with
    window: float  # interval + slack: the longest a byte should stay on disk
    samples: int
    max_bytes: int
    max_at: float
    max_files: int
    last_third_max: int  # for the report: it does not grow with run time
    appended_bytes: int
    worst_window_bytes: int
    deleted: int  # generations seen on disk and later gone
    calls: int  # state-changing calls the load made
    seconds: float
    series: list[tuple[float, int, int]] = field(default_factory=list)  # (time, bytes, files)

    @property
    def calls_per_second(self) -> float:
        return self.calls / self.seconds if self.seconds else 0.0

    @property
    def bytes_per_call(self) -> float:
        """Prune records are included, so slightly above one call's record."""
        return self.appended_bytes / self.calls if self.calls else 0.0

    @property
    def rate_bound(self) -> float:
        """window x mean change rate x bytes per call: the bound's reading in calls."""
        return self.window * self.calls_per_second * self.bytes_per_call


def changelog_figures(
    samples: Sequence[ChangeLogSample], interval: float, slack: float, calls: int, start: float, end: float
) -> ChangeLogFigures:
    window = interval + slack
    cumulative = appended(samples)
    biggest = max(samples, key=lambda s: s.total, default=ChangeLogSample(start, {}))
    last_third = [s.total for s in samples if s.at >= start + 2 * (end - start) / 3]
    seen: set[int] = set()
    for s in samples:
        seen |= set(s.sizes)
    still_there = set(samples[-1].sizes) if samples else set()
    return ChangeLogFigures(
        interval=interval,
        window=window,
        samples=len(samples),
        max_bytes=biggest.total,
        max_at=biggest.at,
        max_files=max((len(s.sizes) for s in samples), default=0),
        last_third_max=max(last_third, default=0),
        appended_bytes=cumulative[-1][1] if cumulative else 0,
        worst_window_bytes=worst_window(cumulative, window),
        deleted=len(seen - still_there),
        calls=calls,
        seconds=end - start,
        series=[(s.at, s.total, len(s.sizes)) for s in samples],
    )
