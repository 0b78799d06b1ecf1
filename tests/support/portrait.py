"""A scheduler's whole saved state as comparable plain data: what a state file must keep."""

from __future__ import annotations

from typing import Any

from luigid.core.model import Task
from luigid.scheduler import Scheduler


def known_task(scheduler: Scheduler, task_id: str) -> Task:
    """The task the scheduler holds under ``task_id`` (failing if it holds none)."""
    task = scheduler.state.get_task(task_id)
    assert task is not None, f"no task {task_id}"
    return task


def portrait(scheduler: Scheduler) -> dict[str, Any]:
    """Every saved field of every task and worker, and the batchers."""
    tasks, workers, batchers = scheduler.state.snapshot()
    return {
        "tasks": {
            task_id: {
                name: plain(getattr(task, name), name)
                for name in Task.FIELDS
                if name not in ("scheduler_message_responses", *Task.DERIVED)
            }
            for task_id, task in tasks.items()
        },
        "workers": {
            worker_id: {
                "info": plain(worker.info),
                "reference": worker.reference,
                "last_active": worker.last_active,
                "last_get_work": worker.last_get_work,
                "started": worker.started,
                "disabled": worker.disabled,
                "rpc_messages": worker.rpc_messages,
                "tasks": sorted(t.id for t in worker.tasks),
            }
            for worker_id, worker in workers.items()
        },
        "batchers": batchers,
    }


def plain(value: Any, name: str = "") -> Any:
    """Sets sorted, the runners' ordered set and failure deques as lists, NaN as a string
    (it is not equal to itself), through dicts and lists."""
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=repr)
    if name == "workers":
        return list(value)  # the ordered set of runners
    if name == "deps":
        return sorted(value)  # a set to luigi, a tuple in luigid
    if hasattr(value, "popleft") or name == "failures":  # a deque, or () before any failure
        return list(value)
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, float) and value != value:
        return "nan"
    return value
