"""Shared helpers for the scheduler tests: the fake clock, call shorthands, and the luigi twin."""

from __future__ import annotations

import copy
import json
import uuid
from typing import Any, cast

import pytest

from luigid.config import SchedulerConfig
from luigid.metrics.collector import MetricsCollector
from luigid.scheduler import Scheduler
from tests.support.clock import START as START
from tests.support.clock import FakeClock

#: the scheduler tests' name for the shared fake clock
Clock = FakeClock

UPSTREAM_STATUSES = ("UPSTREAM_RUNNING", "UPSTREAM_MISSING_INPUT", "UPSTREAM_FAILED", "UPSTREAM_DISABLED")


#: every status a task_list caller may ask for, including SUSPENDED (never stored) and nonsense
STATUSES_ASKED = (
    "",
    "PENDING",
    "RUNNING",
    "DONE",
    "FAILED",
    "DISABLED",
    "UNKNOWN",
    "BATCH_RUNNING",
    "SUSPENDED",
    "NO_SUCH",
)


def add(s: Any, task_id: str, worker: str = "w1", **kwargs: Any) -> Any:
    """``add_task`` with the arguments a luigi worker always sends filled in; its reply."""
    kwargs.setdefault("family", task_id.split("_")[0])
    kwargs.setdefault("params", {})
    return s.add_task(task_id=task_id, worker=worker, **kwargs)


def work(s: Any, worker: str = "w1", **kwargs: Any) -> dict[str, Any]:
    kwargs.setdefault("host", "host-" + worker)
    return s.get_work(worker=worker, **kwargs)


def work_id(s: Any, worker: str = "w1", **kwargs: Any) -> str | None:
    return work(s, worker, **kwargs)["task_id"]


def status_of(s: Any, task_id: str) -> str | None:
    """The task's status as task_search reports it (None when the scheduler forgot it)."""
    for status, tasks in s.task_search(task_str=task_id).items():
        if task_id in tasks:
            return status
    return None


def normalise(value: Any) -> Any:
    """Reduce a reply to what a worker sees over HTTP (JSON), ignoring luigi's set orderings.

    Only orderings luigi itself leaves to set iteration are sorted away; everything else
    (worker_list order, batch_task_ids, ...) must match exactly.
    """
    plain = json.loads(json.dumps(value))
    return _sort_unordered(plain)


def _sort_unordered(value: Any) -> Any:
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            item = _sort_unordered(item)
            # luigi serialises task.deps (a set) as a list in arbitrary order
            if key == "deps" and isinstance(item, list):
                item = sorted(item)
            # count_pending lists running tasks by walking a set (or not, depending on sizes)
            if key == "running_tasks" and isinstance(item, list):
                item = sorted(item, key=lambda entry: json.dumps(entry, sort_keys=True))
            out[key] = item
        return out
    if isinstance(value, list):
        return [_sort_unordered(item) for item in value]
    return value


class Recorder(MetricsCollector):
    """Task history, metrics collector and e-mail notifier in one: it writes down each call.

    Both schedulers get one, so the side effects they trigger can be compared call by call.
    """

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def _note(self, event: str, task: Any, *extra: Any) -> None:
        if isinstance(task, dict):
            self.calls.append((event, json.dumps(task, sort_keys=True), *extra))
        else:
            self.calls.append((event, task.id, task.status, *extra))

    # task history
    def task_scheduled(self, task: Any) -> None:
        self._note("task_scheduled", task)

    def task_started(self, task: Any, worker_host: Any) -> None:
        self._note("task_started", task, worker_host)

    def task_finished(self, task: Any, successful: bool) -> None:
        self._note("task_finished", task, successful)

    # metrics collector
    def handle_task_started(self, task: Any) -> None:
        self._note("handle_task_started", task)

    def handle_task_failed(self, task: Any) -> None:
        self._note("handle_task_failed", task)

    def handle_task_disabled(self, task: Any, config: Any) -> None:
        self._note("handle_task_disabled", task)

    def handle_task_done(self, task: Any) -> None:
        self._note("handle_task_done", task)

    def handle_task_statistics(self, task: Any, statistics: Any) -> None:
        self._note("handle_task_statistics", task, json.dumps(statistics, sort_keys=True))

    # e-mail
    def send_error_email(self, subject: str, message: str, additional_recipients: Any = None) -> None:
        self.calls.append(("send_error_email", subject, message))

    # batched e-mail (batch_emails = true)
    def add_failure(self, task_name: str, family: str, params: Any, expl: Any, owners: Any) -> None:
        shown = json.dumps(params, sort_keys=True)
        self.calls.append(("add_failure", task_name, family, shown, expl, owners))

    def add_disable(self, task_name: str, family: str, params: Any, owners: Any) -> None:
        self.calls.append(("add_disable", task_name, family, json.dumps(params, sort_keys=True), owners))

    def add_scheduling_fail(self, task_name: str, family: str, params: Any, expl: Any, owners: Any) -> None:
        self.calls.append(
            ("add_scheduling_fail", task_name, family, json.dumps(params, sort_keys=True), expl, owners)
        )

    def update(self) -> None:
        self.calls.append(("update",))

    def send_email(self) -> None:
        self.calls.append(("send_email",))


class LuigiCrashed(Exception):
    """luigi's own scheduler raised on a call (ours was then not called)."""


class Twin:
    """luigi 3.8.1's own Scheduler and ours, fed the same calls at the same fake times.

    ``uuid.uuid4`` is replaced by a counter that both sides replay from the same point, so
    message ids agree and can be used in follow-up calls.
    """

    def __init__(
        self,
        clock: Clock,
        resources: dict[str, int],
        settings: dict[str, Any],
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        import luigi.scheduler

        self.clock = clock
        self.their_events = Recorder()
        self.our_events = Recorder()
        self.theirs = luigi.scheduler.Scheduler(
            resources=dict(resources), task_history_impl=self.their_events, **settings
        )
        self.theirs._state._metrics_collector = self.their_events
        if settings.get("batch_emails"):
            self.theirs._email_batcher = cast(Any, self.their_events)
        notifications = luigi.scheduler.notifications
        monkeypatch.setattr(notifications, "send_error_email", self.their_events.send_error_email)
        self.ours = Scheduler(
            SchedulerConfig(**settings),
            resources=dict(resources),
            task_history_impl=self.our_events,
            metrics_collector=self.our_events,
            notifier=self.our_events,
            batch_notifier=self.our_events if settings.get("batch_emails") else None,
        )
        self.called: set[str] = set()
        self._uuid_next = 1
        monkeypatch.setattr(uuid, "uuid4", self._fake_uuid4)

    def _fake_uuid4(self) -> uuid.UUID:
        value = uuid.UUID(int=self._uuid_next)
        self._uuid_next += 1
        return value

    def both(self, method: str, **kwargs: Any) -> tuple[Any, Any]:
        """Call ``method`` on luigi's scheduler, then on ours; return both raw replies."""
        self.called.add(method)
        first_uuid = self._uuid_next
        try:
            theirs = getattr(self.theirs, method)(**copy.deepcopy(kwargs))
        except Exception as exc:
            raise LuigiCrashed(f"{method}: {exc!r}") from exc
        self._uuid_next = first_uuid
        ours = getattr(self.ours, method)(**copy.deepcopy(kwargs))
        return theirs, ours

    def same(self, method: str, **kwargs: Any) -> Any:
        """Call both and require identical replies (as JSON); return ours."""
        theirs, ours = self.both(method, **kwargs)
        assert normalise(ours) == normalise(theirs), (
            f"{method}({kwargs}) differs\n luigi:  {normalise(theirs)}\n luigid: {normalise(ours)}"
        )
        assert self.our_events.calls == self.their_events.calls, (
            f"{method}({kwargs}): history/metrics/e-mail calls differ"
        )
        return ours

    # shorthands mirroring the worker-side helpers above
    def add(self, task_id: str, worker: str = "w1", **kwargs: Any) -> None:
        """add_task one second after the previous call, so no two tasks tie on age."""
        self.clock.advance(1)
        kwargs.setdefault("family", task_id.split("_")[0])
        kwargs.setdefault("params", {})
        self.same("add_task", task_id=task_id, worker=worker, **kwargs)

    def work(self, worker: str = "w1", **kwargs: Any) -> dict[str, Any]:
        kwargs.setdefault("host", "host-" + worker)
        return self.same("get_work", worker=worker, **kwargs)

    def views(self, *task_ids: str) -> None:
        """Compare every read-only view of the whole state (and of the given tasks)."""
        self.same("graph")
        for status in STATUSES_ASKED:
            self.same("task_list", status=status, upstream_status="")
        for upstream in UPSTREAM_STATUSES:
            self.same("task_list", status="PENDING", upstream_status=upstream)
        self.same("worker_list")
        self.same("resource_list")
        for task_id in task_ids:
            self.same("dep_graph", task_id=task_id)
            self.same("dep_graph", task_id=task_id, include_done=False)
            self.same("inverse_dep_graph", task_id=task_id)
            self.same("inverse_dep_graph", task_id=task_id, include_done=False)
            self.same("fetch_error", task_id=task_id)
            self.same("get_running_task_resources", task_id=task_id)
            self.same("get_task_status_message", task_id=task_id)
            self.same("get_task_progress_percentage", task_id=task_id)
