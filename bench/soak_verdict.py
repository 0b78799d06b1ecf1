"""Judging a soak run: latency figures per method, the memory-flatness rule, and the report text.

Flat memory, precisely: the run is cut into thirds by time. The first third is warm-up (workers
join, the first ones leave, the daemon has not pruned anything yet). The run passes the memory
check when the median of the daemon's VmRSS samples in the last third is at most
``(1 + rss_tolerance)`` times the median of those in the middle third. A leak of a few hundred
bytes per task or worker shows up as steady growth from the middle to the last third; allocator
noise and the periodic prune's sawtooth do not move a median much.

Bounded change log (``bench/soak_changelog.py`` says why the bound holds): the largest total
size of the change-log files seen is at most the bytes appended in the worst window of
``snapshot interval + slack`` seconds, and generations were seen deleted, about one per window.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from bench.latency import percentile
from bench.soak_changelog import ChangeLogFigures
from bench.soak_load import LoadStats, StateSample

MIB = 1024 * 1024
KIB = 1024


@dataclass
class MethodFigures:
    label: str
    count: int
    per_second: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    errors: int


@dataclass
class Thirds:
    """Medians over the middle and last thirds of the run."""

    middle: float
    last: float
    middle_n: int
    last_n: int

    @property
    def growth(self) -> float:
        return (self.last - self.middle) / self.middle if self.middle else 0.0


@dataclass
class Verdict:
    passed: bool
    failures: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def merge(parts: list[LoadStats]) -> LoadStats:
    """All load processes' figures as one."""
    total = LoadStats()
    for part in parts:
        for label, values in part.latencies.items():
            total.latencies.setdefault(label, type(values)("d")).extend(values)
        for label, n in part.errors.items():
            total.errors[label] = total.errors.get(label, 0) + n
        total.first_errors += part.first_errors
        total.state += part.state
        for name in LoadStats.COUNTERS:
            setattr(total, name, getattr(total, name) + getattr(part, name))
    total.state.sort(key=lambda s: s.at)
    return total


def method_figures(stats: LoadStats, seconds: float) -> list[MethodFigures]:
    rows = []
    for label in sorted(set(stats.latencies) | set(stats.errors)):
        values = list(stats.latencies.get(label, ()))
        rows.append(
            MethodFigures(
                label=label,
                count=len(values),
                per_second=len(values) / seconds,
                p50_ms=percentile(values, 50) * 1000 if values else float("nan"),
                p99_ms=percentile(values, 99) * 1000 if values else float("nan"),
                max_ms=max(values) * 1000 if values else float("nan"),
                errors=stats.errors.get(label, 0),
            )
        )
    return rows


def thirds(series: Sequence[tuple[float, float]], start: float, end: float) -> Thirds | None:
    """Medians of ``(time, value)`` samples falling in the middle and last thirds of [start, end]."""
    span = (end - start) / 3
    middle = [v for t, v in series if start + span <= t < start + 2 * span]
    last = [v for t, v in series if start + 2 * span <= t <= end]
    if not middle or not last:
        return None
    return Thirds(statistics.median(middle), statistics.median(last), len(middle), len(last))


def tasks_known(sample: StateSample) -> int:
    return sum(sample.tasks.values())


def judge(
    stats: LoadStats,
    rss: list[tuple[float, int]],
    start: float,
    end: float,
    rss_tolerance: float,
    settle_seconds: float,
    daemon_alive: bool,
    changelog: ChangeLogFigures | None = None,
) -> Verdict:
    """Pass = no failed call, flat RSS (see the module docstring), pruning seen, daemon still up,
    and, when ``changelog`` is given, a change log bounded as the module docstring says."""
    verdict = Verdict(passed=True)
    failures, notes = verdict.failures, verdict.notes
    n_errors = sum(stats.errors.values())
    if n_errors:
        failures.append(f"{n_errors} failed calls: {stats.errors}; first: {stats.first_errors[:3]}")
    if not daemon_alive:
        failures.append("the daemon died during the run")
    memory = thirds([(t, float(v)) for t, v in rss], start, end)
    if memory is None:
        failures.append("too few RSS samples to compare the middle and last thirds")
    elif memory.growth > rss_tolerance:
        failures.append(
            f"RSS grew {memory.growth:+.1%} from the middle third (median {memory.middle / MIB:.1f} MiB) "
            f"to the last third (median {memory.last / MIB:.1f} MiB); allowed {rss_tolerance:.0%}"
        )
    if not stats.state:
        failures.append("no web-UI samples of the daemon's state, so pruning could not be checked")
    else:
        max_workers = max(s.workers for s in stats.state)
        max_tasks = max(tasks_known(s) for s in stats.state)
        if max_workers >= stats.workers_started:
            failures.append(
                f"pruning not seen: worker_list reached {max_workers} of {stats.workers_started} workers"
            )
        if max_tasks >= stats.tasks_scheduled:
            failures.append(
                f"pruning not seen: task_list reached {max_tasks} of {stats.tasks_scheduled} tasks"
            )
    if (end - start) / 3 < settle_seconds:
        notes.append(
            f"a third of the run ({(end - start) / 3:.0f}s) is shorter than the time for the first "
            f"workers' tasks to be pruned (~{settle_seconds:.0f}s): the middle third may still be warming up"
        )
    if changelog is not None:
        failures += changelog_failures(changelog)
        if changelog.seconds < 2 * changelog.window:
            notes.append(
                f"the run ({changelog.seconds:.0f}s) is shorter than twice the change log's window "
                f"({changelog.window:.0f}s): a log that is never truncated would still pass"
            )
    verdict.passed = not failures
    return verdict


def changelog_failures(log: ChangeLogFigures) -> list[str]:
    """The change log stays under the bytes of its worst window and is seen shrinking."""
    if log.appended_bytes == 0:
        return ["no change-log file was seen next to the daemon's state file"]
    failures = []
    if log.max_bytes > log.worst_window_bytes:
        failures.append(
            f"change log reached {log.max_bytes / KIB:.0f} KiB in {log.max_files} files, more than the "
            f"{log.worst_window_bytes / KIB:.0f} KiB appended in the worst {log.window:.0f}s window "
            f"(snapshot interval {log.interval:g}s + slack): covered generations are not being deleted"
        )
    expected = max(1, int(log.seconds / log.window) - 1)
    if log.deleted < expected:
        failures.append(
            f"change log shrank too rarely: {log.deleted} generations deleted in {log.seconds:.0f}s, "
            f"expected at least {expected} (one per {log.window:.0f}s window)"
        )
    return failures


def report_lines(
    figures: list[MethodFigures],
    stats: LoadStats,
    rss: list[tuple[float, int]],
    start: float,
    end: float,
    verdict: Verdict,
    settings: dict[str, Any],
    changelog: ChangeLogFigures | None = None,
) -> list[str]:
    seconds = end - start
    total = sum(f.count for f in figures)
    lines = [
        "luigid soak: " + ", ".join(f"{k}={v}" for k, v in settings.items()),
        f"{total} calls in {seconds:.0f}s = {total / seconds:.0f} calls/s; "
        f"{sum(stats.errors.values())} failed; {stats.connections} connections opened",
        f"workers: {stats.workers_started} joined, {stats.workers_left} left when done, "
        f"{stats.workers_crashed} crashed mid-task; tasks: {stats.tasks_scheduled} scheduled, "
        f"{stats.tasks_done} done, {stats.tasks_failed} failed",
        "",
        f"{'method':<18}{'calls':>9}{'calls/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}{'errors':>8}",
    ]
    for f in figures:
        lines.append(
            f"{f.label:<18}{f.count:>9}{f.per_second:>9.1f}{f.p50_ms:>9.2f}{f.p99_ms:>9.2f}"
            f"{f.max_ms:>9.1f}{f.errors:>8}"
        )
    lines += [
        "",
        f"{'t (s)':>6}{'RSS MiB':>9}{'tasks':>8}{'workers':>9}{'log KiB':>9}"
        "  (daemon state from the UI poller; change log on disk)",
    ]
    step = max(1, len(rss) // 12)
    log_series = changelog.series if changelog is not None else []
    for t, value in rss[::step] + ([rss[-1]] if rss and (len(rss) - 1) % step else []):
        near = min(stats.state, key=lambda s: abs(s.at - t), default=None)
        tasks = f"{tasks_known(near):>8}" if near else f"{'-':>8}"
        workers = f"{near.workers:>9}" if near else f"{'-':>9}"
        log = min(log_series, key=lambda s: abs(s[0] - t), default=None)
        log_kib = f"{log[1] / KIB:>9.0f}" if log else f"{'-':>9}"
        lines.append(f"{t - start:>6.0f}{value / MIB:>9.1f}{tasks}{workers}{log_kib}")
    memory = thirds([(t, float(v)) for t, v in rss], start, end)
    if memory is not None:
        lines.append(
            f"RSS median: middle third {memory.middle / MIB:.1f} MiB ({memory.middle_n} samples), "
            f"last third {memory.last / MIB:.1f} MiB ({memory.last_n} samples), growth {memory.growth:+.1%}"
        )
    if changelog is not None:
        lines += changelog_lines(changelog, start)
    lines.append("")
    lines += [f"note: {n}" for n in verdict.notes]
    lines += [f"FAIL: {f}" for f in verdict.failures]
    lines.append("PASS" if verdict.passed else "FAIL")
    return lines


def changelog_lines(log: ChangeLogFigures, start: float) -> list[str]:
    used = log.max_bytes / log.worst_window_bytes if log.worst_window_bytes else float("nan")
    return [
        f"change log (snapshot every {log.interval:g}s, window {log.window:g}s): largest "
        f"{log.max_bytes / KIB:.0f} KiB at {log.max_at - start:.0f}s, at most {log.max_files} files; "
        f"largest in the last third {log.last_third_max / KIB:.0f} KiB; {log.deleted} generations deleted",
        f"change log bound: {log.worst_window_bytes / KIB:.0f} KiB appended in the worst {log.window:g}s "
        f"window; largest seen is {used:.0%} of it",
        f"change rate: {log.calls} state-changing calls = {log.calls_per_second:.0f}/s, "
        f"{log.appended_bytes / KIB:.0f} KiB appended = {log.bytes_per_call:.0f} bytes/call; "
        f"{log.window:g}s x {log.calls_per_second:.0f}/s x {log.bytes_per_call:.0f} B = "
        f"{log.rate_bound / KIB:.0f} KiB",
    ]
