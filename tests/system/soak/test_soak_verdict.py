"""The soak's pass rule on made-up series: what counts as flat memory and as pruning seen."""

from __future__ import annotations

from collections.abc import Sequence

from bench.soak_load import LoadStats, StateSample
from bench.soak_verdict import MIB, judge, thirds

START, END = 1000.0, 1030.0


def series(values: Sequence[float]) -> list[tuple[float, int]]:
    step = (END - START) / len(values)
    return [(START + i * step, int(v * MIB)) for i, v in enumerate(values)]


def pruned_stats() -> LoadStats:
    stats = LoadStats(workers_started=500, tasks_scheduled=7000)
    stats.state = [StateSample(START + t, {"PENDING": 900, "DONE": 700}, 80) for t in range(0, 30, 3)]
    return stats


def test_thirds_takes_medians_of_the_middle_and_last_thirds_ignoring_warm_up() -> None:
    got = thirds(series([10] * 10 + [40, 41, 42, 43, 100] + [40] * 5 + [44] * 10), START, END)
    assert got is not None
    assert got.middle == 40 * MIB  # the one 100 MiB spike does not move the median
    assert got.last == 44 * MIB


def test_steady_memory_after_warm_up_passes() -> None:
    rss = series([30 + i for i in range(10)] + [44, 45, 44, 44.5, 44] * 4)
    verdict = judge(pruned_stats(), rss, START, END, 0.05, 5, daemon_alive=True)
    assert verdict.passed, verdict.failures


def test_memory_growing_into_the_last_third_fails() -> None:
    rss = series([30 + i for i in range(30)])  # a steady leak: +1 MiB a second
    verdict = judge(pruned_stats(), rss, START, END, 0.05, 5, daemon_alive=True)
    assert not verdict.passed
    assert any("RSS grew" in f for f in verdict.failures)


def test_any_failed_call_fails_the_run() -> None:
    stats = pruned_stats()
    stats.failed("get_work", "get_work: HTTP 500")
    verdict = judge(stats, series([40] * 30), START, END, 0.05, 5, daemon_alive=True)
    assert not verdict.passed
    assert any("1 failed calls" in f for f in verdict.failures)


def test_state_that_holds_every_worker_ever_seen_means_no_pruning() -> None:
    stats = pruned_stats()
    stats.state[-1] = StateSample(END, {"PENDING": 7000}, 500)
    verdict = judge(stats, series([40] * 30), START, END, 0.05, 5, daemon_alive=True)
    assert not verdict.passed
    assert sum("pruning not seen" in f for f in verdict.failures) == 2


def test_a_dead_daemon_fails_the_run() -> None:
    verdict = judge(pruned_stats(), series([40] * 30), START, END, 0.05, 5, daemon_alive=False)
    assert not verdict.passed
