"""Which database row is the current run of each task id, and when a new run begins.

A run is one attempt at a task: it opens with the first event seen for the task id, and it
ends with DONE or FAILED. The next PENDING or RUNNING event for that task id starts a new
``tasks`` row, so a re-run never overwrites the previous one (luigi keeps one row per task id
for the life of its process and appends every run's events to it). A DONE or FAILED that
follows an ended run (mark_as_done after a failure, say) stays with that run: it settles it.

The map lives only in the writer thread and is a bounded LRU; a task id that was forgotten,
or that was last seen before a restart, simply starts a new row at its next event.
"""

from __future__ import annotations

from collections import OrderedDict

from luigid.core.model import DONE, FAILED

ENDING_EVENTS = frozenset((DONE, FAILED))


class RunState:
    """The writer's view of one run; ``record_id`` is None until its row is inserted."""

    __slots__ = ("ended", "host", "record_id")

    def __init__(self, record_id: int | None, ended: bool, host: str | None) -> None:
        self.record_id = record_id
        self.ended = ended
        self.host = host

    def copy(self) -> RunState:
        return RunState(self.record_id, self.ended, self.host)


def starts_new_run(current: RunState | None, event_name: str) -> bool:
    if current is None:
        return True
    return current.ended and event_name not in ENDING_EVENTS


class RunTracker:
    """task id -> current RunState, least recently used dropped beyond ``capacity``."""

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._runs: OrderedDict[str, RunState] = OrderedDict()

    def __len__(self) -> int:
        return len(self._runs)

    def get(self, task_id: str) -> RunState | None:
        return self._runs.get(task_id)

    def put(self, task_id: str, state: RunState) -> None:
        self._runs[task_id] = state
        self._runs.move_to_end(task_id)
        while len(self._runs) > self._capacity:
            self._runs.popitem(last=False)

    def forget_records(self, record_ids: set[int]) -> None:
        """Drop runs whose rows were deleted (by retention), so no event points at a missing row."""
        if not record_ids:
            return
        for task_id in [t for t, s in self._runs.items() if s.record_id in record_ids]:
            del self._runs[task_id]
