"""Where a task's status change goes besides the state: the status journal of an older
luigid's setup, the metrics collector and the disable alert (all handed in through
``luigid.core.ports``)."""

from __future__ import annotations

from typing import Any, Protocol

from luigid.config import SchedulerConfig
from luigid.core.model import DISABLED, DONE, FAILED, RUNNING, Task
from luigid.core.ports import DisableAlerts, StatusJournal


class Collaborators(Protocol):
    """What the router reads off the scheduler at each change (they may be swapped, e.g. muted)."""

    config: SchedulerConfig
    journal: StatusJournal | None
    metrics_collector: Any
    alerts: DisableAlerts


class StatusRouter:
    """Routes status changes from the state to the journal, metrics and e-mail."""

    def __init__(self, scheduler: Collaborators) -> None:
        self._scheduler = scheduler

    def status_changed(self, task: Task) -> None:
        scheduler = self._scheduler
        journal = scheduler.journal
        if journal is not None:  # first, so the change is on disk before the RPC replies
            journal.record(
                task.id, task.status, task.updated, task.worker_running if task.status == RUNNING else None
            )
        collector = scheduler.metrics_collector
        if task.status == DISABLED:
            collector.handle_task_disabled(task, scheduler.config)
        elif task.status == DONE:
            collector.handle_task_done(task)
        elif task.status == FAILED:
            collector.handle_task_failed(task)

    def disabled_for_failures(self, task: Task) -> None:
        if not self._scheduler.config.batch_emails:  # else the batched mail says it
            self._scheduler.alerts.disabled_for_failures(task)
