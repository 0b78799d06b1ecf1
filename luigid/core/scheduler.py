"""The RPC surface: every method luigi 3.8.1's scheduler offers, with the same names,
arguments, defaults and reply shapes.

Methods decorated with ``@rpc_method`` are the only ones the HTTP layer routes to. The
scheduler never does I/O itself: history, metrics and e-mail are handed events through
objects whose calls only enqueue (see ``luigid.history``, ``luigid.metrics``,
``luigid.notify``). Time is always read as ``time.time()`` so tests can drive the clock.
"""

from __future__ import annotations

import functools
import hashlib
import heapq
import itertools
import json
import logging
import re
import time
import uuid
from collections import defaultdict
from collections.abc import Iterable, Iterator
from operator import itemgetter
from typing import Any

from luigid.config import LuigidConfig, SchedulerConfig, load_config, scheduler_config_from
from luigid.core import gcpause
from luigid.core.model import (
    BATCH_RUNNING,
    DISABLED,
    DONE,
    FAILED,
    NOTHING,
    PENDING,
    RUNNING,
    STATUS_TO_UPSTREAM,
    SUSPENDED,
    UNKNOWN,
    UPSTREAM_SEVERITY,
    RetryPolicy,
    Task,
    Worker,
)
from luigid.core.rpc import RPC_METHODS, Fragments, Piece, RpcError, collect, dumps, members, rpc_method
from luigid.core.state import State, rank_key
from luigid.metrics import make_collector
from luigid.notify import disabled_task_email, make_batch_notifier, make_notifier
from luigid.storage.journal import Journal

__all__ = ["RPC_METHODS", "Scheduler", "rpc_method"]

logger = logging.getLogger("luigi.server")

#: How a family name is guessed from the id of a task the scheduler has never been told about.
_FAMILY_FROM_ID = re.compile(r"([^(_]+)[(_]")


class _NullHistory:
    def task_scheduled(self, task: Task) -> None:
        pass

    def task_started(self, task: Task, worker_host: str | None) -> None:
        pass

    def task_finished(self, task: Task, successful: bool) -> None:
        pass


_first = itemgetter(0)

#: Tasks per piece of a streamed reply, and tasks filtered between pauses: each piece costs
#: a few milliseconds at most, so a 100k-task reply never holds the event loop for long.
FRAGMENT_SIZE = 1000
#: How many distinct shared values (retry policies, visibility maps) to keep at most.
SHARED_LIMIT = 10_000
FILTER_PAUSE = 5000
#: Tasks one prune step takes, and how many tasks' work one call to prune may do before
#: handing the event loop back. A task costs 3-10 microseconds, and a removal with its log
#: line 20-30 (2,000 removals held the loop 58 ms in the daemon): a call stays under 30 ms.
#: A count, not a clock, so that whether a small round ends in one call never depends on
#: how busy the machine is.
PRUNE_STEP = 1000
PRUNE_SLICE_TASKS = 1000


#: A task as task_list and graph replies show it, already JSON: the members of its entry in
#: the order ``Scheduler._serialize_task`` gives them, kept in ``Task.encoded`` until a field
#: it shows changes, so that a big reply is mostly a join of bytes made earlier. In order:
#: ``"<id>":{`` with the fields every entry has (status ... progress_percentage);
#: ``,"display_name":...`` (task_list entries, graph roots); ``,"re_enable_able":...`` or
#: nothing; ``,"accepts_messages":...`` or nothing; then, once a graph asked, the deps sorted
#: as the graph walks them and ``,"deps":[...]`` (None until then). A derived slot: never saved.
Encoded = tuple[bytes, bytes, bytes, bytes, tuple[str, ...] | None, bytes | None]


def _split_off(node: dict[str, Any], key: str) -> bytes:
    """``,"key":value`` taken out of the node, or nothing when it has no such key."""
    return b"," + members({key: node.pop(key)}) if key in node else b""


def _upstream_key(status: str) -> int:
    return UPSTREAM_SEVERITY.index(status)


class _StateEvents:
    """Routes status changes from the state to the journal, metrics and e-mail."""

    def __init__(self, scheduler: Scheduler) -> None:
        self._scheduler = scheduler

    def status_changed(self, task: Task) -> None:
        journal = self._scheduler.journal
        if journal is not None:  # first, so the change is on disk before the RPC replies
            journal.record(
                task.id, task.status, task.updated, task.worker_running if task.status == RUNNING else None
            )
        collector = self._scheduler.metrics_collector
        if task.status == DISABLED:
            collector.handle_task_disabled(task, self._scheduler.config)
        elif task.status == DONE:
            collector.handle_task_done(task)
        elif task.status == FAILED:
            collector.handle_task_failed(task)

    def disabled_for_failures(self, task: Task) -> None:
        config = self._scheduler.config
        if config.batch_emails:
            return
        subject, body = disabled_task_email(task, config.disable_persist)
        logger.warning("%s", body)
        try:
            self._scheduler.notifier.send_error_email(subject, body)
        except Exception:
            logger.warning("Could not queue the disable notification for %s", task.id, exc_info=True)


class Scheduler:
    """The central scheduler: tasks, workers, resources, and the rules that tie them.

    ``Scheduler(config=None, resources=None, task_history_impl=None, **kwargs)`` as in
    luigi: ``config`` is a ``SchedulerConfig`` (or a whole ``LuigidConfig``); when it is
    omitted the config files are read and ``kwargs`` override ``[scheduler]`` keys.
    """

    def __init__(
        self,
        config: SchedulerConfig | LuigidConfig | None = None,
        resources: dict[str, int] | None = None,
        task_history_impl: Any = None,
        *,
        metrics_collector: Any = None,
        notifier: Any = None,
        batch_notifier: Any = None,
        **kwargs: Any,
    ) -> None:
        if config is None:
            from dataclasses import replace

            files = load_config()
            config = replace(files, scheduler=scheduler_config_from(files.sections, kwargs))
        elif kwargs:
            raise TypeError("pass [scheduler] overrides either as config or as keyword arguments")
        if isinstance(config, LuigidConfig):
            settings = config
            self.config: SchedulerConfig = config.scheduler
        else:
            settings = LuigidConfig(scheduler=config)
            self.config = config
        self.settings = settings
        # like luigi's Scheduler, build what the config asks for unless handed one
        sections = settings.sections
        self.metrics_collector: Any = metrics_collector or make_collector(self.config, sections)
        self.notifier: Any = notifier or make_notifier(self.config, sections)
        if batch_notifier is None and self.config.batch_emails:
            batch_notifier = make_batch_notifier(self.config, sections)
        self.batch_notifier: Any = batch_notifier
        if task_history_impl is None and self.config.record_task_history:
            from luigid.history import DbTaskHistory  # needs SQLAlchemy: only when asked for

            task_history_impl = DbTaskHistory.from_config(sections)
            task_history_impl.start()
        self.task_history: Any = task_history_impl or _NullHistory()
        #: status journal (``luigid.storage.journal.Journal``); the daemon sets one up, others run without
        self.journal: Journal | None = None
        self._state = State(self.config, _StateEvents(self))
        self._resources: dict[str, int] = dict(resources if resources is not None else settings.resources)
        self._retry_policy = self.config.retry_policy()
        self._shared: dict[Any, Any] = {}
        self._paused = False
        #: a prune round under way, resumed by the next call (see prune_slice)
        self._prune_round: Iterator[int] | None = None
        self.prune_step = PRUNE_STEP
        self.prune_slice_tasks = PRUNE_SLICE_TASKS

    # ------------------------------------------------------------ plumbing

    @property
    def state(self) -> State:
        return self._state

    def _make_task(self, task_id: str, status: str, deps: Any = None, **fields: Any) -> Task:
        return Task(task_id, status, deps, retry_policy=self._retry_policy, **fields)

    def _update_worker(
        self, worker_id: str, reference: dict[str, Any] | None = None, get_work: bool = False
    ) -> Worker:
        worker = self._state.get_worker(worker_id)
        worker.update(reference, get_work=get_work)
        return worker

    def _retry_policy_for(self, overrides: dict[str, Any] | None) -> RetryPolicy:
        """The task's policy; equal policies are one shared object (most tasks use the default)."""
        if not overrides or all(v is None for v in overrides.values()):
            return self._retry_policy
        policy = self._retry_policy._asdict()
        policy.update({k: v for k, v in overrides.items() if v is not None and k in policy})
        made = RetryPolicy(**policy)
        return self._shared.setdefault(("policy", made), made)

    def _share(self, kind: str, value: dict[str, Any]) -> dict[str, Any]:
        """One object for equal small dicts many tasks repeat (parameter visibilities)."""
        if not value:
            return NOTHING
        try:
            key = (kind, tuple(sorted(value.items())))
        except TypeError:  # unorderable or unhashable values: keep the task's own copy
            return dict(value)
        if len(self._shared) > SHARED_LIMIT:
            return dict(value)
        return self._shared.setdefault(key, dict(value))

    def _update_task_history(self, task: Task, status: str, host: str | None = None) -> None:
        try:
            if status in (DONE, FAILED):
                self.task_history.task_finished(task, status == DONE)
            elif status == PENDING:
                self.task_history.task_scheduled(task)
            elif status == RUNNING:
                self.task_history.task_started(task, host)
        except Exception:
            logger.warning("Error saving Task history", exc_info=True)

    def _update_priority(self, task: Task, priority: float) -> None:
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

    # ---------------------------------------------------------- persistence

    def load(self) -> None:
        """Load the state file at ``state_path`` (see ``luigid.storage.statefile``)."""
        from luigid.storage import statefile

        # Changes the journal replay makes are not journaled again: written now, they would
        # land in a newer generation with the replay's own times, and a second crash before
        # the next snapshot would replay those instead of the originals (still on disk).
        journal, self.journal = self.journal, None
        try:
            statefile.load_into(self._state, self.config.state_path, journal)
        finally:
            self.journal = journal

    def dump(self) -> None:
        """Write the state file atomically, then flush batched e-mail."""
        from luigid.storage import statefile

        statefile.save_state(self._state, self.config.state_path, self.journal)
        if self.batch_notifier is not None:
            self.batch_notifier.send_email()

    def close(self, timeout: float = 5.0) -> None:
        """Let background senders finish (after ``dump``), then release them."""
        for part in (self.notifier, self.batch_notifier):
            stop = getattr(part, "stop", None)
            if stop is not None:
                stop(timeout)
        stop_history = getattr(self.task_history, "stop", None)
        if stop_history is not None:
            stop_history(timeout)
        close = getattr(self.metrics_collector, "close", None)
        if close is not None:
            close()
        if self.journal is not None:
            self.journal.close()

    # ---------------------------------------------------------------- prune

    @rpc_method(role="admin")
    def prune(self) -> None:
        """luigi's prune, as one slice: see prune_slice."""
        self.prune_slice()

    @property
    def pruning(self) -> bool:
        """A prune round is under way (some call left it unfinished)."""
        return self._prune_round is not None

    def prune_slice(self, tasks: int | None = None) -> bool:
        """Go on with the prune round under way, or start one, until about ``tasks`` tasks'
        work is done (``prune_slice_tasks`` by default); True when the round is not finished
        and another call should follow.

        A round is luigi's prune: workers that stopped talking are removed, running tasks
        of gone workers fail, and due timers and unstaked tasks are looked at. After a
        fleet of workers stops, that is every task; done at once it held the event loop
        for over a second at 100k tasks. Between slices the state is consistent and RPCs
        run as usual. A round within the budget (every unit test's) ends in one call.
        """
        started = time.perf_counter()
        budget = self.prune_slice_tasks if tasks is None else tasks
        if self._prune_round is None:
            logger.debug("Starting pruning of task graph")
            self._prune_round = self._prune_round_steps()
        done = 0
        try:
            for worked in self._prune_round:
                done += worked
                if done >= budget:
                    return True
        except BaseException:
            self._prune_round = None
            raise
        finally:
            self.metrics_collector.observe_prune(time.perf_counter() - started)
        self._prune_round = None
        logger.debug("Done pruning task graph")
        return False

    def _prune_round_steps(self) -> Iterator[int]:
        """One prune round, yielding after each step how many tasks it worked on."""
        state = self._state
        step = self.prune_step
        self._prune_workers()
        # Before the first pause: a task still RUNNING under a removed worker would let a
        # get_work or count_pending naming that worker bring it back meanwhile.
        assistants = state.assistant_ids()
        running = list(state.tasks_by_status(RUNNING, BATCH_RUNNING))
        for task in running:
            state.fail_dead_worker_task(task, assistants)
        yield len(running)
        while state.settle_departures(step):
            yield step
        # Tasks looked at and kept are queued again only at the end of the round: one whose
        # timer is due but changes nothing would otherwise be taken again and again.
        kept: dict[str, Task] = {}
        while state.has_prune_work(time.time()):
            work, taken = state.take_prune_work(time.time(), step)  # stale timers count too
            expired = []
            for task in work:
                state.update_status(task)
                if state.may_prune(task):
                    logger.info("Removing task %r", task.id)
                    expired.append(task.id)
                    # kept earlier in the round? Let go of it now: holding the last
                    # reference to 70k removed tasks freed them all at the round's end (215 ms)
                    kept.pop(task.id, None)
                else:
                    kept[task.id] = task
            state.remove_tasks(expired)
            yield taken
        later = list(kept.values())
        for start in range(0, len(later), step):
            chunk = later[start : start + step]
            for task in chunk:
                if state.get_task(task.id) is task:  # not removed (and re-added) meanwhile
                    state.reschedule(task)
            yield len(chunk)
        if self.batch_notifier is not None:
            self.batch_notifier.update()
        history_prune = getattr(self.task_history, "prune", None)
        if history_prune is not None:
            history_prune()  # only flags retention work for the history writer

    def _prune_workers(self) -> None:
        deadline = time.time() - self.config.worker_disconnect_delay
        gone = [w.id for w in self._state.workers() if w.last_active < deadline]
        for worker_id in gone:
            logger.debug(
                "Worker %s timed out (no contact for >=%ss)", worker_id, self.config.worker_disconnect_delay
            )
        self._state.remove_workers(gone)

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
        worker = self._update_worker(worker_id)
        return {"rpc_messages": worker.fetch_rpc_messages()}

    # ----------------------------------------------------- task state calls

    @rpc_method(role="admin")
    def forgive_failures(self, task_id: str | None = None) -> dict[str, Any]:
        task = self._state.get_task(task_id) if task_id is not None else None
        if task is None:
            return {"task_id": task_id, "status": None}
        if task.status == FAILED:
            self._update_task_history(task, PENDING)
            self._state.set_status(task, PENDING)
        return {"task_id": task_id, "status": task.status}

    @rpc_method(role="admin")
    def mark_as_done(self, task_id: str | None = None) -> dict[str, Any]:
        task = self._state.get_task(task_id) if task_id is not None else None
        if task is None:
            return {"task_id": task_id, "status": None}
        if task.status in (RUNNING, FAILED, DISABLED):
            self._update_task_history(task, DONE)
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
        worker_id = worker
        worker_rec = self._update_worker(worker_id)
        resources = dict(resources) if resources else NOTHING
        retry_policy = self._retry_policy_for(retry_policy_dict)
        state = self._state

        if worker_rec.enabled:
            task = state.get_or_add_task(
                task_id,
                lambda: self._make_task(
                    task_id,
                    PENDING,
                    deps,
                    resources=resources,
                    priority=priority,
                    family=family,
                    module=module,
                    params=params,
                    param_visibilities=self._share("visibility", param_visibilities or NOTHING),
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
            and time.time() - task.updated < self.config.stable_done_cooldown_secs
        ):
            return

        task.encoded = None  # most of what follows may change what replies show of it
        # placeholders (created for priority or as deps) learn who they are now
        if not task.family:
            task.family = family
        if not task.module:
            task.module = module
        if not task.param_visibilities:
            task.param_visibilities = self._share("visibility", param_visibilities or NOTHING)
        if not task.params:
            task.set_params(params)

        if batch_id is not None:
            task.batch_id = batch_id
        if status == RUNNING and not task.worker_running:
            task.worker_running = worker_id
            if batch_id:
                members = state.batch_running_tasks(batch_id)
                if members and members[0].resources_running is not None:
                    task.resources_running = dict(members[0].resources_running)
            task.time_running = time.time()

        if accepts_messages is not None:
            task.accepts_messages = accepts_messages

        if tracking_url is not None or task.status != RUNNING:
            task.tracking_url = tracking_url
            if task.batch_id is not None:
                for member in state.batch_running_tasks(task.batch_id):
                    member.tracking_url = tracking_url
                    member.encoded = None

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
                self._update_task_history(task, status)
            state.set_status(task, PENDING if status == SUSPENDED else status)

        if status == FAILED and self.batch_notifier is not None:
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
                    dep_id, functools.partial(self._make_task, dep_id, UNKNOWN, priority=priority)
                )
                state.add_stakeholder(dep, worker_id)

        else:
            state.watch_unstaked(task)

        self._update_priority(task, priority)
        task.retry_policy = retry_policy

        if runnable and status != FAILED and worker_rec.enabled:
            state.add_runner(task, worker_rec)
            task.runnable = runnable

    def _unbatched_params(self, worker_id: str, family: str, params: dict[str, Any]) -> dict[str, Any]:
        batched, _ = self._state.get_batcher(worker_id, family)
        if batched:
            return {k: v for k, v in params.items() if k not in batched}
        return params

    def _batch_failure(self, task: Task, worker_id: str, family: str, expl: Any, owners: Any) -> None:
        unbatched = self._unbatched_params(worker_id, family, task.params)
        try:
            detail = json.loads(expl)
        except (TypeError, ValueError):
            detail = expl
        self.batch_notifier.add_failure(task.pretty_id, task.family, unbatched, detail, owners)
        if task.status == DISABLED:
            self.batch_notifier.add_disable(task.pretty_id, task.family, unbatched, owners)

    @rpc_method()
    def announce_scheduling_failure(
        self, task_name: str, family: str, params: dict[str, Any], expl: Any, owners: Any, **kwargs: Any
    ) -> None:
        if self.batch_notifier is None or not self.config.batch_emails:
            return
        worker_id = kwargs.get("worker") or ""
        unbatched = self._unbatched_params(worker_id, family, params)
        self.batch_notifier.add_scheduling_fail(task_name, family, unbatched, expl, owners)

    @rpc_method(role="admin")
    def re_enable_task(self, task_id: str) -> dict[str, Any]:
        task = self._state.get_task(task_id)
        if task and task.status == DISABLED and task.scheduler_disable_time:
            self._state.re_enable(task, to_failed=True)
            return self._serialize_task(task)
        return {}

    # ------------------------------------------------------------ messages

    @rpc_method(role="admin")
    def send_scheduler_message(self, worker: str, task: str, content: Any) -> dict[str, Any]:
        if not self.config.send_messages:
            return {"message_id": None}
        message_id = str(uuid.uuid4())
        self._state.get_worker(worker).add_rpc_message(
            "dispatch_scheduler_message", task_id=task, message_id=message_id, content=content
        )
        return {"message_id": message_id}

    @rpc_method()
    def add_scheduler_message_response(self, task_id: str, message_id: str, response: Any) -> None:
        task = self._state.get_task(task_id)
        if task is not None:
            if not task.scheduler_message_responses:  # NOTHING, or an empty dict a state file shared
                task.scheduler_message_responses = {}
            task.scheduler_message_responses[message_id] = response

    @rpc_method(role="viewer")
    def get_scheduler_message_response(self, task_id: str, message_id: str) -> dict[str, Any]:
        task = self._state.get_task(task_id)
        response = task.scheduler_message_responses.pop(message_id, None) if task is not None else None
        return {"response": response}

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
            self._paused = True

    @rpc_method(role="admin")
    def unpause(self) -> None:
        if self.config.pause_enabled:
            self._paused = False

    # ----------------------------------------------------------- resources

    @rpc_method(role="admin")
    def update_resources(self, **resources: Any) -> None:
        self._resources.update(resources)

    @rpc_method(role="admin")
    def update_resource(self, resource: str, amount: Any) -> bool:
        if not isinstance(amount, int) or amount < 0:
            return False
        self._resources[resource] = amount
        return True

    def _has_resources(self, needed: dict[str, int] | None, used: dict[str, int]) -> bool:
        if needed is None:
            return True
        available = self._resources
        return all(amount + used[name] <= available.get(name, 1) for name, amount in needed.items())

    def _used_resources(self) -> defaultdict[str, int]:
        used: defaultdict[str, int] = defaultdict(int)
        for task in self._state.tasks_by_status(RUNNING):
            running = task.resources_running if task.resources_running is not None else task.resources
            for name, amount in (running or {}).items():
                used[name] += amount
        return used

    def resources(self) -> dict[str, dict[str, int]]:
        """Total and used amount of each configured resource."""
        used = self._used_resources()
        return {name: {"total": total, "used": used.get(name, 0)} for name, total in self._resources.items()}

    @rpc_method(role="viewer", mutating=False)
    def resource_list(self) -> list[dict[str, Any]]:
        """Each resource's usage and the running tasks holding it."""
        self.prune()
        listing: list[dict[str, Any]] = [
            {"name": name, "num_total": r["total"], "num_used": r["used"]}
            for name, r in self.resources().items()
        ]
        holders: defaultdict[str, dict[str, Any]] = defaultdict(dict)
        for task in self._state.tasks_by_status(RUNNING):
            for name in task.resources or {}:
                holders[name][task.id] = self._serialize_task(task, include_deps=False)
        for entry in listing:
            running = holders[entry["name"]]
            entry["num_consumer"] = len(running)
            entry["running"] = running
        return listing

    @rpc_method()
    def decrease_running_task_resources(self, task_id: str, decrease_resources: dict[str, int]) -> None:
        task = self._state.get_task(task_id)
        if task is None or task.status != RUNNING:
            return

        def decrease(holder: Task) -> None:
            held = holder.resources_running
            if held is None:
                return
            holder.encoded = None  # changed in place, below
            for name, amount in decrease_resources.items():
                if amount > 0 and name in held:
                    held[name] = max(0, held[name] - amount)

        decrease(task)
        if task.batch_id is not None:
            for member in self._state.batch_running_tasks(task.batch_id):
                decrease(member)

    @rpc_method(role="viewer", mutating=False)
    def get_running_task_resources(self, task_id: str) -> dict[str, Any]:
        task = self._state.get_task(task_id)
        return {"taskId": task_id, "resources": task.resources_running if task is not None else None}

    # ------------------------------------------------------------ get_work

    @staticmethod
    def _rank(task: Task) -> tuple[float, float]:
        return task.priority, -task.time

    def _schedulable(self, task: Task) -> bool:
        if task.status != PENDING:
            return False
        for dep_id in task.deps:
            dep = self._state.get_task(dep_id)
            if dep is None or dep.status != DONE:
                return False
        return True

    def _is_trivial_worker(self, worker: Worker) -> bool:
        """A non-assistant whose pending tasks need no resources can skip the global view."""
        return not worker.assistant and self._state.load_of(worker.id).pending_res == 0

    def _candidates(
        self, worker_id: str, assistant: bool, trivial: bool, greedy_workers: dict[str, int]
    ) -> Iterator[Task]:
        """The tasks luigi's get_work loop would look at, in its order, less the ones that
        provably change nothing: a ready task that this worker cannot run and none of whose
        runners has reservations left. luigi scans every PENDING and RUNNING task; this walks
        the rank-sorted ready lists of the workers that still matter, merged."""
        state = self._state
        if trivial:
            # luigi looks only at this worker's own tasks here, and its RUNNING ones are inert
            yield from state.ready_tasks(worker_id)
            return
        running = sorted(((rank_key(t, running=True), t) for t in state.tasks_by_status(RUNNING)), key=_first)
        if assistant:  # an assistant may run any runnable task: the whole list it is
            ready = ((t.ready_key, t) for t in state.ready_tasks())
            for _, task in heapq.merge(ready, running, key=_first):
                yield task
            return
        # Once another worker's reservations run out, its remaining ready tasks are no-ops for
        # the caller's loop: a task it shares with a worker that still has some is also in that
        # worker's list, and one the caller may run is in the caller's. So a stream is dropped
        # from the merge the moment its worker has nothing left to reserve. Walking past the
        # no-ops instead cost thousands of steps when one worker's tasks all rank ahead of the
        # caller's (a worker that scheduled its graph first); re-merging instead was quadratic
        # in busy workers. ``owner`` None marks the streams never dropped.
        live = [w for w, left in greedy_workers.items() if left > 0 and w != worker_id]
        streams: list[tuple[str | None, Iterator[tuple[Any, Task]]]] = [
            (None, ((t.ready_key, t) for t in state.ready_tasks(worker_id))),
            *((w, ((t.ready_key, t) for t in state.ready_tasks(w))) for w in live),
            (None, iter(running)),
        ]
        heap: list[tuple[Any, int, Task, Iterator[tuple[Any, Task]], str | None]] = []
        for number, (owner, stream) in enumerate(streams):
            head = next(stream, None)
            if head is not None:
                heap.append((head[0], number, head[1], stream, owner))
        heapq.heapify(heap)
        previous = None
        while heap:
            key, number, task, stream, owner = heap[0]
            if owner is not None and greedy_workers.get(owner, 0) <= 0:
                heapq.heappop(heap)
                continue
            if key != previous:  # else listed by several workers, and already seen
                previous = key
                yield task
            head = next(stream, None)
            if head is None:
                heapq.heappop(heap)
            else:
                heapq.heapreplace(heap, (head[0], number, head[1], stream, owner))

    def _upstream_disabled(self) -> set[str]:
        """PENDING tasks that luigi reports as UPSTREAM_DISABLED: those reaching a DISABLED
        task through PENDING tasks only. Costs what it finds (nothing without disables)."""
        state = self._state
        found: set[str] = set()
        if not state.count(DISABLED):
            return found
        stack = [t.id for t in state.tasks_by_status(DISABLED)]
        while stack:
            for user_id in state.dependents(stack.pop()):
                if user_id not in found:
                    user = state.get_task(user_id)
                    if user is not None and user.status == PENDING:
                        found.add(user_id)
                        stack.append(user_id)
        return found

    def _reset_orphaned_batch_running_tasks(self, worker_id: str) -> None:
        live_batches = {
            t.batch_id for t in self._state.tasks_by_status(RUNNING) if t.worker_running == worker_id
        }
        orphans = [
            t
            for t in self._state.tasks_by_status(BATCH_RUNNING)
            if t.worker_running == worker_id and t.batch_id not in live_batches
        ]
        for task in orphans:
            self._state.set_status(task, PENDING)

    @rpc_method()
    def count_pending(self, worker: str) -> dict[str, Any]:
        worker_id = worker
        state = self._state
        worker_rec = state.get_worker(worker_id)
        running_tasks = []
        # a RUNNING task is never UPSTREAM_DISABLED, so none is left out here
        for task in list(state.tasks_by_status(RUNNING)):
            if worker_id not in task.workers:
                continue
            other = state.get_worker(task.worker_running) if task.worker_running else None
            if other is not None:
                info = {"task_id": task.id, "worker": str(other)}
                info.update(other.info)
                running_tasks.append(info)

        load = state.load_of(worker_id)
        n_pending = load.pending + load.failed
        n_unique = load.pending_unique + load.failed_unique
        n_last = load.pending_last + load.failed_last
        for task_id in self._upstream_disabled():
            blocked = state.get_task(task_id)
            if blocked is not None and worker_id in blocked.workers:
                n_pending -= 1
                n_unique -= len(blocked.workers) == 1
                n_last -= next(reversed(blocked.workers)) == worker_id
        return {
            "n_pending_tasks": n_pending,
            "n_unique_pending": n_unique,
            "n_pending_last_scheduled": n_last,
            "worker_state": worker_rec.state,
            "running_tasks": running_tasks,
        }

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
        worker_id = worker
        worker_rec = self._update_worker(worker_id, {"host": host}, get_work=True)
        if not worker_rec.enabled:
            return {
                "n_pending_tasks": 0,
                "running_tasks": [],
                "task_id": None,
                "n_unique_pending": 0,
                "worker_state": worker_rec.state,
            }
        if assistant:
            self.add_worker(worker_id, [("assistant", assistant)])

        best: Task | None = None
        batched_params: dict[str, list[Any]] | None = None
        unbatched_params: dict[str, Any] = {}
        batch: list[Task] = []
        max_batch_size: float = 1

        if current_tasks is not None:
            claimed = set(current_tasks)
            # a task we think this worker runs but it doesn't know about: hand it out again
            for task in sorted(self._state.tasks_by_status(RUNNING), key=self._rank):
                if task.worker_running == worker_id and task.id not in claimed:
                    best = task
            self._reset_orphaned_batch_running_tasks(worker_id)

        greedy_resources: defaultdict[str, int] = defaultdict(int)
        used_resources: defaultdict[str, int] = defaultdict(int)
        greedy_workers: dict[str, int] = {}
        trivial = self._is_trivial_worker(worker_rec)
        if not trivial:
            used_resources = self._used_resources()
            since = time.time() - self.config.worker_disconnect_delay
            greedy_workers = {
                w.id: w.info.get("workers", 1) for w in self._state.active_workers(last_get_work_gt=since)
            }
        scan = (
            self._candidates(worker_id, assistant, trivial, greedy_workers)
            if best is None and not self._paused
            else iter(())
        )
        for task in scan:
            if task.status == RUNNING and task.worker_running in greedy_workers:
                greedy_workers[task.worker_running] -= 1
                held = task.resources_running if task.resources_running is not None else task.resources
                for name, amount in (held or {}).items():
                    greedy_resources[name] += amount

            if not (self._schedulable(task) and self._has_resources(task.resources, greedy_resources)):
                continue
            eligible = (assistant and task.runnable) or worker_id in task.workers
            if eligible and self._has_resources(task.resources, used_resources):
                best = task
                names, max_batch_size = self._state.get_batcher(worker_id, task.family)
                if names and task.is_batchable():
                    try:
                        batched_params = {name: [task.params[name]] for name in names}
                    except KeyError:
                        batched_params = None
                    else:
                        unbatched_params = {k: v for k, v in task.params.items() if k not in batched_params}
                        batch.append(task)
                break
            else:
                # reserve what the workers able to run it would claim, so a busy low-priority
                # worker cannot starve them
                runners = itertools.chain(task.workers, [worker_id]) if assistant else task.workers
                for runner in runners:
                    if greedy_workers.get(runner, 0) > 0:
                        greedy_workers[runner] -= 1
                        for name, amount in (task.resources or {}).items():
                            greedy_resources[name] += amount
                        break

        if best is not None and batched_params and best.ready_key is not None:
            # luigi batches later ready tasks alike in all but the batched parameters
            source = self._state.ready_tasks(worker_id if trivial else None, after=best.ready_key)
            for task in source:
                if len(batch) >= max_batch_size:
                    break
                if (
                    task.family == best.family
                    and task.is_batchable()
                    and all(task.params.get(k) == v for k, v in unbatched_params.items())
                    and task.resources == best.resources
                ):
                    for name, values in batched_params.items():
                        values.append(task.params.get(name))
                    batch.append(task)

        reply = self.count_pending(worker_id)
        if len(batch) > 1 and best is not None and batched_params is not None:
            batch_id = hashlib.md5(
                "|".join(t.id for t in batch).encode("utf-8"), usedforsecurity=False
            ).hexdigest()
            for task in batch:
                self._state.set_batch_running(task, batch_id, worker_id)
            params = dict(best.params)
            params.update(batched_params)
            reply.update(
                task_id=None,
                task_family=best.family,
                task_module=best.module,
                task_params=params,
                batch_id=batch_id,
                batch_task_ids=[t.id for t in batch],
            )
        elif best is not None:
            self.update_metrics_task_started(best)
            # who runs it is set first, so the status journal records it with the change
            best.worker_running = worker_id
            best.resources_running = dict(best.resources)
            best.time_running = time.time()
            best.encoded = None
            self._state.set_status(best, RUNNING)
            self._update_task_history(best, RUNNING, host=host)
            reply.update(
                task_id=best.id, task_family=best.family, task_module=best.module, task_params=best.params
            )
        else:
            reply["task_id"] = None
        return reply

    # ------------------------------------------------------ upstream status

    def _upstream_status(self, task_id: str, memo: dict[str, str]) -> str:
        """The most severe trouble among a task's not-yet-done ancestors (memoised)."""
        if task_id in memo:
            return memo[task_id]
        if not self._state.has_task(task_id):
            return ""
        stack = [task_id]
        while stack:
            current = stack.pop()
            task = self._state.get_task(current)
            if task is None or task.status == DONE:
                continue
            if current not in memo:
                if task.status == PENDING and task.deps:
                    memo[current] = ""  # settled once its deps are (post-order)
                    stack.append(current)
                    stack.extend(task.deps)
                else:
                    memo[current] = STATUS_TO_UPSTREAM.get(task.status, "")
            elif memo[current] == "" and task.deps:
                memo[current] = max((memo.get(d, "") for d in task.deps), key=_upstream_key)
        return memo.get(task_id, "")

    # ------------------------------------------------------------- reading

    def _serialize_task(
        self, task: Task, include_deps: bool = True, deps: Iterable[str] | None = None, display: bool = True
    ) -> dict[str, Any]:
        # one dict literal: this runs once per task in task_list and graph replies
        out: dict[str, Any] = {
            "status": task.status,
            "workers": list(task.workers),
            "worker_running": task.worker_running,
            "time_running": task.time_running,
            "start_time": task.time,
            "last_updated": task.updated,
            "params": task.public_params,
            "name": task.family,
            "priority": task.priority,
            "resources": task.resources,
            "resources_running": task.resources_running,
            "tracking_url": task.tracking_url,
            "status_message": task.status_message,
            "progress_percentage": task.progress_percentage,
        }
        if display:
            out["display_name"] = task.pretty_id
        if task.status == DISABLED:
            out["re_enable_able"] = task.scheduler_disable_time is not None
        if include_deps:
            out["deps"] = list(task.deps if deps is None else deps)
        if self.config.send_messages and task.status == RUNNING:
            out["accepts_messages"] = task.accepts_messages
        return out

    def _placeholder(self, task_id: str) -> dict[str, Any]:
        """What is shown for a dependency the scheduler has no record of."""
        match = _FAMILY_FROM_ID.match(task_id)
        return {
            "deps": [],
            "status": UNKNOWN,
            "workers": [],
            "start_time": UNKNOWN,
            "params": {"task_id": task_id},
            "name": match.group(1) if match else UNKNOWN,
            "display_name": task_id,
            "priority": 0,
        }

    def _encode(self, task: Task) -> Encoded:
        """The task's entry as JSON parts (see ``Encoded``), cut from ``_serialize_task``'s
        dict so both always agree, and kept on the task."""
        node = self._serialize_task(task, include_deps=False)
        display = _split_off(node, "display_name")
        re_enable = _split_off(node, "re_enable_able")
        messages = _split_off(node, "accepts_messages")
        # '{"<id>":{...}}' without the outer brace and the entry's closing one
        encoded: Encoded = (dumps({task.id: node})[1:-2], display, re_enable, messages, None, None)
        task.encoded = encoded
        return encoded

    @staticmethod
    def _encode_deps(task: Task, encoded: Encoded) -> Encoded:
        edges = tuple(sorted(task.deps))
        encoded = (*encoded[:4], edges, b"," + members({"deps": edges}))
        task.encoded = encoded
        return encoded

    def _walk_graph(
        self, roots: Iterable[str], inverse: bool = False, include_done: bool = True
    ) -> Iterator[tuple[bytes, ...]]:
        """Breadth-first from each root in turn, skipping nodes an earlier walk reached, so
        the nearest nodes survive the max_graph_nodes cut (which, as in luigi, counts the
        nodes of one walk). Only a walk's root carries a display name. Yields each node as
        the parts of a JSON object member, a comma first; a caller may pause between them."""
        state = self._state
        get_task = state.get_task
        limit = max(1, self.config.max_graph_nodes)  # as in luigi, a walk always shows its root
        own_deps = include_done and not inverse  # the edges are the task's deps, kept encoded with it
        seen: set[str] = set()
        for root_id in roots:
            if root_id in seen:
                continue
            seen.add(root_id)
            queue = [root_id]  # the walk's nodes in visiting order: it grows as it is read
            for visited, task_id in enumerate(queue):
                if visited >= limit:
                    break
                task = get_task(task_id)
                if task is None or not task.family:
                    node = self._placeholder(task_id)
                    if task_id != root_id:
                        del node["display_name"]
                    yield b",", members({task_id: node})
                    continue
                encoded = task.encoded or self._encode(task)
                if own_deps and encoded[4] is None:
                    encoded = self._encode_deps(task, encoded)
                head, display, re_enable, messages, edges, deps = encoded
                if not own_deps:
                    found: Iterable[str] = state.dependents(task_id) if inverse else task.deps
                    if not include_done:
                        found = [d for d in found if (t := state.get_task(d)) is None or t.status != DONE]
                    edges = tuple(sorted(found))
                    deps = b"," + members({"deps": edges})
                assert edges is not None and deps is not None
                for dep_id in edges:
                    if dep_id not in seen:
                        seen.add(dep_id)
                        queue.append(dep_id)
                shown = display if task_id == root_id else b""
                yield b",", head, shown, re_enable, deps, messages, b"}"

    @staticmethod
    def _in_pieces(entries: Iterable[tuple[bytes, ...]]) -> Iterator[bytes]:
        """Encoded members (each in parts, a comma first) joined FRAGMENT_SIZE at a time."""
        source = iter(entries)
        while True:
            parts = list(itertools.chain.from_iterable(itertools.islice(source, FRAGMENT_SIZE)))
            if not parts:
                return
            parts[0] = b""  # no comma before a piece's first member
            yield b"".join(parts)

    @rpc_method(role="viewer", mutating=False, streamed=True)
    def graph(self, **kwargs: Any) -> dict[str, Any]:
        return collect(self.graph_fragments(**kwargs))

    def graph_fragments(self, **kwargs: Any) -> Fragments:
        self.prune()
        roots = [task.id for task in self._state.tasks()]  # a copy: others may run between pieces
        return Fragments(self._in_pieces(self._walk_graph(roots)))

    @rpc_method(role="viewer", mutating=False, streamed=True)
    def dep_graph(self, task_id: str, include_done: bool = True, **kwargs: Any) -> dict[str, Any]:
        return collect(self.dep_graph_fragments(task_id, include_done, **kwargs))

    def dep_graph_fragments(
        self, task_id: str, include_done: bool = True, **kwargs: Any
    ) -> dict[str, Any] | Fragments:
        return self._graph_of(task_id, include_done, inverse=False)

    def _graph_of(self, task_id: str, include_done: bool, inverse: bool) -> dict[str, Any] | Fragments:
        self.prune()
        if not self._state.has_task(task_id):
            return {}
        walk = self._walk_graph([task_id], inverse=inverse, include_done=include_done)
        return Fragments(self._in_pieces(walk))

    @rpc_method(role="viewer", mutating=False, streamed=True)
    def inverse_dep_graph(self, task_id: str, include_done: bool = True, **kwargs: Any) -> dict[str, Any]:
        return collect(self.inverse_dep_graph_fragments(task_id, include_done, **kwargs))

    def inverse_dep_graph_fragments(
        self, task_id: str, include_done: bool = True, **kwargs: Any
    ) -> dict[str, Any] | Fragments:
        return self._graph_of(task_id, include_done, inverse=True)

    @rpc_method(role="viewer", mutating=False, streamed=True)
    def task_list(
        self,
        status: str = "",
        upstream_status: str = "",
        limit: bool = True,
        search: str | None = None,
        max_shown_tasks: int | None = None,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """Tasks with a status (all when empty), or just their count when there are too many."""
        return collect(
            self.task_list_fragments(status, upstream_status, limit, search, max_shown_tasks, **kwargs)
        )

    def task_list_fragments(
        self,
        status: str = "",
        upstream_status: str = "",
        limit: bool = True,
        search: str | None = None,
        max_shown_tasks: int | None = None,
        **kwargs: Any,
    ) -> dict[str, Any] | Fragments:
        cap = max_shown_tasks or self.config.max_shown_tasks
        if not search:
            count = self._state.count(status)
            if limit and count > cap:
                return {"num_tasks": -1 if upstream_status else count}
        self.prune()
        # a copy: other requests may run between the pieces
        tasks = list(self._state.tasks_by_status(status) if status else self._state.tasks())
        return Fragments(self._task_list_pieces(tasks, upstream_status, limit, search, cap))

    def _task_list_pieces(
        self, tasks: list[Task], upstream_status: str, limit: bool, search: str | None, cap: int
    ) -> Iterator[Piece]:
        terms = [term.casefold() for term in search.split()] if search else []
        if not terms and not upstream_status:
            matched = tasks  # nothing to filter out
        else:
            memo: dict[str, str] = {}
            matched = []
            for seen, task in enumerate(tasks, 1):
                if seen % FILTER_PAUSE == 0:
                    yield None
                if terms:
                    shown = task.pretty_id.casefold()
                    if not all(term in shown for term in terms):
                        continue
                if (
                    task.status == PENDING
                    and upstream_status
                    and upstream_status != self._upstream_status(task.id, memo)
                ):
                    continue
                matched.append(task)
        if limit and len(matched) > cap:
            yield {"num_tasks": len(matched)}  # counted, never serialised
            return
        encode = self._encode
        yield from self._in_pieces(
            (b",", head, display, re_enable, messages, b"}")
            for head, display, re_enable, messages, _, _ in (task.encoded or encode(task) for task in matched)
        )

    @rpc_method(role="viewer", mutating=False)
    def task_search(self, task_str: str, **kwargs: Any) -> dict[str, Any]:
        self.prune()
        found: defaultdict[str, dict[str, Any]] = defaultdict(dict)
        with gcpause.paused():
            for task in self._state.tasks():
                if task_str in task.id:
                    found[task.status][task.id] = self._serialize_task(task, include_deps=False)
        return found

    def _first_task_display_name(self, worker: Worker) -> str:
        task_id = worker.info.get("first_task", "")
        task = self._state.get_task(task_id) if isinstance(task_id, str) else None
        return task.pretty_id if task is not None else task_id

    @rpc_method(role="viewer", mutating=False)
    def worker_list(self, include_running: bool = True, **kwargs: Any) -> list[dict[str, Any]]:
        self.prune()
        listing = []
        for worker in self._state.workers():
            entry = dict(worker.info)
            entry.update(
                name=worker.id,
                last_active=worker.last_active,
                started=worker.started,
                state=worker.state,
                first_task_display_name=self._first_task_display_name(worker),
                num_unread_rpc_messages=len(worker.rpc_messages),
            )
            listing.append(entry)
        listing.sort(key=lambda entry: entry["started"], reverse=True)
        if include_running:
            running: defaultdict[str, dict[str, Any]] = defaultdict(dict)
            for task in self._state.tasks_by_status(RUNNING):
                if task.worker_running:
                    running[task.worker_running][task.id] = self._serialize_task(task, include_deps=False)
            for entry in listing:
                tasks = running[entry["name"]]
                load = self._state.load_of(entry["name"])
                entry["num_running"] = len(tasks)
                entry["num_pending"] = load.pending
                entry["num_uniques"] = load.pending_unique
                entry["running"] = tasks
        return listing

    @rpc_method(role="viewer", mutating=False)
    def fetch_error(self, task_id: str, **kwargs: Any) -> dict[str, Any]:
        task = self._state.get_task(task_id)
        if task is None:
            return {"taskId": task_id, "error": ""}
        return {
            "taskId": task_id,
            "error": task.expl,
            "displayName": task.pretty_id,
            "taskParams": task.params,
            "taskModule": task.module,
            "taskFamily": task.family,
        }

    # ------------------------------------------------- status and progress

    def _set_on_task_and_batch(self, task_id: str, attribute: str, value: Any) -> None:
        task = self._state.get_task(task_id)
        if task is None:
            return
        setattr(task, attribute, value)
        task.encoded = None
        if task.status == RUNNING and task.batch_id is not None:
            for member in self._state.batch_running_tasks(task.batch_id):
                setattr(member, attribute, value)
                member.encoded = None

    @rpc_method()
    def set_task_status_message(self, task_id: str, status_message: Any) -> None:
        self._set_on_task_and_batch(task_id, "status_message", status_message)

    @rpc_method(role="viewer", mutating=False)
    def get_task_status_message(self, task_id: str) -> dict[str, Any]:
        task = self._state.get_task(task_id)
        return {"taskId": task_id, "statusMessage": task.status_message if task is not None else ""}

    @rpc_method()
    def set_task_progress_percentage(self, task_id: str, progress_percentage: Any) -> None:
        self._set_on_task_and_batch(task_id, "progress_percentage", progress_percentage)

    @rpc_method(role="viewer", mutating=False)
    def get_task_progress_percentage(self, task_id: str) -> dict[str, Any]:
        task = self._state.get_task(task_id)
        return {
            "taskId": task_id,
            "progressPercentage": task.progress_percentage if task is not None else None,
        }

    # ------------------------------------------------------------- metrics

    @rpc_method()
    def update_metrics_task_started(self, task: Any) -> None:
        self.metrics_collector.handle_task_started(task)

    @rpc_method()
    def report_task_statistics(self, task_id: str, statistics: Any) -> None:
        task = self._state.get_task(task_id)
        if task is not None:
            self.metrics_collector.handle_task_statistics(task, statistics)
