"""The benchmark's task graph and the exact RPC payloads a luigi 3.8.1 worker would send for it.

The graph is a set of identical 14-task DAG pipelines (fan-out extract/transform, merges, then a
linear tail), with per-pipeline priorities and a resource on two of the fourteen tasks. Payloads
carry every argument luigi's RemoteScheduler puts on the wire: its RPC stubs send each keyword
with its default filled in, so add_task always carries all twenty fields.
"""

from __future__ import annotations

import datetime
import hashlib
from dataclasses import dataclass, field
from typing import Any

PIPELINE_SIZE = 14
MODULE = "bench_pipelines"
RETRY_POLICY = {"retry_count": None, "disable_hard_timeout": None, "disable_window": None}
# Resources without a [resources] capacity count as 1 unit on both daemons, so amounts stay at 1.
RESOURCES_BY_FAMILY = {"Aggregate": {"warehouse": 1}, "Publish": {"publish_api": 1}}


@dataclass(frozen=True)
class BenchTask:
    task_id: str
    family: str
    params: dict[str, str]
    deps: tuple[str, ...]
    priority: int
    owner: str  # id of the worker that schedules (and alone may run) it


@dataclass
class Workload:
    """Tasks in the order a worker adds them (each pipeline root first, then breadth-first)."""

    tasks: list[BenchTask] = field(default_factory=list)
    workers: list[str] = field(default_factory=list)
    roots: list[str] = field(default_factory=list)

    def by_owner(self, worker: str) -> list[BenchTask]:
        return [t for t in self.tasks if t.owner == worker]


def worker_id(tag: str, index: int) -> str:
    """A worker id in the shape luigi's workers generate (``Worker(salt=..., workers=1, ...)``)."""
    return f"Worker(salt={index:09d}, workers=1, host=bench-{tag}, username=bench, pid={10000 + index})"


def worker_info(worker: str, first_task: str | None) -> list[list[Any]]:
    index = int(worker.split("salt=")[1].split(",")[0])
    host = worker.split("host=")[1].split(",")[0]
    return [
        ["salt", f"{index:09d}"],
        ["workers", 1],
        ["host", host],
        ["username", "bench"],
        ["pid", 10000 + index],
        ["first_task", first_task],
    ]


def _task_id(family: str, params: dict[str, str]) -> str:
    digest = hashlib.md5(repr(sorted(params.items())).encode(), usedforsecurity=False).hexdigest()[:10]
    return f"{family}_{'_'.join(params.values())}_{digest}"


def _pipeline(index: int, owner: str) -> list[BenchTask]:
    date = (datetime.date(2024, 1, 1) + datetime.timedelta(days=index % 365)).isoformat()
    name = f"p{index:06d}"
    priority = (index % 5) * 10
    made: dict[str, BenchTask] = {}

    def add(key: str, family: str, deps: list[str], shard: str = "all", bump: int = 0) -> None:
        params = {"date": date, "pipeline": name, "shard": shard}
        made[key] = BenchTask(
            _task_id(family, params),
            family,
            params,
            tuple(made[d].task_id for d in deps),
            priority + bump,
            owner,
        )

    for s in range(4):
        add(f"E{s}", "ExtractShard", [], shard=str(s))
    for s in range(4):
        add(f"T{s}", "TransformShard", [f"E{s}"], shard=str(s))
    add("M0", "MergeShards", ["T0", "T1"], shard="0-1")
    add("M1", "MergeShards", ["T2", "T3"], shard="2-3")
    add("A", "Aggregate", ["M0", "M1"])
    add("V", "Validate", ["A"])
    add("P", "Publish", ["V"])
    add("R", "Report", ["P"], bump=5)
    # A worker walks from the root it was given down through requires(), breadth first.
    order = ["R", "P", "V", "A", "M0", "M1", "T0", "T1", "T2", "T3", "E0", "E1", "E2", "E3"]
    assert len(order) == PIPELINE_SIZE
    return [made[k] for k in order]


def pipeline(index: int, owner: str) -> list[BenchTask]:
    """One 14-task pipeline (root first) with ids unique to ``index``; the soak makes fresh ones."""
    return _pipeline(index, owner)


def build(n_tasks: int, n_workers: int, tag: str) -> Workload:
    """About n_tasks tasks (rounded down to whole pipelines), pipelines dealt round-robin to workers."""
    workload = Workload(workers=[worker_id(tag, i) for i in range(n_workers)])
    n_pipelines = max(1, n_tasks // PIPELINE_SIZE)
    for p in range(n_pipelines):
        tasks = _pipeline(p, workload.workers[p % n_workers])
        workload.roots.append(tasks[0].task_id)
        workload.tasks.extend(tasks)
    return workload


def add_task_pending(task: BenchTask) -> dict[str, Any]:
    """What Worker._add sends when it finds an incomplete task with its dependencies."""
    return {
        "task_id": task.task_id,
        "status": "PENDING",
        "runnable": True,
        "deps": list(task.deps),
        "new_deps": None,
        "expl": None,
        "resources": RESOURCES_BY_FAMILY.get(task.family, {}),
        "priority": task.priority,
        "family": task.family,
        "module": MODULE,
        "params": task.params,
        "param_visibilities": {name: 0 for name in task.params},
        "accepts_messages": False,
        "assistant": False,
        "tracking_url": None,
        "worker": task.owner,
        "batchable": False,
        "batch_id": None,
        "retry_policy_dict": RETRY_POLICY,
        "owners": [],
    }


def add_task_done(worker: str, task_id: str, family: str, params: dict[str, str]) -> dict[str, Any]:
    """What Worker._handle_next_task sends when a task's run() finished successfully."""
    return {
        "task_id": task_id,
        "status": "DONE",
        "runnable": None,
        "deps": None,
        "new_deps": [],
        "expl": "null",  # json.dumps(task.on_success()), None by default
        "resources": RESOURCES_BY_FAMILY.get(family, {}),
        "priority": 0,
        "family": family,
        "module": MODULE,
        "params": params,
        "param_visibilities": {name: 0 for name in params},
        "accepts_messages": False,
        "assistant": False,
        "tracking_url": None,
        "worker": worker,
        "batchable": None,
        "batch_id": None,
        "retry_policy_dict": RETRY_POLICY,
        "owners": [],
    }


def get_work_args(worker: str, current_tasks: list[str]) -> dict[str, Any]:
    return {
        "host": worker.split("host=")[1].split(",")[0],
        "assistant": False,
        "current_tasks": current_tasks,
        "worker": worker,
    }
