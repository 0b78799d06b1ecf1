"""The tasks of each status in the order they entered it, as lists a scan can walk across many
turns of the event loop (the UI's task browser, ``luigid.core.browse``).

``State._by_status`` holds the same tasks as dicts, but a dict that changes size between two
steps cannot be walked on, and copying one at the start of a scan touches every task in one
step: right after a snapshot's fork each touch is a copy-on-write fault (docs/performance.md,
"Stalls at one million tasks"). Here each status has an append-only list of tasks and, beside
it, the ``seq`` each entered with (``Task.seq`` is new on every entry into a status). An entry
is current while its task still holds that ``seq`` and is still a task of the state; the others
(tasks that left, or left and came back) stay until a compaction, which starts once they may be
as many as the current ones and copies ``COMPACT_STEP`` entries per write, so the lists hold
about twice the tasks at most and no write pays for more than a few entries. A compaction
builds new lists and never changes the old ones again, so a walk keeps reading those.

One more list, under ``ALL``, holds every task in the order it was added to the state, which is
the order of the state's task dict: the whole graph's roots are walked from it in that order.
Its entries carry no ``seq`` (a task stays in it through status changes) and are current while
the task is still the state's.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Iterator, Mapping

from luigid.core.model import STATUSES, Task
from luigid.core.pauses import thinned

#: Entries a compaction copies per write of the state.
COMPACT_STEP = 8
#: Left entries below this never start a compaction (small lists cost nothing to keep).
COMPACT_ABOVE = 1024
#: The list of every task, in the state's order; not a status.
ALL = "*"
#: An ``ALL`` entry's seq: any status entry of the task matches it.
ANY_SEQ = -1


class _Log:
    """One status's entries: tasks, and the seq each entered with."""

    __slots__ = ("left", "seqs", "tasks")

    def __init__(self) -> None:
        self.tasks: list[Task] = []
        self.seqs = array("q")
        #: entries that stopped being current since the lists were made (an upper bound)
        self.left = 0

    def append(self, task: Task) -> None:
        self.tasks.append(task)
        self.seqs.append(task.seq)


class Entries:
    def __init__(self, tasks: Mapping[str, Task]) -> None:
        self._tasks = tasks
        self._logs = {status: _Log() for status in (*STATUSES, ALL)}
        #: a compaction under way: (status, the new log, how far the old one is copied)
        self._compacting: tuple[str, _Log, int] | None = None

    def entered(self, task: Task) -> None:
        """The task entered ``task.status`` (its ``seq`` is new)."""
        self._logs[task.status].append(task)

    def added(self, task: Task) -> None:
        """The task joined the state (it is also ``entered`` in its status)."""
        log = self._logs[ALL]
        log.tasks.append(task)
        log.seqs.append(ANY_SEQ)

    def left(self, status: str) -> None:
        """A task left ``status`` (moved, or removed from the state), or the state (``ALL``)."""
        log = self._logs[status]
        log.left += 1
        if self._compacting is not None:
            self._compact()
        elif log.left >= COMPACT_ABOVE and log.left * 2 >= len(log.tasks):
            self._compacting = (status, _Log(), 0)
            self._compact()

    def _current(self, task: Task, seq: int) -> bool:
        return (task.seq == seq or seq == ANY_SEQ) and self._tasks.get(task.id) is task

    def _compact(self) -> None:
        assert self._compacting is not None
        status, new, done = self._compacting
        old = self._logs[status]
        end = min(len(old.tasks), done + COMPACT_STEP)
        for task, seq in zip(old.tasks[done:end], old.seqs[done:end], strict=True):
            if self._current(task, seq):
                new.tasks.append(task)
                new.seqs.append(seq)
        if end < len(old.tasks):
            self._compacting = (status, new, end)
            return
        # what left while the old log was being copied may be in the new one (an upper bound)
        new.left = max(0, old.left - (len(old.tasks) - len(new.tasks)))
        self._logs[status] = new
        self._compacting = None

    def rebuild(self, by_status: Mapping[str, Mapping[str, Task]]) -> None:
        """After a load: every task, in the order of the status index (and of the state)."""
        self._compacting = None
        self._logs = {status: _Log() for status in (*STATUSES, ALL)}
        everything = self._logs[ALL]
        everything.tasks.extend(self._tasks.values())
        everything.seqs.extend(ANY_SEQ for _ in everything.tasks)
        for status, tasks in by_status.items():
            log = self._logs[status]
            log.tasks.extend(tasks.values())
            log.seqs.extend(task.seq for task in log.tasks)

    def size(self, status: str) -> int:
        """Entries kept for the status, current or not."""
        return len(self._logs[status].tasks)

    def walk(self, statuses: Iterable[str], step: int) -> Iterator[list[Task]]:
        """The tasks of the statuses, ``step`` entries looked at per list: each task that was
        in one of them when the walk began, once, unless it left that status before the walk
        reached it (tasks that entered one since are not shown either). Between two lists
        the state may change: nothing is copied beyond the entries of one list."""
        # taken now: entries appended later are not the walk's
        logs = [(log.tasks, log.seqs, len(log.tasks)) for log in (self._logs[s] for s in statuses)]
        current = self._current
        for tasks, seqs, end in logs:
            for start in range(0, end, step):
                stop = min(end, start + step)
                pairs = zip(tasks[start:stop], seqs[start:stop], strict=True)
                yield [task for task, seq in pairs if current(task, seq)]

    def newest_first(self, status: str, after: int) -> Iterator[Task | None]:
        """The status's tasks that entered it with a ``seq`` above ``after``, the latest entry
        first, thinned (``luigid.core.pauses``); it may be read across steps, as ``walk``."""
        return thinned(self._newest_entries(status, after))

    def _newest_entries(self, status: str, after: int) -> Iterator[Task | None]:
        """Each entry above ``after``, the latest first: its task if current, else None."""
        log = self._logs[status]
        tasks, seqs, current = log.tasks, log.seqs, self._current
        for at in range(len(tasks) - 1, -1, -1):
            seq = seqs[at]
            if seq <= after:
                return
            task = tasks[at]
            yield task if current(task, seq) else None
