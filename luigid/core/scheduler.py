"""The RPC surface: every method luigi 3.8.1's scheduler offers, with the same names,
arguments, defaults and reply shapes, each handing the work to the part whose job it is.

Methods decorated with ``@rpc_method`` are the only ones the HTTP layer routes to. This
class does no I/O and builds no collaborator: history, metrics, e-mail and the change
log are handed in (see ``luigid.core.ports``; the public, composed scheduler is
``luigid.scheduler.Scheduler``). Time is always read from ``luigid.core.clock``: one
value per recorded call, else ``time.time()``, so tests can drive the clock.
"""

from __future__ import annotations

from typing import Any

from luigid.config import SchedulerConfig
from luigid.core import clock
from luigid.core.dispatch import Dispatcher
from luigid.core.events import StatusRouter
from luigid.core.intake import TaskIntake
from luigid.core.interning import Interner
from luigid.core.listings import Listings
from luigid.core.model import DISABLED, DONE, FAILED, PENDING, RUNNING
from luigid.core.notes import TaskNotes
from luigid.core.ports import (
    BatchNotifier,
    DisableAlerts,
    Metrics,
    NoAlerts,
    NoHistory,
    NoMetrics,
    StatusJournal,
    TaskHistory,
    tell_history,
)
from luigid.core.prune import Pruner
from luigid.core.recording import PRUNE, WORKERS_SEEN, Recorder
from luigid.core.replies import Replies
from luigid.core.resources import ResourcePool
from luigid.core.rpc import RPC_METHODS, Fragments, RpcError, RpcSpec, rpc_method
from luigid.core.state import State

__all__ = ["RPC_METHODS", "Scheduler", "rpc_method"]


class Scheduler:
    """The central scheduler: tasks, workers, resources, and the rules that tie them.

    It pickles as luigi's does (luigi's worker sends it with each scheduler message to a task
    process): the state only. A copy gets the do-nothing collaborators, so it can never write
    to the original's change log, mail or history; a prune round under way stays behind.
    """

    #: an HA standby: it answers read calls from its copy, and the prune they make is its
    #: leader's to record (so it only happens when a record of it is replayed)
    follower = False

    #: attributes a pickle leaves out: the collaborators, and the parts ``_wire`` builds
    _NOT_PICKLED = frozenset(
        {"metrics_collector", "batch_notifier", "task_history", "alerts", "journal", "recorder"}
        | {"replies", "_listings", "_intake", "_dispatch", "pruner", "_notes"}
    )

    def __init__(
        self,
        config: SchedulerConfig,
        resources: dict[str, int] | None = None,
        *,
        task_history: TaskHistory | None = None,
        metrics_collector: Metrics | None = None,
        batch_notifier: BatchNotifier | None = None,
        alerts: DisableAlerts | None = None,
    ) -> None:
        self.config = config
        self.metrics_collector: Any = metrics_collector or NoMetrics()
        self.batch_notifier: Any = batch_notifier
        self.task_history: Any = task_history or NoHistory()
        self.alerts: DisableAlerts = alerts or NoAlerts()
        #: where status changes are written as they happen; the daemon sets one up
        self.journal: StatusJournal | None = None
        self._state = State(config, StatusRouter(self))
        self._resources = ResourcePool(dict(resources or {}))
        self._interner = Interner(config.retry_policy())
        #: records every state change in ``recorder.log`` when the daemon gives it one
        self.recorder = Recorder()
        self._wire()

    def _wire(self) -> None:
        """Build the parts that do the work on the state, handing them the collaborators."""
        state, config = self._state, self.config
        self.replies = Replies(state, config)
        self._listings = Listings(state, self.replies, self._resources)
        self._intake = TaskIntake(state, self._interner, config, self.task_history, self.batch_notifier)
        self._dispatch = Dispatcher(state, self._resources, config, self.metrics_collector, self.task_history)
        #: prune rounds; ``pruner.step`` and ``pruner.slice_tasks`` size them
        self.pruner = Pruner(state, config, self.metrics_collector, self._prune_round_done)
        self._notes = TaskNotes(state, config)

    def __getstate__(self) -> dict[str, Any]:
        state = {name: value for name, value in self.__dict__.items() if name not in self._NOT_PICKLED}
        state["_prune_sizes"] = (self.pruner.step, self.pruner.slice_tasks)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        state = dict(state)
        step, slice_tasks = state.pop("_prune_sizes")
        self.__dict__.update(state)
        self.metrics_collector = NoMetrics()
        self.batch_notifier = None
        self.task_history = NoHistory()
        self.alerts = NoAlerts()
        self.journal = None
        self.recorder = Recorder()  # records nothing until a change log is attached
        self._wire()
        self.pruner.step, self.pruner.slice_tasks = step, slice_tasks

    @property
    def state(self) -> State:
        return self._state

    @property
    def _paused(self) -> bool:
        return self._state.paused

    # --------------------------------------------------------- change log

    def invoke_rpc(self, spec: RpcSpec, arguments: dict[str, Any]) -> Any:
        """An RPC as the HTTP layer makes it: a state-changing one is recorded."""
        if not spec.mutating:
            return spec.call(self, arguments)
        return self.recorder.run(spec.name, arguments, lambda: spec.call(self, arguments))

    def reset_state(self) -> None:
        """Start again from an empty state (a standby about to load a newer snapshot), keeping
        the collaborators and the change log."""
        self._state = State(self.config, StatusRouter(self))
        self._wire()
        self.attach(self.metrics_collector, self.task_history, self.batch_notifier, self.alerts)

    def mark_workers_seen(self) -> None:
        """Every known worker was active just now: a new leader does this so that workers that
        only waited for the failover are not timed out at once. Recorded as its own change."""

        def touch() -> None:
            for worker in self._state.workers():
                worker.last_active = clock.now()

        self.recorder.run(WORKERS_SEEN, {}, touch)

    def attach(self, metrics: Any, history: Any, batch_notifier: Any, alerts: DisableAlerts) -> None:
        """Hand the scheduler (and each part that tells them) other collaborators."""
        self.metrics_collector, self.task_history = metrics, history
        self.batch_notifier, self.alerts = batch_notifier, alerts
        self._intake.attach(history, batch_notifier)
        self._dispatch.attach(metrics, history)
        self.pruner.attach(metrics)

    # ---------------------------------------------------------------- prune

    @rpc_method(role="admin")
    def prune(self) -> None:
        """luigi's prune, as one slice: see prune_slice."""
        self.prune_slice()

    def prune_slice(self, tasks: int | None = None) -> bool:
        """Go on with the prune round under way, or start one (``luigid.core.prune``); True
        when the round is not finished and another call should follow. Recorded as its own
        change unless it runs inside a recorded call."""
        if self.follower and not self.recorder.inside:
            return False  # a follower's state changes only by replaying its leader's records
        budget = self.pruner.slice_tasks if tasks is None else tasks
        return self.recorder.run(PRUNE, {"tasks": budget}, lambda: self.pruner.prune_slice(budget))

    def _prune_round_done(self) -> None:
        if self.batch_notifier is not None:
            self.batch_notifier.update()
        history_prune = getattr(self.task_history, "prune", None)
        if history_prune is not None:
            history_prune()  # only flags retention work for the history writer

    # ------------------------------------------------------------- workers

    @rpc_method()
    def add_task_batcher(
        self, worker: str, task_family: str, batched_args: Any, max_batch_size: float = float("inf")
    ) -> None:
        self._state.set_batcher(worker, task_family, batched_args, max_batch_size)

    @rpc_method()
    def add_worker(self, worker: str, info: Any, **kwargs: Any) -> None:
        self._state.get_worker(worker).add_info(dict(info))

    @rpc_method(role="admin")
    def disable_worker(self, worker: str) -> None:
        self._state.disable_workers({worker})

    @rpc_method(role="admin")
    def set_worker_processes(self, worker: str, n: int) -> None:
        self._state.get_worker(worker).add_rpc_message("set_worker_processes", n=n)

    @rpc_method()
    def ping(self, **kwargs: Any) -> dict[str, Any]:
        worker_id = kwargs.get("worker")
        if worker_id is None:
            raise RpcError("ping needs a 'worker' argument")
        worker = self._state.get_worker(worker_id)
        worker.update(None)
        return {"rpc_messages": worker.fetch_rpc_messages()}

    # ----------------------------------------------------- task state calls

    @rpc_method(role="admin")
    def forgive_failures(self, task_id: str | None = None) -> dict[str, Any]:
        task = self._state.get_task(task_id) if task_id is not None else None
        if task is None:
            return {"task_id": task_id, "status": None}
        if task.status == FAILED:
            tell_history(self.task_history, task, PENDING)
            self._state.set_status(task, PENDING)
        return {"task_id": task_id, "status": task.status}

    @rpc_method(role="admin")
    def mark_as_done(self, task_id: str | None = None) -> dict[str, Any]:
        task = self._state.get_task(task_id) if task_id is not None else None
        if task is None:
            return {"task_id": task_id, "status": None}
        if task.status in (RUNNING, FAILED, DISABLED):
            tell_history(self.task_history, task, DONE)
            self._state.set_status(task, DONE)
        return {"task_id": task_id, "status": task.status}

    @rpc_method()
    def add_task(
        self,
        task_id: str | None = None,
        status: str = PENDING,
        runnable: bool = True,
        deps: list[str] | None = None,
        new_deps: list[str] | None = None,
        expl: Any = None,
        resources: dict[str, int] | None = None,
        priority: float = 0,
        family: str = "",
        module: str | None = None,
        params: dict[str, Any] | None = None,
        param_visibilities: dict[str, int] | None = None,
        accepts_messages: bool = False,
        assistant: bool = False,
        tracking_url: str | None = None,
        worker: str | None = None,
        batchable: bool | None = None,
        batch_id: str | None = None,
        retry_policy_dict: dict[str, Any] | None = None,
        owners: list[str] | None = None,
        **kwargs: Any,
    ) -> None:
        """Add or update a task: status, deps, stakeholders, runners, priority."""
        if worker is None:
            raise RpcError("add_task needs a 'worker' argument")
        if task_id is None:
            raise RpcError("add_task needs a 'task_id' argument")
        self._intake.add_task(
            task_id,
            worker,
            status,
            runnable,
            deps,
            new_deps,
            expl,
            resources,
            priority,
            family,
            module,
            params,
            param_visibilities,
            accepts_messages,
            assistant,
            tracking_url,
            batchable,
            batch_id,
            retry_policy_dict,
            owners,
        )

    @rpc_method()
    def announce_scheduling_failure(
        self, task_name: str, family: str, params: dict[str, Any], expl: Any, owners: Any, **kwargs: Any
    ) -> None:
        if self.batch_notifier is None or not self.config.batch_emails:
            return
        worker_id = kwargs.get("worker") or ""
        unbatched = self._intake.unbatched_params(worker_id, family, params)
        self.batch_notifier.add_scheduling_fail(task_name, family, unbatched, expl, owners)

    @rpc_method(role="admin")
    def re_enable_task(self, task_id: str) -> dict[str, Any]:
        task = self._state.get_task(task_id)
        if task and task.status == DISABLED and task.scheduler_disable_time:
            self._state.re_enable(task, to_failed=True)
            return self.replies.serialize_task(task)
        return {}

    # ------------------------------------------------------------ messages

    @rpc_method(role="admin")
    def send_scheduler_message(self, worker: str, task: str, content: Any) -> dict[str, Any]:
        return self._notes.send(worker, task, content)

    @rpc_method()
    def add_scheduler_message_response(self, task_id: str, message_id: str, response: Any) -> None:
        self._notes.answer(task_id, message_id, response)

    @rpc_method(role="viewer")
    def get_scheduler_message_response(self, task_id: str, message_id: str) -> dict[str, Any]:
        return self._notes.take_answer(task_id, message_id)

    # --------------------------------------------------------------- flags

    @rpc_method(role="viewer", mutating=False)
    def has_task_history(self) -> bool:
        return self.config.record_task_history

    @rpc_method(role="viewer", mutating=False)
    def is_pause_enabled(self) -> dict[str, bool]:
        return {"enabled": self.config.pause_enabled}

    @rpc_method(role="viewer", mutating=False)
    def is_paused(self) -> dict[str, bool]:
        return {"paused": self._paused}

    @rpc_method(role="admin")
    def pause(self) -> None:
        if self.config.pause_enabled:
            self._state.paused = True

    @rpc_method(role="admin")
    def unpause(self) -> None:
        if self.config.pause_enabled:
            self._state.paused = False

    # ----------------------------------------------------------- resources

    @rpc_method(role="admin")
    def update_resources(self, **resources: Any) -> None:
        self._resources.totals.update(resources)
        self._state.resource_overrides.update(resources)

    @rpc_method(role="admin")
    def update_resource(self, resource: str, amount: Any) -> bool:
        if not isinstance(amount, int) or amount < 0:
            return False
        self._resources.totals[resource] = amount
        self._state.resource_overrides[resource] = amount
        return True

    def restored(self) -> None:
        """After the state was loaded: the resource totals it carries apply again."""
        self._resources.totals.update(self._state.resource_overrides)

    def resources(self) -> dict[str, dict[str, int]]:
        """Total and used amount of each configured resource."""
        return self._resources.usage(self._state.tasks_by_status(RUNNING))

    @rpc_method(role="viewer", mutating=False)
    def resource_list(self) -> list[dict[str, Any]]:
        """Each resource's usage and the running tasks holding it."""
        self.prune()
        return self._listings.resource_list()

    @rpc_method()
    def decrease_running_task_resources(self, task_id: str, decrease_resources: dict[str, int]) -> None:
        task = self._state.get_task(task_id)
        if task is None or task.status != RUNNING:
            return
        batch = self._state.batch_running_tasks(task.batch_id) if task.batch_id is not None else []
        self._resources.decrease_held([task, *batch], decrease_resources)

    @rpc_method(role="viewer", mutating=False)
    def get_running_task_resources(self, task_id: str) -> dict[str, Any]:
        task = self._state.get_task(task_id)
        return {"taskId": task_id, "resources": task.resources_running if task is not None else None}

    # ------------------------------------------------------------ get_work

    @rpc_method()
    def count_pending(self, worker: str) -> dict[str, Any]:
        return self._dispatch.count_pending(worker)

    @rpc_method()
    def get_work(
        self,
        host: str | None = None,
        assistant: bool = False,
        current_tasks: list[str] | None = None,
        worker: str | None = None,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """Hand the asking worker its best runnable task (or a batch of them)."""
        if self.config.prune_on_get_work:
            self.prune()
        if worker is None:
            raise RpcError("get_work needs a 'worker' argument")
        return self._dispatch.get_work(worker, host, assistant, current_tasks, self._paused)

    # ----------------------------------------------------- streamed replies

    @rpc_method(role="viewer", mutating=False, streamed=True)
    def graph(self, **kwargs: Any) -> Fragments:
        self.prune()
        return self.replies.graph()

    @rpc_method(role="viewer", mutating=False, streamed=True)
    def dep_graph(self, task_id: str, include_done: bool = True, **kwargs: Any) -> dict[str, Any] | Fragments:
        self.prune()
        return self.replies.graph_of(task_id, include_done, inverse=False)

    @rpc_method(role="viewer", mutating=False, streamed=True)
    def inverse_dep_graph(
        self, task_id: str, include_done: bool = True, **kwargs: Any
    ) -> dict[str, Any] | Fragments:
        self.prune()
        return self.replies.graph_of(task_id, include_done, inverse=True)

    @rpc_method(role="viewer", mutating=False, streamed=True)
    def task_list(
        self,
        status: str = "",
        upstream_status: str = "",
        limit: bool = True,
        search: str | None = None,
        max_shown_tasks: int | None = None,
        **kwargs: Any,
    ) -> dict[str, Any] | Fragments:
        """Tasks with a status (all when empty), or just their count when there are too many."""
        cap = max_shown_tasks or self.config.max_shown_tasks
        counted = self.replies.too_many(status, upstream_status, limit, search, cap)
        if counted is not None:
            return counted
        self.prune()
        return self.replies.task_list(status, upstream_status, limit, search, cap)

    # ------------------------------------------------------------- reading

    @rpc_method(role="viewer", mutating=False)
    def task_search(self, task_str: str, **kwargs: Any) -> dict[str, Any]:
        self.prune()
        return self._listings.task_search(task_str)

    @rpc_method(role="viewer", mutating=False)
    def worker_list(self, include_running: bool = True, **kwargs: Any) -> list[dict[str, Any]]:
        self.prune()
        return self._listings.worker_list(include_running)

    @rpc_method(role="viewer", mutating=False)
    def fetch_error(self, task_id: str, **kwargs: Any) -> dict[str, Any]:
        return self._listings.fetch_error(task_id)

    # ------------------------------------------------- status and progress

    @rpc_method()
    def set_task_status_message(self, task_id: str, status_message: Any) -> None:
        self._notes.set(task_id, status_message=status_message)

    @rpc_method(role="viewer", mutating=False)
    def get_task_status_message(self, task_id: str) -> dict[str, Any]:
        return self._notes.status_message(task_id)

    @rpc_method()
    def set_task_progress_percentage(self, task_id: str, progress_percentage: Any) -> None:
        self._notes.set(task_id, progress_percentage=progress_percentage)

    @rpc_method(role="viewer", mutating=False)
    def get_task_progress_percentage(self, task_id: str) -> dict[str, Any]:
        return self._notes.progress(task_id)

    # ------------------------------------------------------------- metrics

    @rpc_method()
    def update_metrics_task_started(self, task: Any) -> None:
        self.metrics_collector.handle_task_started(task)

    @rpc_method()
    def report_task_statistics(self, task_id: str, statistics: Any) -> None:
        task = self._state.get_task(task_id)
        if task is not None:
            self.metrics_collector.handle_task_statistics(task, statistics)
