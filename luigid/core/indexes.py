"""What the scheduler indexes over its task records, so that a call costs what it returns
rather than a scan of every task (N = all tasks):

* ``rdeps``: dependency id -> ids of the tasks that list it (inverse graphs, readiness):
  the one id itself when there is one (most tasks have a single dependent, and a set of
  one is ten times the size of a reference to the id), a set from two on;
* ``Task.unmet``: how many deps are not DONE; a PENDING task with none is *ready*;
* ``ready`` and ``WorkerLoad.ready``: the ready tasks sorted by luigi's rank (priority,
  then age), globally and per worker able to run them: get_work reads the head;
* ``WorkerLoad`` counters: each worker's PENDING and FAILED tasks, unique and last-added
  counts, and PENDING tasks needing resources: count_pending and worker_list in O(1);
* ``stakes``: worker id -> ids of the tasks it is a stakeholder of (pruning a worker).

The indexes follow the records; ``luigid.core.state.State`` calls ``detach`` before and
``attach`` after every write to a field they depend on, so they cannot drift.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator
from operator import attrgetter

from sortedcontainers import SortedKeyList

from luigid.core.model import DONE, FAILED, PENDING, Task

RankKey = tuple[float, float, int, int]


def rank_key(task: Task, running: bool = False) -> RankKey:
    """Ascending order of this key is luigi's hand-out order: higher priority first, then
    older first, then PENDING before RUNNING, then the order they entered that status."""
    return (-task.priority, task.time, 1 if running else 0, task.seq)


def new_ready_list() -> SortedKeyList:
    # attrgetter, not a lambda: the list keeps its key, and a scheduler has to pickle
    return SortedKeyList(key=attrgetter("ready_key"))


def add_to_sets(index: dict[str, set[str]], keys: Iterable[str], member: str) -> None:
    """Add ``member`` to the set ``index[key]`` of every key (bulk loading: no throwaway sets)."""
    for key in keys:
        members = index.get(key)
        if members is None:
            index[key] = {member}
        else:
            members.add(member)


def add_dependent(rdeps: dict[str, str | set[str]], dep: str, task_id: str) -> None:
    """Record in ``rdeps`` that ``task_id`` lists ``dep`` (the id alone, or a set from two on)."""
    users = rdeps.get(dep)
    if users is None:
        rdeps[dep] = task_id
    elif isinstance(users, str):
        if users != task_id:
            rdeps[dep] = {users, task_id}
    else:
        users.add(task_id)


class WorkerLoad:
    """Per-worker counters over the tasks it may run (those listing it in ``workers``)."""

    __slots__ = (
        "failed",
        "failed_last",
        "failed_unique",
        "pending",
        "pending_last",
        "pending_res",
        "pending_unique",
        "ready",
    )

    def __init__(self) -> None:
        self.pending = self.pending_unique = self.pending_last = self.pending_res = 0
        self.failed = self.failed_unique = self.failed_last = 0
        self.ready = new_ready_list()


class Indexes:
    """Readiness, reverse dependencies, stakes and worker loads over ``tasks`` (the
    records' own dict: tasks added to or removed from it are attached or detached here)."""

    def __init__(self, tasks: dict[str, Task]) -> None:
        self.tasks = tasks
        self.rdeps: dict[str, str | set[str]] = {}
        self.stakes: dict[str, set[str]] = {}
        self.loads: dict[str, WorkerLoad] = {}
        self.ready = new_ready_list()

    # ------------------------------------------------------------ dependencies

    def dependents(self, task_id: str) -> Collection[str]:
        """Ids of the tasks that list ``task_id`` among their deps (not to be changed)."""
        users = self.rdeps.get(task_id, ())
        return (users,) if type(users) is str else users

    def index_deps(self, task: Task, removed: Iterable[str], added: Iterable[str]) -> None:
        rdeps = self.rdeps
        task_id = task.id
        for dep in removed:
            users = rdeps.get(dep)
            if users is None:
                continue
            if isinstance(users, str):
                if users == task_id:
                    del rdeps[dep]
                continue
            users.discard(task_id)
            if len(users) == 1:
                rdeps[dep] = next(iter(users))
        for dep in added:
            add_dependent(rdeps, dep, task_id)

    # --------------------------------------------------------------- readiness

    def count_unmet(self, deps: Iterable[str]) -> int:
        tasks = self.tasks
        unmet = 0
        for dep_id in deps:
            dep = tasks.get(dep_id)
            if dep is None or dep.status != DONE:
                unmet += 1
        return unmet

    def set_unmet(self, task: Task, unmet: int) -> None:
        was_ready = task.ready_key is not None
        task.unmet = unmet
        now_ready = task.status == PENDING and unmet == 0
        if was_ready and not now_ready:
            self.ready_remove(task)
        elif now_ready and not was_ready:
            self.ready_add(task)

    def dep_changed(self, dep_id: str, delta: int) -> None:
        """``dep_id`` stopped (+1) or started (-1) being DONE: tell the tasks waiting on it."""
        tasks = self.tasks
        for user_id in self.dependents(dep_id):
            user = tasks.get(user_id)
            if user is not None:
                self.set_unmet(user, user.unmet + delta)

    def ready_add(self, task: Task) -> None:
        task.ready_key = rank_key(task)
        self.ready.add(task)
        for worker_id in task.workers:
            self.load(worker_id).ready.add(task)

    def ready_remove(self, task: Task) -> None:
        self.ready.remove(task)
        for worker_id in task.workers:
            self.load(worker_id).ready.remove(task)
        task.ready_key = None

    def ready_tasks(self, worker_id: str | None = None, after: RankKey | None = None) -> Iterator[Task]:
        """Ready tasks in hand-out order (of one worker's, or all), strictly after ``after``."""
        ready = self.ready if worker_id is None else self.load(worker_id).ready
        if after is None:
            return iter(ready)
        return ready.irange_key(min_key=after, inclusive=(False, False))

    # ------------------------------------------------------------ worker loads

    def load(self, worker_id: str) -> WorkerLoad:
        load = self.loads.get(worker_id)
        if load is None:
            load = self.loads[worker_id] = WorkerLoad()
        return load

    def attach(self, task: Task) -> None:
        """Count the task in its runners' loads, and list it if it is ready."""
        self.account(task, +1)
        if task.status == PENDING and task.unmet == 0:
            self.ready_add(task)

    def detach(self, task: Task) -> None:
        """Undo ``attach``: before a write to its status, runners or resources."""
        self.account(task, -1)
        if task.ready_key is not None:
            self.ready_remove(task)

    def account(self, task: Task, sign: int) -> None:
        status = task.status
        if status != PENDING and status != FAILED:
            return
        runners = task.workers
        if not runners:
            return
        unique = sign if len(runners) == 1 else 0
        last = next(reversed(runners))
        needs = sign if task.resources else 0
        loads = self.loads
        for worker_id in runners:
            load = loads.get(worker_id) or self.load(worker_id)
            if status == PENDING:
                load.pending += sign
                load.pending_unique += unique
                load.pending_res += needs
                if worker_id == last:
                    load.pending_last += sign
            else:
                load.failed += sign
                load.failed_unique += unique
                if worker_id == last:
                    load.failed_last += sign

    def rebuild(self, ready: list[Task], ready_of: dict[str, list[Task]]) -> None:
        """Fill the ready lists in bulk (restoring): sorted once instead of task by task."""
        self.ready = new_ready_list()
        self.ready.update(ready)
        for worker_id, runnable in ready_of.items():
            self.load(worker_id).ready.update(runnable)
