"""Unchanged luigi workers behind HAProxy (health-checking /leader) while the leader is
killed twice: the run succeeds and every task's run() executes exactly once."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.ha.dag import N_TASKS
from tests.ha.haproxy import HAProxy
from tests.ha.support import Cluster
from tests.support.daemon import tail
from tests.support.luigi_cfg import riding_through_restarts, write_cfg
from tests.support.wait import wait_for

HERE = Path(__file__).resolve().parent
WORKERS = 4
KILLS = 2


def runs(workdir: Path) -> dict[str, int]:
    return {path.name: len(path.read_text().splitlines()) for path in (workdir / "runs").iterdir()}


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_real_workers_behind_haproxy_across_two_leader_kills(
    tmp_path: Path, cluster: Callable[..., Cluster]
) -> None:
    nodes = cluster(lease=3.0).start()
    nodes.wait_leader()
    proxy = HAProxy(tmp_path / "haproxy", nodes.nodes).start()
    work = tmp_path / "work"
    for sub in ("runs", "out"):
        (work / sub).mkdir(parents=True)
    write_cfg(work / "worker.cfg", riding_through_restarts(proxy.port, wait_interval=0.5, wait_jitter=0.2))
    env = dict(os.environ, LUIGI_CONFIG_PATH=str(work / "worker.cfg"), LUIGID_HA_DIR=str(work))
    deadline = time.time() + 300
    procs = []
    try:
        for n in range(WORKERS):
            with open(work / f"worker-{n}.log", "wb") as log:
                procs.append(
                    subprocess.Popen(
                        [sys.executable, str(HERE / "dag_worker.py"), str(deadline)],
                        cwd=work,
                        env=env,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                    )
                )
        for kill in range(KILLS):
            wanted = 12 * (kill + 1)
            wait_for(lambda: len(runs(work)) >= wanted, 120, f"{wanted} tasks to run")  # noqa: B023
            leader = nodes.wait_leader()
            leader.kill()
            nodes.wait_leader(timeout=15, other_than=leader)
            leader.start()  # back as a standby
        codes = [proc.wait(timeout=max(1.0, deadline - time.time())) for proc in procs]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        proxy.stop()
    logs = "\n".join(
        tail((work / f"worker-{n}.log").read_text(errors="replace"), 2000) for n in range(WORKERS)
    )
    assert codes == [0] * WORKERS, logs
    counted = runs(work)
    assert len(counted) == N_TASKS, logs
    assert {task: n for task, n in counted.items() if n != 1} == {}, logs
    assert len(list((work / "out").iterdir())) == N_TASKS
    assert sum(node.starts for node in nodes.nodes) == 2 + KILLS
