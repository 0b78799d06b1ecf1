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
import os
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from bench.wire import RpcClient
from tests.system.faults.kill_loop import HERE, KillLoop
from tests.system.faults.wave_worker import WAVE_LEAVES

WAVES = 6
WORKERS_PER_WAVE = 2


def listing(port: int) -> dict[str, str]:
    client = RpcClient(port, timeout=30)
    try:
        tasks = client.call("task_list", {"status": "", "upstream_status": "", "search": ""})
    finally:
        client.close()
    return {task_id: task["status"] for task_id, task in tasks.items()}


def start_wave(loop: KillLoop, wave: int, deadline: float) -> list[subprocess.Popen[bytes]]:
    env = dict(os.environ, LUIGI_CONFIG_PATH=str(loop.workdir / "worker.cfg"))
    env["LUIGID_FAULT_DIR"] = str(loop.workdir)
    procs = []
    for n in range(WORKERS_PER_WAVE):
        with open(loop.workdir / f"wave-{wave}-{n}.log", "wb") as log:
            procs.append(
                subprocess.Popen(
                    [sys.executable, str(HERE / "wave_worker.py"), str(deadline), str(wave)],
                    cwd=loop.workdir,
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
    return procs


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
            before = listing(loop.daemon.port)
            loop.daemon.kill()  # SIGKILL: nothing saved but what the change log holds
            loop.daemon.start()
            loop.daemon.wait_ready(60)
            after = listing(loop.daemon.port)
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
    reports = [json.loads(p.read_text()) for p in sorted((tmp_path / "workers").glob("*.json"))]
    runs = {
        p.name: [json.loads(line) for line in p.read_text().splitlines()]
        for p in (tmp_path / "runs").iterdir()
    }
    reruns = sorted(t for t, events in runs.items() if any(e.get("output_existed") for e in events))
    context = json.dumps({"lost": lost, "reports": reports, "reruns": reruns[:5]})[:4000] + loop.log_tail()

    assert lost == [], context
    assert [p.returncode for p in procs] == [0] * (WAVES * WORKERS_PER_WAVE), context
    assert len(reports) == WAVES * WORKERS_PER_WAVE and all(r["root_complete"] for r in reports), context
    assert len(runs) == WAVES * (WAVE_LEAVES + 1), context
    assert reruns == [], context
