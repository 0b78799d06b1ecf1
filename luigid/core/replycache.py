"""A bound on the per-task caches behind the big replies: each task's task_list/graph JSON
(``Task.encoded``) and its display name (``Task.display``), about 1 KB a task together.

Every task holding either has at least one entry in ``_slots``, a list of at most
``capacity`` pointers; a newcomer takes a free slot, or replaces a slot picked at random
and that slot's task loses both caches. So at most ``capacity`` tasks hold anything, and
the bound costs one pointer per cached task. An entry may go stale (``Task.set`` dropped
the cache, the task was removed, or the task was cached again under another slot): evicting
it then clears what is already clear, or makes a task encode again sooner, which never
changes a reply. Stale entries would keep removed tasks alive, and a list not yet full would
keep every task ever cached: so while it is not full, after as many admissions as there were
live entries (at least ``MIN_COMPACTION``), it is rebuilt with one entry per task still in the
state and holding a cache (linear in the entries, so O(1) per admission on average). A full
list is not compacted (a big reply would pay for it every ``capacity`` tasks): random eviction
overwrites its stale entries, and it never holds more than ``capacity``. Random rather than
oldest-first eviction: a reply walks the same tasks in the same order each time, and with
more tasks than slots, oldest-first would evict every task just before the next walk asks
for it (no hits at all), where random eviction keeps most of them.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

from luigid.core import gcpause
from luigid.core.model import Task

#: Fewest admissions between two compactions of the slots.
MIN_COMPACTION = 1024


class ReplyCache:
    def __init__(self, capacity: int, tasks: Mapping[str, Task]) -> None:
        self.capacity = capacity
        self._tasks = tasks  # the state's records: an entry for a task not in them is dropped
        self._slots: list[Task] = []
        self._random = random.Random(0)  # which slot to reuse; any choice keeps the bound
        self._admitted = 0  # since the last compaction
        self._compact_after = MIN_COMPACTION

    def __len__(self) -> int:
        """Entries (stale ones included): never more than ``capacity``."""
        return len(self._slots)

    def keep(self, task: Task, encoded: Any) -> Any:
        """Store the task's reply JSON if a slot allows; hands ``encoded`` back either way."""
        if self._admit(task):
            task.encoded = encoded
        return encoded

    def name(self, task: Task) -> str:
        """The task's display name, kept on it if a slot allows."""
        cached = task.display
        if cached is not None and cached[0] == task.family:  # as Task.pretty_id reads it
            return cached[1]
        pretty = task.fresh_pretty_id()
        if self._admit(task):
            task.display = (task.family, pretty)
        return pretty

    def names(self, tasks: list[Task]) -> list[str]:
        name = self.name
        return [name(task) for task in tasks]

    def clear(self) -> None:
        for task in self._slots:
            task.encoded = task.display = None
        self._slots = []

    def set_capacity(self, capacity: int) -> None:
        self.capacity = capacity
        slots = self._slots
        while len(slots) > capacity:
            evicted = slots.pop()
            evicted.encoded = evicted.display = None

    def _admit(self, task: Task) -> bool:
        """True when the task may hold a cache: it already does (so it has an entry), or it
        has just been given one."""
        if task.encoded is not None or task.display is not None:
            return True
        self._admitted += 1
        slots = self._slots
        if self._admitted >= self._compact_after and len(slots) < self.capacity:
            self._compact()
            slots = self._slots
        if len(slots) < self.capacity:
            slots.append(task)
            return True
        if not slots:
            return False  # capacity 0: nothing is kept
        at = self._random.randrange(len(slots))
        evicted = slots[at]
        evicted.encoded = evicted.display = None
        slots[at] = task
        return True

    def _compact(self) -> None:
        """One entry per task that is still in the state and holds a cache; a removed task
        loses its caches (a reply under way may have cached it after its removal)."""
        tasks = self._tasks
        kept = []
        for task in dict.fromkeys(self._slots):
            if task.encoded is None and task.display is None:
                continue
            if tasks.get(task.id) is task:
                kept.append(task)
            else:
                task.encoded = task.display = None
        # long-lived and up to ``capacity`` long: frozen, so that no collection walks it
        self._slots = gcpause.unwalked_list(kept)
        self._admitted = 0
        self._compact_after = max(len(kept), MIN_COMPACTION)
