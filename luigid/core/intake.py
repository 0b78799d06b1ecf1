"""add_task: luigi's rules for what a worker's report of a task changes (status, deps,
stakeholders, runners, priority), and the batched failure mail it may queue."""

from __future__ import annotations

import functools
import json
from typing import Any

from luigid.config import SchedulerConfig
from luigid.core import clock
from luigid.core.interning import Interner
from luigid.core.model import (
    BATCH_RUNNING,
    DISABLED,
    DONE,
    FAILED,
    NOTHING,
    PENDING,
    RUNNING,
    SUSPENDED,
    UNKNOWN,
    Task,
    shared_name,
)
from luigid.core.ports import BatchNotifier, TaskHistory, tell_history
from luigid.core.state import State

#: each status a worker may send, as the one string object the scheduler's constants are
_STATUS = {
    status: status for status in (PENDING, RUNNING, DONE, FAILED, DISABLED, UNKNOWN, BATCH_RUNNING, SUSPENDED)
}


class TaskIntake:
    def __init__(
        self,
        state: State,
        interner: Interner,
        config: SchedulerConfig,
        history: TaskHistory,
        batch_notifier: BatchNotifier | None,
    ) -> None:
        self._state = state
        self._interner = interner
        self._config = config
        self._history = history
        self._batch_notifier = batch_notifier

    def attach(self, history: TaskHistory, batch_notifier: BatchNotifier | None) -> None:
        """Swap the collaborators told of changes (muted during a replay)."""
        self._history = history
        self._batch_notifier = batch_notifier

    def make_task(self, task_id: str, status: str, deps: Any = None, **fields: Any) -> Task:
        return Task(task_id, status, deps, retry_policy=self._interner.default_policy, **fields)

    def add_task(
        self,
        task_id: str,
        worker_id: str,
        status: str,
        runnable: bool,
        deps: list[str] | None,
        new_deps: list[str] | None,
        expl: Any,
        resources: dict[str, int] | None,
        priority: float,
        family: str,
        module: str | None,
        params: dict[str, Any] | None,
        param_visibilities: dict[str, int] | None,
        accepts_messages: bool,
        assistant: bool,
        tracking_url: str | None,
        batchable: bool | None,
        batch_id: str | None,
        retry_policy_dict: dict[str, Any] | None,
        owners: list[str] | None,
    ) -> None:
        """Add or update a task: status, deps, stakeholders, runners, priority."""
        state = self._state
        worker_rec = state.get_worker(worker_id)
        # the worker's own id object and the status constants: what the task keeps
        # refers to them, not to the strings each call's JSON made
        worker_id = worker_rec.id
        status = _STATUS.get(status, status)
        worker_rec.update(None)
        resources = dict(resources) if resources else NOTHING
        retry_policy = self._interner.retry_policy(retry_policy_dict)
        visibilities = self._interner.mapping

        if worker_rec.enabled:
            task = state.get_or_add_task(
                task_id,
                lambda: self.make_task(
                    task_id,
                    PENDING,
                    deps,
                    resources=resources,
                    priority=priority,
                    family=family,
                    module=module,
                    params=params,
                    param_visibilities=visibilities("visibility", param_visibilities or NOTHING),
                ),
            )
        else:
            found = state.get_task(task_id)
            if found is None or found.status != RUNNING:
                return
            task = found

        # a worker that saw the task as incomplete just before it was finished elsewhere
        if (
            status == PENDING
            and task.status == DONE
            and clock.now() - task.updated < self._config.stable_done_cooldown_secs
        ):
            return

        # what replies show of the task, written at once below (which drops its cached JSON);
        # a field is left out when it already holds that very object, so that writing changes nothing
        shown: dict[str, Any] = {}
        # placeholders (created for priority or as deps) learn who they are now
        if not task.family:
            shown["family"] = shared_name(family)
        if not task.module:
            task.module = shared_name(module)
        if not task.param_visibilities:
            shared = visibilities("visibility", param_visibilities or NOTHING)
            if shared is not task.param_visibilities:
                shown["param_visibilities"] = shared

        if batch_id is not None:
            task.batch_id = batch_id
        if status == RUNNING and not task.worker_running:
            shown["worker_running"] = worker_id
            if batch_id:
                members = state.batch_running_tasks(batch_id)
                if members and members[0].resources_running is not None:
                    shown["resources_running"] = dict(members[0].resources_running)
            shown["time_running"] = clock.now()

        if accepts_messages is not None and accepts_messages is not task.accepts_messages:
            shown["accepts_messages"] = accepts_messages

        if tracking_url is not None or task.status != RUNNING:
            if tracking_url is not task.tracking_url:
                shown["tracking_url"] = tracking_url
            if task.batch_id is not None:
                for member in state.batch_running_tasks(task.batch_id):
                    member.set(tracking_url=tracking_url)
        if shown:
            task.set(**shown)
            if "family" in shown:
                state.family_learnt(task)
        if not task.params:  # after the visibilities, which decide the public params
            task.set_params(params)

        if batchable is not None:
            task.batchable = batchable

        if task.remove is not None:
            state.unmark_removal(task)

        if expl is not None:
            task.expl = expl
            if task.batch_id is not None:
                for member in state.batch_running_tasks(task.batch_id):
                    member.expl = expl

        not_running = task.status not in (RUNNING, BATCH_RUNNING)
        reports_run = status in (DONE, FAILED, RUNNING)
        # only the worker running a task may finish it; anyone may touch an idle one
        if not_running or (reports_run and task.worker_running == worker_id) or new_deps:
            if status != task.status or status == PENDING:
                tell_history(self._history, task, status)
            state.set_status(task, PENDING if status == SUSPENDED else status)

        if status == FAILED and self._batch_notifier is not None:
            self._batch_failure(task, worker_id, family, expl, owners)

        if deps is not None:
            state.set_deps(task, deps)
        if new_deps is not None:
            state.add_deps(task, new_deps)
        state.set_resources(task, resources)
        if owners is not None:
            task.owners = list(owners) or None

        if worker_rec.enabled and not assistant:
            state.add_stakeholder(task, worker_id)
            # placeholders keep not-yet-added deps from being pruned meanwhile
            for dep_id in task.deps:
                dep = state.get_or_add_task(
                    dep_id, functools.partial(self.make_task, dep_id, UNKNOWN, priority=priority)
                )
                state.add_stakeholder(dep, worker_id)

        else:
            state.watch_unstaked(task)

        self._raise_priority(task, priority)
        task.retry_policy = retry_policy

        if runnable and status != FAILED and worker_rec.enabled:
            state.add_runner(task, worker_rec)
            task.runnable = runnable

    def _raise_priority(self, task: Task, priority: float) -> None:
        """Raise (never lower) a task's priority and carry the raise down its deps."""
        current = task.priority if isinstance(task.priority, (int, float)) else Task.DEFAULT_PRIORITY
        priority = max(priority, current)
        state = self._state
        state.set_priority(task, priority)
        stack = [task]
        while stack:
            for dep_id in stack.pop().deps:
                dep = state.get_task(dep_id)
                if dep is not None and priority > dep.priority:
                    state.set_priority(dep, priority)
                    stack.append(dep)

    # ------------------------------------------------------ batched failure mail

    def unbatched_params(self, worker_id: str, family: str, params: dict[str, Any]) -> dict[str, Any]:
        batched, _ = self._state.get_batcher(worker_id, family)
        if batched:
            return {k: v for k, v in params.items() if k not in batched}
        return params

    def _batch_failure(self, task: Task, worker_id: str, family: str, expl: Any, owners: Any) -> None:
        assert self._batch_notifier is not None
        unbatched = self.unbatched_params(worker_id, family, task.params)
        try:
            detail = json.loads(expl)
        except (TypeError, ValueError):
            detail = expl
        self._batch_notifier.add_failure(task.pretty_id, task.family, unbatched, detail, owners)
        if task.status == DISABLED:
            self._batch_notifier.add_disable(task.pretty_id, task.family, unbatched, owners)
