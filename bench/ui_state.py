"""The state bench/ui_scale.py starts each daemon from, written by a scheduler's own ``dump``.

It is bench/workload.py's graph (14-task pipelines from 8 workers, the add_task payloads a
luigi worker sends), plus what a UI has to show at scale: failed extract tasks (so that
whole pipelines are upstream failed), a few disabled ones (upstream disabled), and one
5,000-task DAG to draw (``GRAPH_ROOT`` -> 50 -> 4,949 tasks, each of the last needed by
two of the 50). Building it in the scheduler's process and saving it takes a minute at 1M
tasks, where sending every add_task over HTTP (bench/preload.py) takes about seven.

This module is imported inside luigi's virtualenv too: standard library and bench.workload only.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench.workload import Workload

REPO = Path(__file__).resolve().parent.parent
GRAPH_ROOT = "UiGraphTop_0"
GRAPH_LAYER1 = 50
GRAPH_LAYER2 = 4949
GRAPH_NODES = 1 + GRAPH_LAYER1 + GRAPH_LAYER2
#: one pipeline in FAILED_EVERY has an extract task failed, one in DISABLED_EVERY disabled
FAILED_EVERY = 100
DISABLED_EVERY = 1000

BUILD = """
import sys
sys.path.insert(0, {repo!r})
from bench.workload import add_task_pending, build
from bench.ui_state import extra_tasks
from {module} import Scheduler
sched = Scheduler(state_path={path!r}, record_task_history=False)
workload = build({tasks}, {workers}, "ui")
for task in workload.tasks:
    sched.add_task(**add_task_pending(task))
added = len(workload.tasks)
for call in extra_tasks(workload):
    sched.add_task(**call)
    added += 1
sched.dump()
print(added)
"""


def extra_tasks(workload: Workload) -> Iterator[dict[str, Any]]:
    """add_task calls after the pipelines: failures, disables, and the 5,000-task DAG."""
    owner = workload.workers[0]
    extracts = [t for t in workload.tasks if t.family == "ExtractShard" and t.params["shard"] == "0"]
    for n, task in enumerate(extracts):
        if n % DISABLED_EVERY == 1:
            yield {"worker": task.owner, "task_id": task.task_id, "status": "DISABLED", "family": task.family}
        elif n % FAILED_EVERY == 0:
            yield {"worker": task.owner, "task_id": task.task_id, "status": "FAILED", "family": task.family}
    needs: list[list[str]] = [[] for _ in range(GRAPH_LAYER1)]
    for n in range(GRAPH_LAYER2):
        task_id = f"UiGraphLeaf_{n}"
        yield {"worker": owner, "task_id": task_id, "family": "UiGraphLeaf", "params": {"n": str(n)}}
        needs[n % GRAPH_LAYER1].append(task_id)
        needs[(n + 1) % GRAPH_LAYER1].append(task_id)
    for n in range(GRAPH_LAYER1):
        yield {
            "worker": owner,
            "task_id": f"UiGraphMid_{n}",
            "family": "UiGraphMid",
            "params": {"n": str(n)},
            "deps": needs[n],
        }
    yield {
        "worker": owner,
        "task_id": GRAPH_ROOT,
        "family": "UiGraphTop",
        "params": {},
        "deps": [f"UiGraphMid_{n}" for n in range(GRAPH_LAYER1)],
    }


def build_state(
    python: Path | str, module: str, path: Path, tasks: int, env: dict[str, str], workers: int = 8
) -> int:
    """Have ``module``'s Scheduler (``luigi.scheduler`` or ``luigid.scheduler``), run by
    ``python``, add the graph (its pipelines dealt to ``workers`` workers) and dump it to
    ``path``; the number of add_task calls."""
    code = BUILD.format(repo=str(REPO), module=module, path=str(path), tasks=tasks, workers=workers)
    done = subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=True, env=env)
    return int(done.stdout.strip().splitlines()[-1])
