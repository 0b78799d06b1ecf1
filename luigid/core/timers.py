"""What prune has to look at, so that a prune round costs O(expired), not O(all tasks):
the retry, re-enable and removal times of tasks (a heap), and tasks that may have lost
their last stakeholder (a set)."""

from __future__ import annotations

import heapq
import itertools
from typing import Any

from luigid.config import SchedulerConfig
from luigid.core.model import DISABLED, FAILED, Task


class PruneQueue:
    def __init__(self, config: SchedulerConfig) -> None:
        self.config = config
        self.timers: list[tuple[float, int, str]] = []
        self._timer_seq = itertools.count()
        #: ids of tasks that may have lost their last stakeholder
        self.unmarked: set[str] = set()

    def __getstate__(self) -> dict[str, Any]:
        # as State's task counter: left out, the copy goes on after the timers' highest
        state = self.__dict__.copy()
        del state["_timer_seq"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._timer_seq = itertools.count(max((seq for _, seq, _ in self.timers), default=-1) + 1)

    def schedule(self, task: Task) -> None:
        """Remember when prune will next have something to do for this task."""
        due = []
        if task.status == FAILED and task.retry is not None:
            due.append(task.retry)
        if task.status == DISABLED and task.scheduler_disable_time is not None:
            due.append(task.scheduler_disable_time + self.config.disable_persist)
        if task.remove is not None:
            due.append(task.remove)
        for when in due:
            heapq.heappush(self.timers, (when, next(self._timer_seq), task.id))

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
            _, _, task_id = heapq.heappop(timers)
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
