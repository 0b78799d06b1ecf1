"""Rebuilding every index from loaded task records, in bulk.

It runs once per start on every task, so it works in bulk rather than through the
per-task writes of ``luigid.core.state``: the ready lists are sorted once at the end
instead of taking each task in turn (see docs/performance.md, "Loading").
"""

from __future__ import annotations

from collections.abc import Iterator

from luigid.core.indexes import Indexes, add_dependent, add_to_sets, rank_key
from luigid.core.interning import SharedValues
from luigid.core.model import DONE, FAILED, PENDING, Task, Worker
from luigid.core.timers import PruneQueue, unstaked


def rebuild(
    tasks: dict[str, Task],
    workers: dict[str, Worker],
    by_status: dict[str, dict[str, Task]],
    seq: Iterator[int],
    indexes: Indexes,
    queue: PruneQueue,
    shared: SharedValues,
) -> None:
    """Fill the (empty) status index, indexes and prune queue from the records; the
    workers' task sets are made again from the tasks' runners. Stakeholders, runners and
    deps become the immutable values live tasks hold, whatever a file stored."""
    rdeps, stakes, unmarked = indexes.rdeps, indexes.stakes, queue.unmarked
    for worker in workers.values():
        worker.tasks = set()
    # tasks that carry their status order (a luigid snapshot's) keep it, and enter the status
    # index in that order, as they did live; others are numbered in the order given
    kept = bool(tasks) and all(task.seq > 0 for task in tasks.values())
    for task in sorted(tasks.values(), key=_by_seq) if kept else tasks.values():
        task_id = task.id
        if not kept:
            task.seq = next(seq)
        task.ready_key = None
        by_status[task.status][task_id] = task
        share(task, shared)
        for dep in task.deps:
            add_dependent(rdeps, dep, task_id)
        add_to_sets(stakes, task.stakeholders, task_id)
        for worker_id in task.workers:
            runner = workers.get(worker_id)
            if runner is not None:
                runner.tasks.add(task)
        if unstaked(task):
            unmarked.add(task_id)
        if task.remove is not None or task.retry is not None or task.scheduler_disable_time is not None:
            queue.schedule(task)
    done = by_status[DONE]
    ready: list[Task] = []
    ready_of: dict[str, list[Task]] = {}
    for task in tasks.values():
        deps = task.deps
        # a dep is unmet unless it is a known DONE task
        task.unmet = sum(dep not in done for dep in deps) if deps else 0
        status = task.status
        if status in (PENDING, FAILED):
            indexes.account(task, +1)
            if status == PENDING and task.unmet == 0:
                task.ready_key = rank_key(task)
                ready.append(task)
                for worker_id in task.workers:
                    ready_of.setdefault(worker_id, []).append(task)
    indexes.rebuild(ready, ready_of)


def share(task: Task, shared: SharedValues) -> None:
    """A loaded task's id collections as live tasks hold them (``Task.__init__``)."""
    task.stakeholders = shared.ids(frozenset(task.stakeholders))
    task.workers = shared.get(tuple(task.workers))
    if type(task.deps) is not tuple:
        task.deps = tuple(task.deps)


def _by_seq(task: Task) -> int:
    return task.seq
