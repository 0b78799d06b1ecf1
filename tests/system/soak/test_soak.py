"""The short soak that CI runs: the script's core against a real daemon for about 30 s.

Fewer workers than the full run (bench/soak.py --workers 200 --seconds 300) and shorter delays,
so that within 30 s workers come and go many times over and the daemon prunes them and their
tasks; the pass rule is the script's own (no failed call, flat RSS, pruning seen, and a change
log that snapshots every 3 s keep bounded: about ten snapshots truncate it within the run).
"""

from __future__ import annotations

from bench.soak import SoakOptions, run_soak

CI_OPTIONS = SoakOptions(
    workers=60,
    seconds=30,
    task_seconds=0.2,
    worker_disconnect_delay=2,
    remove_delay=2,
    retry_delay=2,
    ramp_seconds=1,
    viewer_interval=1,
    snapshot_interval=3,
)


def test_short_soak_passes() -> None:
    assert CI_OPTIONS.settle_seconds() < CI_OPTIONS.seconds / 3  # thirds compare settled states
    result = run_soak(CI_OPTIONS)
    report = "\n".join(result.lines)
    assert result.verdict.passed, report
    # the run really had workers and tasks coming and going, and reached every kind of call
    assert result.stats.workers_started > 2 * CI_OPTIONS.workers, report
    assert result.stats.workers_crashed > 0, report
    assert result.stats.tasks_done > 0 and result.stats.tasks_failed > 0, report
    assert {"add_task", "add_task(DONE)", "add_worker", "get_work", "ping", "task_list"} <= {
        f.label for f in result.figures
    }, report
    # the change log was really written and truncated, many times over
    assert len(result.changelog) > 0 and any(s.total for s in result.changelog), report
