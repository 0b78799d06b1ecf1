"""Workers prune has removed whose tasks still name them.

A worker can hold a stake in 100k tasks, so taking it off all of them at once would hold
the event loop; instead the removed worker's task sets are queued here and worked through
a slice at a time (``settle``) between other calls. Until then a task may name a worker
the worker list no longer has: luigi's rules treat such a worker as gone already.
"""

from __future__ import annotations

import sys
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from luigid.core.indexes import Indexes
from luigid.core.model import Task
from luigid.core.timers import PruneQueue


@dataclass(slots=True, eq=False)
class Departure:
    """A removed worker's leftovers: tasks it could run, ids of tasks it had a stake in.
    Both sets are the worker's own, taken over (it is gone) and emptied as they settle."""

    worker_id: str
    runs: set[Task]
    stakes: set[str]


class Departures:
    def __init__(
        self,
        indexes: Indexes,
        queue: PruneQueue,
        drop_runner: Callable[[Task, str], None],
        drop_stakeholder: Callable[[Task, str], None],
    ) -> None:
        self._indexes = indexes
        self._queue = queue
        #: takes a worker off a task's runners, keeping the indexes (``State.drop_runner``)
        self._drop_runner = drop_runner
        #: takes a worker off a task's stakeholders (``State.drop_stakeholder``)
        self._drop_stakeholder = drop_stakeholder
        self._pending: deque[Departure] = deque()

    def __iter__(self) -> Iterator[Departure]:
        return iter(self._pending)

    def add(self, worker_id: str, runs: set[Task], stakes: set[str]) -> None:
        self._pending.append(Departure(worker_id, runs, stakes))

    def settle(self, limit: int) -> bool:
        """Take removed workers off up to ``limit`` of their tasks; True while some remain."""
        pending = self._pending
        while pending and limit > 0:
            departure = pending[0]
            limit = self._settle(departure, limit)
            if not departure.runs and not departure.stakes:
                self._departed(departure)
        return bool(pending)

    def settle_worker(self, worker_id: str) -> None:
        """A removed worker is back before its departure settled: finish it first, so the
        worker starts from what it adds, as it would have had prune done it all at once."""
        departure = next((d for d in self._pending if d.worker_id == worker_id), None)
        if departure is not None:  # at most one: the worker was known until it left
            self._settle(departure, len(departure.runs) + len(departure.stakes))
            self._departed(departure)

    def finish(self) -> None:
        """Settle every departure now (before the state is written out, for one)."""
        self.settle(sys.maxsize)

    def _departed(self, departure: Departure) -> None:
        """A departure fully settled: drop it, and the worker's load, which was kept until
        now because dropping the worker as a runner keeps its ready list in step."""
        self._pending.remove(departure)
        self._indexes.loads.pop(departure.worker_id, None)

    def _settle(self, departure: Departure, budget: int) -> int:
        """Work through up to ``budget`` of a departure's tasks; what is left of the budget."""
        tasks = self._indexes.tasks
        worker_id = departure.worker_id
        runs, stakes = departure.runs, departure.stakes
        while runs and budget > 0:
            task = runs.pop()
            budget -= 1
            if tasks.get(task.id) is task:  # not removed meanwhile
                self._drop_runner(task, worker_id)
        while stakes and budget > 0:
            staked = tasks.get(stakes.pop())
            budget -= 1
            if staked is not None:
                self._drop_stakeholder(staked, worker_id)
                if not staked.stakeholders:
                    self._queue.unmarked.add(staked.id)
        return budget
