"""The fleet benchmark's core against a real daemon: a few simulated workers for a few seconds.

Keeps bench/fleet.py from rotting: every kind of call a luigi worker makes is sent and answered,
chains are scheduled, handed out and reported DONE, and the figures the capacity rule reads are
filled in. It asserts behaviour only; the timings are the benchmark's business.
"""

from __future__ import annotations

import pytest

from bench.daemon import OURS_TEMPLATE
from bench.fleet import FleetOptions, run_fleet
from bench.fleet_client import KINDS


@pytest.mark.parametrize("name", ["ours", "fronts"])
def test_a_small_fleet_runs_against_our_daemon(name: str) -> None:
    options = FleetOptions(
        sizes=[6],
        daemons=[name],
        templates={name: OURS_TEMPLATE},
        background=140,
        procs=2,
        ramp=0.5,
        warmup=1.0,
        seconds=4.0,
        task_mean=0.2,
    )
    result = run_fleet(options)
    [r] = result["rounds"]
    report = repr(r)
    assert r["daemon"] == name and r["workers"] == 6, report
    # "fronts" is ours with two HTTP front processes, their CPU counted with the scheduler's
    assert r["fronts"] == (2 if name == "fronts" else 0), report
    if name == "fronts":
        assert r["scheduler_cpu_ms_per_call"] is not None, report
    assert r["background_tasks"] == 140 and r["background_errors"] == 0, report
    assert r["workers_started"] == 6, report
    assert r["failures"] == 0 and r["workers_timed_out"] == 0 and r["unknown_tasks"] == 0, report
    # every kind of call was made and answered inside the window (add_worker comes before it)
    assert all(r["calls"][k]["n"] > 0 for k in KINDS if k != "add_worker"), report
    assert r["tasks_done"] > 0 and r["chains_done"] > 0, report
    assert r["calls_in_window"] > 0 and r["daemon_cpu_ms_per_call"] is not None, report
    assert r["client_cores"] is not None and r["sigterm_exit_s"] is not None, report
    # with nothing failed, the verdict rests on the latency limits alone
    assert r["held"] == (max(r["calls"]["get_work"]["p99_ms"], r["calls"]["ping"]["p99_ms"]) <= 100)
    assert result["capacity"] == {name: 6 if r["held"] else 0}
