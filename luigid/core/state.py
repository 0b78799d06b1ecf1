"""The scheduler's in-memory state: the task and worker records, the status index, and
every write to a field something is indexed by.

``_by_status`` (status -> {id: Task} in order of entering the status, luigi's tie-break)
makes "the RUNNING tasks" cost what it returns; ``entries`` (``luigid.core.entries``) holds
the same tasks as lists a scan can walk across steps. The other indexes (``luigid.core.indexes``),
the prune queue (``luigid.core.timers``) and the departures (``luigid.core.departures``)
follow the records: each write below detaches the task from them, writes (through
``Task.set``) and attaches it again, so they cannot drift. luigi's status rules are
``luigid.core.rules``; the bulk rebuild after loading is ``luigid.core.restore``.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Collection, Iterable, Iterator
from typing import Any

from luigid.config import SchedulerConfig
from luigid.core import restore
from luigid.core.departures import Departures
from luigid.core.entries import ALL, Entries
from luigid.core.indexes import Indexes, WorkerLoad
from luigid.core.interning import SharedValues
from luigid.core.model import BATCH_RUNNING, DONE, PENDING, RUNNING, STATUSES, Task, Worker
from luigid.core.pauses import Item
from luigid.core.ports import NoEvents, StatusEvents
from luigid.core.replycache import ReplyCache
from luigid.core.rules import StatusRules
from luigid.core.timers import PruneQueue
from luigid.core.uicounts import UiCounts, passed

Batcher = tuple[Any, float]


class State:
    def __init__(self, config: SchedulerConfig, events: StatusEvents | None = None) -> None:
        self._config = config
        self.events: StatusEvents = events or NoEvents()
        self._seq = itertools.count(1)
        #: the pause flag and the resource totals set over RPC: saved with the tasks, so a
        #: restart keeps them (configured totals apply to every other resource)
        self.paused = False
        self.resource_overrides: dict[str, Any] = {}
        self._start({}, {}, {})

    def _start(
        self, tasks: dict[str, Task], workers: dict[str, Worker], batchers: dict[str, dict[str, Batcher]]
    ) -> None:
        """Take these records, with empty indexes and queues (``restore`` fills them)."""
        self._tasks = tasks
        self._by_status: dict[str, dict[str, Task]] = {s: {} for s in STATUSES}
        self.entries = Entries(tasks)
        self._workers = workers
        self._batchers = batchers
        #: one object for the stakeholder sets, runner tuples and UI counter keys tasks repeat
        self.shared = SharedValues()
        self.indexes = Indexes(tasks)
        self.queue = PruneQueue(self._config)
        self.departures = Departures(self.indexes, self.queue, self.drop_runner, self.drop_stakeholder)
        self.rules = StatusRules(self, self.queue, self._config, self.events)
        self.ui = UiCounts(tasks, self.indexes.dependents, self.shared)
        #: which tasks may keep their reply JSON and display name (at most so many)
        self.reply_cache = ReplyCache(self._config.reply_cache_tasks, tasks)
        # Bound straight to the part that answers, as get_work and add_task call them on every
        # task they touch: ids of the tasks listing a task as a dep; the ready tasks in hand-out
        # order (of one worker's, or all, strictly after a rank key); a worker's load; and
        # moving a task to a status under luigi's rules.
        self.dependents: Callable[[str], Collection[str]] = self.indexes.dependents
        self.ready_tasks: Callable[..., Iterator[Task]] = self.indexes.ready_tasks
        self.load_of: Callable[[str], WorkerLoad] = self.indexes.load
        self.set_status: Callable[[Task, str], None] = self.rules.set_status

    def __getstate__(self) -> dict[str, Any]:
        # without the task counter (itertools.count stops pickling in Python 3.14): the
        # copy goes on after the highest number its tasks hold, which keeps their order;
        # nor the entry lists, made again from the status index
        state = self.__dict__.copy()
        del state["_seq"], state["entries"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._seq = itertools.count(max((task.seq for task in self._tasks.values()), default=0) + 1)
        self.entries = Entries(self._tasks)
        self.entries.rebuild(self._by_status)

    @property
    def config(self) -> SchedulerConfig:
        return self._config

    @config.setter
    def config(self, config: SchedulerConfig) -> None:
        self._config = self.queue.config = self.rules.config = config
        self.reply_cache.set_capacity(config.reply_cache_tasks)

    # ------------------------------------------------------------------ tasks

    def get_task(self, task_id: str) -> Task | None:
        return self._tasks.get(task_id)

    def has_task(self, task_id: str) -> bool:
        return task_id in self._tasks

    def get_or_add_task(self, task_id: str, make: Callable[[], Task]) -> Task:
        task = self._tasks.get(task_id)
        if task is None:
            task = make()
            task.seq = next(self._seq)
            self._tasks[task_id] = task
            self._by_status[task.status][task_id] = task
            self.entries.added(task)
            self.entries.entered(task)
            indexes = self.indexes
            indexes.index_deps(task, (), task.deps)
            task.unmet = indexes.count_unmet(task.deps)
            indexes.attach(task)
            self.ui.moved(task, "", "")
        return task

    def tasks(self) -> Iterable[Task]:
        return self._tasks.values()

    def tasks_by_status(self, *statuses: str) -> Iterator[Task]:
        for status in statuses:
            # statuses come from requests too (task_list?status=...): unknown ones hold nothing
            yield from self._by_status.get(status, {}).values()

    def tasks_in(self, status: str) -> Collection[Task]:
        """The tasks in one of the statuses, as a live view in the order they entered it
        (``tasks_by_status`` without a generator: get_work filters the RUNNING ones on every
        call, and a fleet keeps thousands of them running)."""
        return self._by_status[status].values()

    def count(self, status: str = "") -> int:
        return len(self._by_status.get(status, {})) if status else len(self._tasks)

    def counts_by_status(self) -> dict[str, int]:
        return {status: len(tasks) for status, tasks in self._by_status.items()}

    def newest_first(self, status: str) -> Iterator[Item]:
        """The tasks of a status by (updated, id), newest first (the UI's default order),
        with a ``Pause`` where the walk may hand the loop back (``luigid.core.pauses``); it
        may be read across steps."""
        if status not in self._by_status:
            return iter(())
        return self.ui.newest_first(status, self.entries.newest_first(status, self.ui.live_from))

    def walk(self, statuses: Iterable[str] = STATUSES, step: int = 2000) -> Iterator[list[Task]]:
        """The tasks of the statuses in lists of at most ``step``, which may be read across
        steps without a copy of them all (``Entries.walk``)."""
        return self.entries.walk(statuses, step)

    def walk_all(self, step: int = 2000) -> Iterator[list[Task]]:
        """Every task in the order of ``tasks()``, in lists of at most ``step``, which may be
        read across steps as ``walk``'s (tasks added meanwhile are not shown, removed ones no
        longer)."""
        return self.entries.walk((ALL,), step)

    def family_learnt(self, task: Task) -> None:
        """A placeholder task was told its family (luigid.core.intake)."""
        self.ui.recount(task)

    def batch_running_tasks(self, batch_id: str) -> list[Task]:
        return [t for t in self._by_status[BATCH_RUNNING].values() if t.batch_id == batch_id]

    # ------------------------------------------------- writes to indexed fields

    def move(self, task: Task, new_status: str, updated: float) -> None:
        """Change the status (and the time of the change) and every index over the status;
        luigi's rules decide when (``luigid.core.rules``)."""
        old_status = task.status
        old_passed = passed(task)
        indexes = self.indexes
        indexes.detach(task)
        del self._by_status[old_status][task.id]
        task.set(status=new_status, updated=updated)
        task.seq = next(self._seq)
        self._by_status[new_status][task.id] = task
        self.entries.left(old_status)
        self.entries.entered(task)
        indexes.attach(task)
        if old_status == DONE:
            indexes.dep_changed(task.id, +1)
        elif new_status == DONE:
            indexes.dep_changed(task.id, -1)
        if old_status == RUNNING and not task.stakeholders:
            self.queue.unmarked.add(task.id)
        self.ui.moved(task, old_status, old_passed)

    def set_deps(self, task: Task, deps: Iterable[str]) -> None:
        old = set(task.deps)
        listed = dict.fromkeys(deps)  # the ids once each, in the order given
        if old == listed.keys():
            return
        new = listed.keys()
        task.set(deps=tuple(listed))
        self.indexes.index_deps(task, old - new, new - old)
        self.indexes.set_unmet(task, self.indexes.count_unmet(task.deps))
        self.ui.deps_changed(task)

    def add_deps(self, task: Task, deps: Iterable[str]) -> None:
        old = set(task.deps)
        added = [dep for dep in dict.fromkeys(deps) if dep not in old]
        if not added:
            return
        task.set(deps=(*task.deps, *added))
        self.indexes.index_deps(task, (), added)
        self.indexes.set_unmet(task, task.unmet + self.indexes.count_unmet(added))
        self.ui.deps_changed(task)

    def set_priority(self, task: Task, priority: float) -> None:
        if priority == task.priority:
            return
        ready = task.ready_key is not None
        if ready:
            self.indexes.ready_remove(task)
        task.set(priority=priority)
        if ready:
            self.indexes.ready_add(task)

    def set_resources(self, task: Task, resources: dict[str, int]) -> None:
        if resources is task.resources:
            return  # the very same object (the shared empty map, usually): nothing changes
        if task.status == PENDING and bool(task.resources) != bool(resources):
            self.indexes.detach(task)
            task.set(resources=resources)
            self.indexes.attach(task)
        else:
            task.set(resources=resources)

    def add_stakeholder(self, task: Task, worker_id: str) -> None:
        stakeholders = task.stakeholders
        if worker_id not in stakeholders:
            task.stakeholders = self.shared.ids(stakeholders | {worker_id})
        self.indexes.stakes.setdefault(worker_id, set()).add(task.id)  # inline: add_task's hottest write

    def drop_stakeholder(self, task: Task, worker_id: str) -> None:
        if worker_id in task.stakeholders:
            task.stakeholders = self.shared.ids(task.stakeholders - {worker_id})

    def add_runner(self, task: Task, worker: Worker) -> None:
        worker.tasks.add(task)
        if worker.id in task.workers:
            return  # luigi's ordered set keeps the first position
        self.indexes.detach(task)
        task.set(workers=self.shared.get((*task.workers, worker.id)))
        self.indexes.attach(task)

    def drop_runner(self, task: Task, worker_id: str) -> None:
        if worker_id in task.workers:
            self.indexes.detach(task)
            task.set(workers=self.shared.get(tuple(r for r in task.workers if r != worker_id)))
            self.indexes.attach(task)

    def watch_unstaked(self, task: Task) -> None:
        """A task nobody holds a stake in: prune will mark it for removal."""
        if not task.stakeholders and task.remove is None:
            self.queue.unmarked.add(task.id)

    def unmark_removal(self, task: Task) -> None:
        """A task someone asked for again is no longer due for removal."""
        task.remove = None
        if not task.stakeholders:
            self.queue.unmarked.add(task.id)

    def remove_tasks(self, task_ids: Iterable[str]) -> None:
        indexes = self.indexes
        for task_id in task_ids:
            task = self._tasks.pop(task_id)
            indexes.detach(task)
            del self._by_status[task.status][task_id]
            self.entries.left(task.status)
            self.entries.left(ALL)
            indexes.index_deps(task, task.deps, ())
            if task.status == DONE:
                indexes.dep_changed(task_id, +1)
            for worker_id in task.stakeholders:
                stakes = indexes.stakes.get(worker_id)
                if stakes is not None:
                    stakes.discard(task_id)
            for worker_id in task.workers:
                worker = self._workers.get(worker_id)
                if worker is not None:
                    worker.tasks.discard(task)
            self.queue.unmarked.discard(task_id)
            self.ui.forget(task)
            task.encoded = task.display = None  # freed now; a cache slot may point here until reused

    # ----------------------------------------------------------- status rules

    def re_enable(self, task: Task, to_failed: bool = False) -> None:
        self.rules.re_enable(task, to_failed)

    def set_batch_running(self, task: Task, batch_id: str, worker_id: str) -> None:
        self.rules.set_batch_running(task, batch_id, worker_id)

    # ------------------------------------------------------------- prune work

    def has_prune_work(self, now: float) -> bool:
        """Some task may have lost its last stakeholder, or some timer is due."""
        return self.queue.has_work(now)

    def take_prune_work(self, now: float, limit: int) -> tuple[list[Task], int]:
        """Tasks prune must look at now, and how many queue entries that took (``PruneQueue.take``)."""
        return self.queue.take(self._tasks, now, limit)

    def timers_to_come(self, task: Task, now: float) -> bool:
        """None of the task's retry, re-enable and removal times has come by ``now``."""
        return all(when > now for when in self.queue.dues(task))

    def reschedule(self, task: Task) -> None:
        """Prune looked at the task and left it: keep its remaining timers queued."""
        self.queue.schedule(task)

    def update_status(self, task: Task) -> None:
        """Time-driven transitions: mark for removal, lift expired disables, retry failures."""
        self.rules.update_status(task)

    def may_prune(self, task: Task) -> bool:
        return self.rules.may_prune(task)

    # ---------------------------------------------------------------- workers

    def get_worker(self, worker_id: str) -> Worker:
        """The worker with this id, created on first sight (as luigi does)."""
        worker = self._workers.get(worker_id)
        if worker is None:
            self.departures.settle_worker(worker_id)
            worker = self._workers[worker_id] = Worker(worker_id)
        return worker

    def has_worker(self, worker_id: str) -> bool:
        return worker_id in self._workers

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
        """Forget workers that stopped talking: they are gone from the worker list at once,
        and stop being stakeholders and runners of their tasks as ``settle_departures``
        gets through them."""
        for worker_id in worker_ids:
            worker = self._workers.pop(worker_id)
            self.departures.add(worker_id, worker.tasks, self.indexes.stakes.pop(worker_id, set()))

    def settle_departures(self, limit: int) -> bool:
        """Take removed workers off up to ``limit`` of their tasks; True while some remain."""
        return self.departures.settle(limit)

    def disable_workers(self, worker_ids: Iterable[str]) -> None:
        """Disabled workers stay known (and stakeholders) but may run nothing."""
        for worker_id in worker_ids:
            worker = self.get_worker(worker_id)
            worker.disabled = True
            for task in list(worker.tasks):
                self.drop_runner(task, worker_id)
            worker.tasks.clear()

    # --------------------------------------------------------------- batchers

    def set_batcher(self, worker_id: str, family: str, batched_args: Any, max_batch_size: float) -> None:
        self._batchers.setdefault(worker_id, {})[family] = (batched_args, max_batch_size)

    def get_batcher(self, worker_id: str, family: str) -> Batcher:
        return self._batchers.get(worker_id, {}).get(family, (None, 1))

    # ------------------------------------------------------------ persistence

    def snapshot(self) -> tuple[dict[str, Task], dict[str, Worker], dict[str, dict[str, Batcher]]]:
        """The state as luigi lays it out: (tasks, workers, batchers). Departures are
        finished first, so no task names a worker the worker list has dropped."""
        self.departures.finish()
        return self._tasks, self._workers, self._batchers

    def restore(
        self,
        tasks: dict[str, Task],
        workers: dict[str, Worker],
        batchers: dict[str, dict[str, Batcher]],
    ) -> None:
        """Replace everything and rebuild every index from the records."""
        self._start(dict(tasks), dict(workers), dict(batchers))
        restore.rebuild(
            self._tasks, self._workers, self._by_status, self._seq, self.indexes, self.queue, self.shared
        )
        # new tasks come after every restored one, whichever numbering they kept
        self._seq = itertools.count(max((task.seq for task in self._tasks.values()), default=0) + 1)
        self.ui.rebuild(self._by_status)
        self.entries.rebuild(self._by_status)
