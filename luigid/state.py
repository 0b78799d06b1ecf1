"""The scheduler's in-memory state: tasks, workers and the indexes kept over them.

Every mutation that an index depends on goes through a method here, so the indexes can
never drift from the tasks:

* ``_by_status``: status -> {task id: Task}, so "all PENDING tasks" costs what it returns;
* ``_rdeps``: dependency id -> ids of the tasks that depend on it (inverse graphs, readiness);
* ``_stakes``: worker id -> ids of the tasks it is a stakeholder of (pruning a worker);
* ``Worker.tasks``: the tasks a worker may run (luigi keeps this one too).

The status-transition rules (failure counting, disabling, batch propagation) live here as
well because they are what moves tasks between the status indexes.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Protocol

from luigid.config import SchedulerConfig
from luigid.model import (
    BATCH_RUNNING,
    DISABLED,
    DONE,
    FAILED,
    PENDING,
    RUNNING,
    STATUSES,
    Task,
    Worker,
)

logger = logging.getLogger("luigi.server")

Batcher = tuple[Any, float]


class StateEvents(Protocol):
    """Side effects of status changes, provided by the scheduler (metrics, e-mail)."""

    def status_changed(self, task: Task) -> None: ...

    def disabled_for_failures(self, task: Task) -> None: ...


class _NoEvents:
    def status_changed(self, task: Task) -> None:
        pass

    def disabled_for_failures(self, task: Task) -> None:
        pass


class State:
    def __init__(self, config: SchedulerConfig, events: StateEvents | None = None) -> None:
        self.config = config
        self.events: StateEvents = events or _NoEvents()
        self._tasks: dict[str, Task] = {}
        self._by_status: dict[str, dict[str, Task]] = {s: {} for s in STATUSES}
        self._rdeps: dict[str, set[str]] = {}
        self._stakes: dict[str, set[str]] = {}
        self._workers: dict[str, Worker] = {}
        self._batchers: dict[str, dict[str, Batcher]] = {}

    # ------------------------------------------------------------------ tasks

    def get_task(self, task_id: str) -> Task | None:
        return self._tasks.get(task_id)

    def has_task(self, task_id: str) -> bool:
        return task_id in self._tasks

    def get_or_add_task(self, task_id: str, make: Callable[[], Task]) -> Task:
        task = self._tasks.get(task_id)
        if task is None:
            task = make()
            self._tasks[task_id] = task
            self._index_status(task)
            self._index_deps(task, (), task.deps)
        return task

    def tasks(self) -> Iterable[Task]:
        return self._tasks.values()

    def tasks_by_status(self, *statuses: str) -> Iterator[Task]:
        for status in statuses:
            # statuses come from requests too (task_list?status=...): unknown ones hold nothing
            yield from self._by_status.get(status, {}).values()

    def count(self, status: str = "") -> int:
        return len(self._by_status.get(status, {})) if status else len(self._tasks)

    def counts_by_status(self) -> dict[str, int]:
        return {status: len(tasks) for status, tasks in self._by_status.items()}

    def batch_running_tasks(self, batch_id: str) -> list[Task]:
        return [t for t in self._by_status[BATCH_RUNNING].values() if t.batch_id == batch_id]

    def dependents(self, task_id: str) -> set[str]:
        """Ids of the tasks that list ``task_id`` among their deps."""
        return self._rdeps.get(task_id, set())

    def set_deps(self, task: Task, deps: Iterable[str]) -> None:
        old = task.deps
        task.deps = set(deps)
        self._index_deps(task, old - task.deps, task.deps - old)

    def add_deps(self, task: Task, deps: Iterable[str]) -> None:
        added = set(deps) - task.deps
        task.deps |= added
        self._index_deps(task, (), added)

    def add_stakeholder(self, task: Task, worker_id: str) -> None:
        task.stakeholders.add(worker_id)
        self._stakes.setdefault(worker_id, set()).add(task.id)

    def add_runner(self, task: Task, worker: Worker) -> None:
        task.workers[worker.id] = None
        worker.tasks.add(task)

    def remove_tasks(self, task_ids: Iterable[str]) -> None:
        for task_id in task_ids:
            task = self._tasks.pop(task_id)
            del self._by_status[task.status][task_id]
            self._index_deps(task, task.deps, ())
            for worker_id in task.stakeholders:
                stakes = self._stakes.get(worker_id)
                if stakes is not None:
                    stakes.discard(task_id)
            for worker_id in task.workers:
                worker = self._workers.get(worker_id)
                if worker is not None:
                    worker.tasks.discard(task)

    def _index_status(self, task: Task) -> None:
        self._by_status[task.status][task.id] = task

    def _index_deps(self, task: Task, removed: Iterable[str], added: Iterable[str]) -> None:
        for dep in removed:
            users = self._rdeps.get(dep)
            if users is not None:
                users.discard(task.id)
                if not users:
                    del self._rdeps[dep]
        for dep in added:
            self._rdeps.setdefault(dep, set()).add(task.id)

    # ---------------------------------------------------------------- workers

    def get_worker(self, worker_id: str) -> Worker:
        """The worker with this id, created on first sight (as luigi does)."""
        worker = self._workers.get(worker_id)
        if worker is None:
            worker = self._workers[worker_id] = Worker(worker_id)
        return worker

    def find_worker(self, worker_id: str) -> Worker | None:
        return self._workers.get(worker_id)

    def workers(self) -> Iterable[Worker]:
        return self._workers.values()

    def active_workers(self, last_get_work_gt: float | None = None) -> Iterator[Worker]:
        for worker in self._workers.values():
            if last_get_work_gt is not None and (
                worker.last_get_work is None or worker.last_get_work <= last_get_work_gt
            ):
                continue
            yield worker

    def assistant_ids(self) -> set[str]:
        return {w.id for w in self._workers.values() if w.assistant}

    def remove_workers(self, worker_ids: Iterable[str]) -> None:
        """Forget workers that stopped talking: they stop being stakeholders and runners."""
        for worker_id in worker_ids:
            worker = self._workers.pop(worker_id)
            for task in worker.tasks:
                task.workers.pop(worker_id, None)
            for task_id in self._stakes.pop(worker_id, ()):
                staked = self._tasks.get(task_id)
                if staked is not None:
                    staked.stakeholders.discard(worker_id)

    def disable_workers(self, worker_ids: Iterable[str]) -> None:
        """Disabled workers stay known (and stakeholders) but may run nothing."""
        for worker_id in worker_ids:
            worker = self.get_worker(worker_id)
            worker.disabled = True
            for task in worker.tasks:
                task.workers.pop(worker_id, None)
            worker.tasks.clear()

    # --------------------------------------------------------------- batchers

    def set_batcher(self, worker_id: str, family: str, batched_args: Any, max_batch_size: float) -> None:
        self._batchers.setdefault(worker_id, {})[family] = (batched_args, max_batch_size)

    def get_batcher(self, worker_id: str, family: str) -> Batcher:
        return self._batchers.get(worker_id, {}).get(family, (None, 1))

    # -------------------------------------------------------- status changes

    def set_status(self, task: Task, new_status: str) -> None:
        """Move a task to ``new_status`` under luigi's rules."""
        config = self.config
        if new_status == DISABLED and task.status in (RUNNING, BATCH_RUNNING):
            return

        remove_on_failure = task.batch_id is not None and not task.batchable

        if task.status == DISABLED:
            if new_status == DONE:
                self.re_enable(task)
            elif task.scheduler_disable_time is not None and new_status != DISABLED:
                # a worker may not lift a disable the scheduler imposed
                return

        if task.status == RUNNING and task.batch_id is not None and new_status != RUNNING:
            for member in self.batch_running_tasks(task.batch_id):
                self.set_status(member, new_status)
                member.batch_id = None
            task.batch_id = None

        if new_status == FAILED and task.status != DISABLED:
            task.add_failure()
            if task.has_excessive_failures():
                task.scheduler_disable_time = time.time()
                new_status = DISABLED
                self.events.disabled_for_failures(task)
        elif new_status == DISABLED:
            task.scheduler_disable_time = None

        if new_status != task.status:
            del self._by_status[task.status][task.id]
            task.status = new_status
            self._index_status(task)
            task.updated = time.time()
            self.events.status_changed(task)

        if new_status == FAILED:
            task.retry = time.time() + config.retry_delay
            if remove_on_failure:
                task.remove = time.time()

    def re_enable(self, task: Task, to_failed: bool = False) -> None:
        task.scheduler_disable_time = None
        task.clear_failures()
        if to_failed:
            self.set_status(task, FAILED)
            task.clear_failures()

    def set_batch_running(self, task: Task, batch_id: str, worker_id: str) -> None:
        self.set_status(task, BATCH_RUNNING)
        task.batch_id = batch_id
        task.worker_running = worker_id
        task.resources_running = task.resources
        task.time_running = time.time()

    def fail_dead_worker_task(self, task: Task, assistants: set[str]) -> None:
        """A running task whose worker is gone fails, and is retried like any failure."""
        if (
            task.status in (BATCH_RUNNING, RUNNING)
            and task.worker_running
            and task.worker_running not in task.stakeholders
            and task.worker_running not in assistants
        ):
            logger.info(
                "Task %r is marked as running by disconnected worker %r -> marking as FAILED "
                "with retry delay of %rs",
                task.id,
                task.worker_running,
                self.config.retry_delay,
            )
            task.worker_running = None
            self.set_status(task, FAILED)
            task.retry = time.time() + self.config.retry_delay

    def update_status(self, task: Task) -> None:
        """Time-driven transitions: mark for removal, lift expired disables, retry failures."""
        config = self.config
        now = time.time()
        if not task.stakeholders and task.remove is None and task.status != RUNNING:
            logger.debug(
                "Task %r has no stakeholders anymore -> might remove task in %s seconds",
                task.id,
                config.remove_delay,
            )
            task.remove = now + config.remove_delay
        if (
            task.status == DISABLED
            and task.scheduler_disable_time is not None
            and now - task.scheduler_disable_time > config.disable_persist
        ):
            self.re_enable(task, to_failed=True)
        if (
            task.status == FAILED
            and config.retry_delay >= 0
            and task.retry is not None
            and task.retry < time.time()
        ):
            self.set_status(task, PENDING)

    def may_prune(self, task: Task) -> bool:
        return bool(task.remove) and time.time() >= (task.remove or 0.0)

    # ------------------------------------------------------------ persistence

    def snapshot(self) -> tuple[dict[str, Task], dict[str, Worker], dict[str, dict[str, Batcher]]]:
        """The state as luigi lays it out: (tasks, workers, batchers)."""
        return self._tasks, self._workers, self._batchers

    def restore(
        self,
        tasks: dict[str, Task],
        workers: dict[str, Worker],
        batchers: dict[str, dict[str, Batcher]],
    ) -> None:
        """Replace everything and rebuild every index from the records."""
        self._tasks = dict(tasks)
        self._workers = dict(workers)
        self._batchers = dict(batchers)
        self._by_status = {s: {} for s in STATUSES}
        self._rdeps = {}
        self._stakes = {}
        for task in self._tasks.values():
            if task.status not in self._by_status:
                self._by_status[task.status] = {}
            self._index_status(task)
            self._index_deps(task, (), task.deps)
            for worker_id in task.stakeholders:
                self._stakes.setdefault(worker_id, set()).add(task.id)
        for worker in self._workers.values():
            worker.tasks = {t for t in worker.tasks if self._tasks.get(t.id) is t}
