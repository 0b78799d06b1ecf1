"""kill -9 luigid in a loop while four real luigi worker processes run a 297-task DAG.

Every task must end up done, and no task may start while its output already exists. The
daemon comes back on the same state path and port each time, with periodic snapshots off
(every restart replays the change log from the start) and every second. What each restart
lost is printed (shown with -s or on failure) and written to
$LUIGID_FAULT_REPORT-<interval>.json when that is set; see docs/reliability.md.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.system.faults.fault_dag import N_TASKS
from tests.system.faults.kill_loop import KillLoop

WORKERS = 4
MIN_KILLS = 4


@pytest.mark.slow
@pytest.mark.timeout(420)
@pytest.mark.parametrize("snapshot_interval", [0.0, 1.0], ids=["no-snapshots", "snapshot-every-1s"])
def test_every_task_done_once_while_luigid_is_killed(tmp_path: Path, snapshot_interval: float) -> None:
    loop = KillLoop(tmp_path, WORKERS, snapshot_interval=snapshot_interval)
    outcome = loop.run(seconds=300, max_kills=40, gap=(1.5, 3.0))
    summary = outcome.summary()
    print(json.dumps(summary, indent=1))
    if os.environ.get("LUIGID_FAULT_REPORT"):
        with open(f"{os.environ['LUIGID_FAULT_REPORT']}-{snapshot_interval:g}.json", "w") as out:
            json.dump(summary, out, indent=1)
    context = f"{json.dumps(summary)}\n{loop.log_tail()}"

    assert len(outcome.kills) >= MIN_KILLS, context  # the faults really happened mid-run
    assert outcome.worker_exit_codes == [0] * WORKERS, context
    assert len(outcome.worker_reports) == WORKERS, context
    assert all(r["root_complete"] for r in outcome.worker_reports), context
    assert outcome.outputs == N_TASKS, context
    assert len(outcome.runs) == N_TASKS, context
    assert all(any(r["event"] == "finish" for r in outcome.runs[t]) for t in outcome.runs), context
    reruns = outcome.reruns_over_output()
    assert reruns == [], (
        f"{len(reruns)} of {N_TASKS} tasks started again although their output existed "
        f"({summary['runs']} runs in all), e.g. {reruns[:5]}; details in the printed summary"
    )
