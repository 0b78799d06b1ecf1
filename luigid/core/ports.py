"""What the scheduler calls on its collaborators, as small protocols with do-nothing
defaults. The scheduler never does I/O itself: the real collaborators (status journal,
metrics, e-mail, task history) only enqueue, and are built and handed in by the
composition root, ``luigid.scheduler``; core imports none of them."""

from __future__ import annotations

import logging
from typing import Any, Protocol

from luigid.core.model import DONE, FAILED, PENDING, RUNNING, Task
from luigid.core.throttled_log import ThrottledWarning

logger = logging.getLogger("luigi.server")
#: a broken history fails every status change, so one line a minute
_history_warning = ThrottledWarning(logger)


class StatusEvents(Protocol):
    """Side effects of status changes (journal, metrics, e-mail), told by the state."""

    def status_changed(self, task: Task) -> None: ...

    def disabled_for_failures(self, task: Task) -> None: ...


class NoEvents:
    def status_changed(self, task: Task) -> None:
        pass

    def disabled_for_failures(self, task: Task) -> None:
        pass


class StatusJournal(Protocol):
    """Where status changes are written as they happen (``luigid.storage.journal.Journal``)."""

    def record(self, task_id: str, status: str, when: float, worker: str | None) -> None: ...

    def close(self) -> None: ...


class Metrics(Protocol):
    """The scheduler's side of a metrics collector (``luigid.metrics``)."""

    def handle_task_started(self, task: Any) -> None: ...

    def handle_task_failed(self, task: Any) -> None: ...

    def handle_task_disabled(self, task: Any, config: Any) -> None: ...

    def handle_task_done(self, task: Any) -> None: ...

    def handle_task_statistics(self, task: Any, statistics: Any) -> None: ...

    def observe_prune(self, seconds: float) -> None: ...


class NoMetrics:
    def handle_task_started(self, task: Any) -> None:
        pass

    def handle_task_failed(self, task: Any) -> None:
        pass

    def handle_task_disabled(self, task: Any, config: Any) -> None:
        pass

    def handle_task_done(self, task: Any) -> None:
        pass

    def handle_task_statistics(self, task: Any, statistics: Any) -> None:
        pass

    def observe_prune(self, seconds: float) -> None:
        pass


class DisableAlerts(Protocol):
    """Told when failures disable a task and e-mails are not batched (luigi's error mail)."""

    def disabled_for_failures(self, task: Task) -> None: ...


class NoAlerts:
    def disabled_for_failures(self, task: Task) -> None:
        pass


class BatchNotifier(Protocol):
    """Batched failure summaries, for ``[scheduler] batch_emails`` (``luigid.notify``)."""

    def add_failure(
        self, task_name: str, family: str, unbatched_params: Any, expl: Any, owners: Any
    ) -> None: ...

    def add_disable(self, task_name: str, family: str, unbatched_params: Any, owners: Any) -> None: ...

    def add_scheduling_fail(
        self, task_name: str, family: str, unbatched_params: Any, expl: Any, owners: Any
    ) -> None: ...

    def update(self) -> None: ...

    def send_email(self) -> None: ...


class TaskHistory(Protocol):
    """luigi's task history interface (``luigid.history``); it may also offer ``prune``."""

    def task_scheduled(self, task: Task) -> None: ...

    def task_started(self, task: Task, worker_host: str | None) -> None: ...

    def task_finished(self, task: Task, successful: bool) -> None: ...


class NoHistory:
    def task_scheduled(self, task: Task) -> None:
        pass

    def task_started(self, task: Task, worker_host: str | None) -> None:
        pass

    def task_finished(self, task: Task, successful: bool) -> None:
        pass


def tell_history(history: TaskHistory, task: Task, status: str, host: str | None = None) -> None:
    """Tell the task history about a status a task is given; a failing history never fails
    the call that changed the status."""
    try:
        if status in (DONE, FAILED):
            history.task_finished(task, status == DONE)
        elif status == PENDING:
            history.task_scheduled(task)
        elif status == RUNNING:
            history.task_started(task, host)
    except Exception:
        _history_warning.warn("Error saving Task history", exc_info=True)


class WritesRefused(Exception):
    """A change could not be made durable (the change log cannot be written or synced; with
    HA, PostgreSQL cannot be reached or this node no longer leads).
    The call is not acknowledged: the HTTP layer answers it 503 with this message, and
    state-changing calls are refused until the store can write again (Redis's
    stop-writes-on-error rule)."""


class ChangeLog(Protocol):
    """Where every state change is appended before its call is answered (the local-file
    implementation is ``luigid.storage.changelog``): ``method`` run with ``arguments``
    (JSON), at time ``now``, generating ``ids``."""

    def append(self, method: str, arguments: bytes, now: float, ids: list[str]) -> None: ...
