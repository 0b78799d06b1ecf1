"""kill -9 luigid again and again while real luigi workers keep ADDING tasks, not only
finishing them: before each kill a new wave of tasks is scheduled by two competing worker
processes (tests/system/faults/wave_worker.py).

Snapshots are rare here (every 30 s), so nearly every restart rebuilds its state from the
change log. Nothing a daemon answered before a kill may be missing after the restart: every
task task_list showed is still known, and none that was DONE is anything else. Every wave ends
complete, and no task starts while its output already exists.
"""

from __future__ import annotations

import json
import random
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.system.faults.kill_loop import KillLoop, Outcome, task_statuses
from tests.system.faults.wave_worker import WAVE_LEAVES

WAVES = 6
WORKERS_PER_WAVE = 2


def start_wave(loop: KillLoop, wave: int, deadline: float) -> list[subprocess.Popen[bytes]]:
    return loop.start_workers(
        WORKERS_PER_WAVE, str(deadline), str(wave), script="wave_worker.py", log_prefix=f"wave-{wave}"
    )


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_tasks_added_between_kills_survive_them(tmp_path: Path) -> None:
    loop = KillLoop(tmp_path, 0, snapshot_interval=30.0)
    deadline = time.time() + 180
    lost: list[dict[str, Any]] = []
    procs: list[subprocess.Popen[bytes]] = []
    loop.daemon.start()
    loop.daemon.wait_ready(60)
    try:
        for wave in range(WAVES):
            procs += start_wave(loop, wave, deadline)
            time.sleep(random.uniform(1.5, 3.0))
            before = task_statuses(loop.daemon.port)
            loop.daemon.kill()  # SIGKILL: nothing saved but what the change log holds
            loop.daemon.start()
            loop.daemon.wait_ready(60)
            after = task_statuses(loop.daemon.port)
            missing = sorted(t for t in before if t not in after)
            undone = sorted(t for t, s in before.items() if s == "DONE" and after.get(t) != "DONE")
            if missing or undone:
                lost.append(
                    {"wave": wave, "known": len(before), "missing": missing[:5], "undone": undone[:5]}
                )
        for proc in procs:
            proc.wait(max(1.0, deadline - time.time()))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        loop.daemon.terminate(30)
    outcome = Outcome()
    loop.read_records(outcome)
    reports, runs = outcome.worker_reports, outcome.runs
    reruns = outcome.reruns_over_output()
    context = json.dumps({"lost": lost, "reports": reports, "reruns": reruns[:5]})[:4000] + loop.log_tail()

    assert lost == [], context
    assert [p.returncode for p in procs] == [0] * (WAVES * WORKERS_PER_WAVE), context
    assert len(reports) == WAVES * WORKERS_PER_WAVE and all(r["root_complete"] for r in reports), context
    assert len(runs) == WAVES * (WAVE_LEAVES + 1), context
    assert reruns == [], context
