"""luigi's status rules: which status a task may move to, and what comes with the move
(failure counting and disabling, batch members following their runner, retry and removal
times). The records and indexes are kept by ``luigid.core.state``; this is the why."""

from __future__ import annotations

import logging
from typing import Protocol

from luigid.config import SchedulerConfig
from luigid.core import clock
from luigid.core.model import BATCH_RUNNING, DISABLED, DONE, FAILED, PENDING, RUNNING, Task
from luigid.core.ports import StatusEvents
from luigid.core.timers import PruneQueue

logger = logging.getLogger("luigi.server")


class Records(Protocol):
    """What the rules need of the state (``luigid.core.state.State``)."""

    def move(self, task: Task, new_status: str, updated: float) -> None: ...

    def batch_running_tasks(self, batch_id: str) -> list[Task]: ...

    def has_worker(self, worker_id: str) -> bool: ...


class StatusRules:
    def __init__(
        self, records: Records, queue: PruneQueue, config: SchedulerConfig, events: StatusEvents
    ) -> None:
        self._records = records
        self._queue = queue
        self.config = config
        self.events = events

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
            for member in self._records.batch_running_tasks(task.batch_id):
                self.set_status(member, new_status)
                member.batch_id = None
            task.batch_id = None

        if new_status == FAILED and task.status != DISABLED:
            task.add_failure()
            if task.has_excessive_failures():
                task.set(scheduler_disable_time=clock.now())
                new_status = DISABLED
                self.events.disabled_for_failures(task)
        elif new_status == DISABLED:
            task.set(scheduler_disable_time=None)

        if new_status != task.status:
            self._records.move(task, new_status, clock.now())
            self.events.status_changed(task)

        if new_status == FAILED:
            task.retry = clock.now() + config.retry_delay
            if remove_on_failure:
                task.remove = clock.now()
        self._queue.schedule(task)

    def re_enable(self, task: Task, to_failed: bool = False) -> None:
        task.set(scheduler_disable_time=None)
        task.clear_failures()
        if to_failed:
            self.set_status(task, FAILED)
            task.clear_failures()

    def set_batch_running(self, task: Task, batch_id: str, worker_id: str) -> None:
        self.set_status(task, BATCH_RUNNING)
        task.batch_id = batch_id
        # the same dict, as in luigi: decreasing a member's running resources decreases both
        task.set(worker_running=worker_id, resources_running=task.resources, time_running=clock.now())

    def fail_dead_worker_task(self, task: Task, assistants: set[str]) -> None:
        """A running task whose worker is gone fails, and is retried like any failure.
        Gone: no stakeholder of the task (luigi's test), or removed by prune and not yet
        settled off the task's stakeholders (what luigi's test says once it is)."""
        runner = task.worker_running
        if (
            task.status in (BATCH_RUNNING, RUNNING)
            and runner
            and (runner not in task.stakeholders or not self._records.has_worker(runner))
            and runner not in assistants
        ):
            logger.info(
                "Task %r is marked as running by disconnected worker %r -> marking as FAILED "
                "with retry delay of %rs",
                task.id,
                runner,
                self.config.retry_delay,
            )
            task.set(worker_running=None)
            self.set_status(task, FAILED)
            task.retry = clock.now() + self.config.retry_delay
            self._queue.schedule(task)

    def update_status(self, task: Task) -> None:
        """Time-driven transitions: mark for removal, lift expired disables, retry failures."""
        config = self.config
        now = clock.now()
        if not task.stakeholders and task.remove is None and task.status != RUNNING:
            logger.debug(
                "Task %r has no stakeholders anymore -> might remove task in %s seconds",
                task.id,
                config.remove_delay,
            )
            task.remove = now + config.remove_delay
            self._queue.schedule(task)
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
            and task.retry < clock.now()
        ):
            self.set_status(task, PENDING)

    @staticmethod
    def may_prune(task: Task) -> bool:
        return bool(task.remove) and clock.now() >= (task.remove or 0.0)
