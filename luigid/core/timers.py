"""What prune has to look at, so that a prune round costs O(expired), not O(all tasks):
the retry, re-enable and removal times of tasks (a heap), and tasks that may have lost
their last stakeholder.

A replay of the change log must run a prune round spread over several slices exactly as
the live daemon did, taking the same tasks in each slice. So both hand out their entries in
an order fixed by the entries themselves (due time, then task id; ids smallest first),
never by when or in which order they were queued, and a snapshot carries the queue as it
is (``saved``/``restore_saved``) rather than having it rebuilt from the tasks: stale timers
(tasks re-added or removed since) count toward a slice's budget, and a rebuilt queue has
none.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator
from typing import Any

from luigid.config import SchedulerConfig
from luigid.core.model import DISABLED, FAILED, RUNNING, Task
from luigid.core.shards import ShardedSet


def unstaked(task: Task) -> bool:
    """Prune would mark this task for removal: nobody holds a stake in it, it is not
    marked yet, and it is not running."""
    return not task.stakeholders and task.remove is None and task.status != RUNNING


class Unmarked:
    """Ids of tasks that may have lost their last stakeholder, a set handed out smallest
    first (a heap beside it; an id discarded stays in the heap until reached, then skipped).

    After a fleet departs it holds every task, so the set is sharded (``ShardedSet``: one
    set that size grew its table inside one prune slice). The heap is one list, made once
    and grown in place: frozen with the loaded state, no collection walks it."""

    def __init__(self, ids: Iterable[str] = ()) -> None:
        self._ids = ShardedSet(ids)
        self._heap = sorted(self._ids)

    def __setstate__(self, state: dict[str, Any]) -> None:
        ids = state["_ids"]
        if isinstance(ids, ShardedSet):
            self.__dict__.update(state)
        else:  # a copy pickled by an older luigid: one plain set beside the heap
            self.__init__(ids)  # type: ignore[misc]

    def add(self, task_id: str) -> None:
        if self._ids.add(task_id):
            heapq.heappush(self._heap, task_id)

    def discard(self, task_id: str) -> None:
        self._ids.discard(task_id)

    def pop(self) -> str:
        """The smallest id (KeyError when empty)."""
        ids, heap = self._ids, self._heap
        while heap:
            task_id = heapq.heappop(heap)
            if ids.discard(task_id):
                return task_id
        raise KeyError("pop from an empty Unmarked")

    def __contains__(self, task_id: object) -> bool:
        return task_id in self._ids

    def __iter__(self) -> Iterator[str]:
        return iter(self._ids)

    def __len__(self) -> int:
        return len(self._ids)


class PruneQueue:
    def __init__(self, config: SchedulerConfig) -> None:
        self.config = config
        #: (due time, task id), a heap; a task's entry whose time is no longer one of its
        #: timers (re-added, removed) stays until reached
        self.timers: list[tuple[float, str]] = []
        #: tasks that may have lost their last stakeholder
        self.unmarked = Unmarked()

    def __setstate__(self, state: dict[str, Any]) -> None:
        # a copy pickled by an older luigid: (due, sequence, id) timers and a plain set
        self.__dict__.update(state)
        self.timers = [(entry[0], entry[-1]) for entry in self.timers]
        heapq.heapify(self.timers)
        if not isinstance(self.unmarked, Unmarked):
            self.unmarked = Unmarked(self.unmarked)

    def dues(self, task: Task) -> list[float]:
        """When prune will next have something to do for this task."""
        due = []
        if task.status == FAILED and task.retry is not None:
            due.append(task.retry)
        if task.status == DISABLED and task.scheduler_disable_time is not None:
            due.append(task.scheduler_disable_time + self.config.disable_persist)
        if task.remove is not None:
            due.append(task.remove)
        return due

    def schedule(self, task: Task) -> None:
        """Remember when prune will next have something to do for this task."""
        for when in self.dues(task):
            heapq.heappush(self.timers, (when, task.id))

    def saved(self) -> dict[str, Any]:
        """The queue as a snapshot keeps it (plain lists)."""
        return {"timers": list(self.timers), "unmarked": list(self.unmarked)}

    def restore_saved(self, saved: Any) -> bool:
        """Take the queue a snapshot kept (after ``restore.rebuild``, whose queue it
        replaces); False, keeping the rebuilt one, if ``saved`` is not one."""
        try:
            timers = [(float(when), task_id) for when, task_id in saved["timers"] if isinstance(task_id, str)]
            unmarked = Unmarked(i for i in saved["unmarked"] if isinstance(i, str))
        except (TypeError, ValueError, KeyError):
            return False
        heapq.heapify(timers)  # already a heap when saved; cheap to make sure
        self.timers, self.unmarked = timers, unmarked
        return True

    def has_work(self, now: float) -> bool:
        """Some task may have lost its last stakeholder, or some timer is due."""
        return bool(self.unmarked) or bool(self.timers and self.timers[0][0] <= now)

    def take(self, tasks: dict[str, Task], now: float, limit: int) -> tuple[list[Task], int]:
        """Tasks prune must look at now: any that may have lost its last stakeholder, and
        any whose retry, re-enable or removal time has come, oldest due first; and how many
        queue entries that took (at most ``limit``). Taken off the queues, so the next call
        goes on with the rest."""
        picked: dict[str, Task] = {}
        timers = self.timers
        # every entry taken counts, found or not: after a mass removal most timers name
        # tasks already gone, and popping them all at once was the stall again
        taken = 0
        while timers and timers[0][0] <= now and taken < limit:
            _, task_id = heapq.heappop(timers)
            taken += 1
            task = tasks.get(task_id)
            if task is not None:
                picked.setdefault(task_id, task)
        unmarked = self.unmarked
        while unmarked and taken < limit:
            task = tasks.get(unmarked.pop())
            taken += 1
            if task is not None:
                picked.setdefault(task.id, task)
        return list(picked.values()), taken
