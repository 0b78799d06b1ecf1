"""The soak's pass rule on made-up series: what counts as flat memory, as pruning seen and as a
bounded change log."""

from __future__ import annotations

from collections.abc import Sequence

from bench.soak_changelog import (
    STATE_CHANGING,
    ChangeLogSample,
    appended,
    changelog_figures,
    state_changing_calls,
    worst_window,
)
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


def changelog_run(delete: bool, interval: float = 3.0, rate: int = 10_000) -> list[ChangeLogSample]:
    """Samples every 0.5 s of a log appended at ``rate`` bytes/s, rotated every ``interval``;
    with ``delete``, the snapshot taken at a rotation deletes the generation before it 1 s later."""
    samples = []
    for i in range(int((END - START) / 0.5) + 1):
        t = i * 0.5
        sizes = {}
        for gen in range(int(t // interval) + 1):
            begun, ended = gen * interval, min(t, (gen + 1) * interval)
            if delete and t >= (gen + 1) * interval + 1:  # the snapshot covering it is on disk
                continue
            sizes[gen] = int((ended - begun) * rate)
        samples.append(ChangeLogSample(START + t, sizes))
    return samples


def judged(samples: list[ChangeLogSample]) -> list[str]:
    log = changelog_figures(samples, 3.0, 3.0, calls=30_000, start=START, end=END)
    return judge(pruned_stats(), series([40] * 30), START, END, 0.05, 5, True, log).failures


def test_a_change_log_truncated_by_snapshots_passes() -> None:
    samples = changelog_run(delete=True)
    assert max(s.total for s in samples) <= (3.0 + 1) * 10_000  # a sawtooth: interval + 1 s at most
    assert judged(samples) == []


def test_a_change_log_that_grows_with_run_time_fails() -> None:
    failures = judged(changelog_run(delete=False))
    assert any("not being deleted" in f for f in failures)
    assert any("shrank too rarely: 0 generations deleted" in f for f in failures)


def test_no_change_log_at_all_fails() -> None:
    samples = [ChangeLogSample(START + t, {}) for t in range(30)]
    assert judged(samples) == ["no change-log file was seen next to the daemon's state file"]


def test_worst_window_counts_bytes_between_samples_at_least_the_window_apart() -> None:
    cumulative = [(0.0, 0), (1.0, 100), (2.0, 150), (3.0, 450), (4.0, 500)]
    assert worst_window(cumulative, 2.0) == 350  # from t=1 to t=3
    assert appended([ChangeLogSample(0, {1: 5}), ChangeLogSample(1, {2: 7})]) == [(0, 5), (1, 12)]


def test_state_changing_calls_count_every_variant_of_a_mutating_method() -> None:
    stats = LoadStats()
    for label in ("add_task", "add_task(DONE)", "get_work", "ping", "task_list", "worker_list"):
        stats.ok(label, 0.01)
    assert state_changing_calls(stats) == 4


def test_the_soaks_state_changing_calls_are_the_daemons_mutating_ones() -> None:
    import luigid.scheduler  # noqa: F401  (registers the RPC methods)
    from luigid.core.rpc import RPC_METHODS

    soak_calls = STATE_CHANGING | {"task_list", "worker_list", "resource_list"}
    assert {name for name in soak_calls if RPC_METHODS[name].mutating} == STATE_CHANGING
