"""Why the 200-worker soak is slow: get_work's cost with many busy workers, ours vs luigi's.

    python bench/soak_getwork_probe.py

Every worker owns one 14-task pipeline (two of its tasks need a resource, as in the soak) and
is already running one task; each then asks for more work with that task in current_tasks.
In-process, no HTTP: it times the scheduler call alone.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.workload import add_task_pending, build, get_work_args, worker_info

CASES = [(20, True), (200, True), (200, False)]


def ms_per_get_work(scheduler: Any, n_workers: int, with_resources: bool) -> float:
    workload = build(14 * n_workers, n_workers, "probe")
    for task in workload.tasks:
        args = add_task_pending(task)
        if not with_resources:
            args["resources"] = {}
        scheduler.add_task(**args)
    running = {}
    for worker in workload.workers:
        scheduler.add_worker(worker, worker_info(worker, None))
        running[worker] = scheduler.get_work(**get_work_args(worker, []))["task_id"]
    start = time.perf_counter()
    for worker in workload.workers:
        scheduler.get_work(**get_work_args(worker, [running[worker]]))
    return (time.perf_counter() - start) / n_workers * 1000


def main() -> None:
    from luigi.scheduler import Scheduler as LuigiScheduler

    from luigid.scheduler import Scheduler

    for n_workers, with_resources in CASES:
        ours = ms_per_get_work(Scheduler(), n_workers, with_resources)
        theirs = ms_per_get_work(LuigiScheduler(), n_workers, with_resources)
        print(
            f"{n_workers:>4} busy workers, resources={with_resources!s:<5}: "
            f"ours {ours:7.2f} ms, luigi {theirs:7.2f} ms per get_work"
        )


if __name__ == "__main__":
    main()
