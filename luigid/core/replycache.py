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
live entries (at least ``MIN_COMPACTION``), a pass compacts it in place down to one entry per
task still in the state and holding a cache. The pass looks at ``COMPACT_STEP`` entries per
admission and no more, so no reply step pays for the whole list in Python (a rebuild in one
step was the longest step of a first whole graph: docs/performance.md, "The reply cache's
compaction in steps"); over a pass the work is still linear in the entries, O(1) per admission
on average.
What stays proportional to the entries within one admission is work in C: the set's table
and the list's array growing, and freeing the set at the pass's end. A full list is not
compacted (a big reply would pay for it every ``capacity`` tasks): random eviction overwrites
its stale entries, and it never holds more than ``capacity``. Random rather than oldest-first
eviction: a reply walks the same tasks in the same order each time, and with more tasks than
slots, oldest-first would evict every task just before the next walk asks for it (no hits at
all), where random eviction keeps most of them.

During a pass the list has three parts, split by two cursors (``_write`` <= ``_read``):

- ``[:_write]``, kept: one entry per task, exactly the tasks of the set ``_kept``;
- ``[_write:_read]``, the gap: entries already looked at (copied down or dropped), free for
  newcomers before the list grows;
- ``[_read:]``, not looked at yet (newcomers are appended here when there is no gap).

The list is compacted in place, not copied: a copy and the old list together would hold up
to twice ``capacity`` pointers, and random eviction would have two lists to pick from.
(``luigid.core.entries`` copies, because scans read its old lists across steps; nothing reads
this list across steps.)
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

from luigid.core import gcpause
from luigid.core.model import Task

#: Fewest admissions between two compaction passes.
MIN_COMPACTION = 1024
#: Entries a pass looks at per admission: tens of microseconds; a smaller step makes a pass
#: span more admissions, each paying the step's own overhead.
COMPACT_STEP = 64


class ReplyCache:
    def __init__(self, capacity: int, tasks: Mapping[str, Task]) -> None:
        self.capacity = capacity
        self._tasks = tasks  # the state's records: an entry for a task not in them is dropped
        self._slots: list[Task] = []
        self._random = random.Random(0)  # which slot to reuse; any choice keeps the bound
        self._admitted = 0  # since the last pass ended
        self._compact_after = MIN_COMPACTION
        #: the tasks of the kept part while a pass is under way; None between passes
        self._kept: set[Task] | None = None
        self._read = self._write = 0
        #: entries looked at by all passes so far: one admission adds at most COMPACT_STEP
        self.looked_at = 0

    def __len__(self) -> int:
        """Entries (stale ones and a pass's gap included): never more than ``capacity``."""
        return len(self._slots)

    def keep(self, task: Task, encoded: Any) -> Any:
        """Store the task's reply JSON if a slot allows; hands ``encoded`` back either way."""
        if self._admit(task):
            task.encoded = encoded
        return encoded

    def name(self, task: Task) -> str:
        """The task's display name, kept on it if a slot allows."""
        cached = task.display
        if cached is not None:
            return cached
        pretty = task.fresh_pretty_id()
        if self._admit(task):
            task.display = pretty
        return pretty

    def names(self, tasks: list[Task]) -> list[str]:
        name = self.name
        return [name(task) for task in tasks]

    def clear(self) -> None:
        for task in self._slots:
            task.encoded = task.display = None
        self._slots.clear()
        self._kept = None
        self._admitted = 0

    def set_capacity(self, capacity: int) -> None:
        self.capacity = capacity
        slots = self._slots
        if len(slots) > capacity and self._kept is not None:
            self._end_pass()  # the gap holds copies of kept entries: popping them would evict those
        while len(slots) > capacity:
            evicted = slots.pop()
            evicted.encoded = evicted.display = None

    def _admit(self, task: Task) -> bool:
        """True when the task may hold a cache: it already does (so it has an entry), or it
        has just been given one."""
        if task.encoded is not None or task.display is not None:
            return True
        kept = self._kept
        if kept is None:
            self._admitted += 1
            if self._admitted >= self._compact_after and len(self._slots) < self.capacity:
                kept = self._begin_pass()
        if kept is not None and self._placed_in_pass(task, kept):
            return True
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
        kept = self._kept
        if kept is not None and at < self._write:  # no gap now: below _write is the kept part
            kept.discard(evicted)
            kept.add(task)
        return True

    def _placed_in_pass(self, task: Task, kept: set[Task]) -> bool:
        """One step of the pass; then True if the task has an entry in the kept part, or has
        just been given one in the gap (False: it goes where it would between passes)."""
        self._step(kept)
        if self._kept is None:
            return False  # that step ended the pass
        if task in kept:
            return True
        write = self._write
        if write < self._read:
            self._slots[write] = task
            self._write = write + 1
            kept.add(task)
            return True
        return False

    def _begin_pass(self) -> set[Task]:
        self._read = self._write = 0
        # The slots list and the pass's set are the containers here that grow with the tasks.
        # Both change only in place, and a frozen object stays in the permanent generation
        # however it changes: so one freeze at each pass's start keeps every collection a
        # request runs from walking the set for its whole life, and the list (made empty
        # with the cache, grown since) from the first pass on, as the one-step rebuild did
        # for the list it made.
        kept: set[Task] = gcpause.unwalked(set())
        self._kept = kept
        return kept

    def _step(self, kept: set[Task]) -> None:
        """Look at the next ``COMPACT_STEP`` entries: an entry of a task still in the state,
        holding a cache and not kept yet is copied down to the kept part; a removed task
        loses its caches (a reply under way may have cached it after its removal)."""
        slots, in_state, keep = self._slots, self._tasks.get, kept.add
        read, write = self._read, self._write
        end = min(len(slots), read + COMPACT_STEP)
        for task in slots[read:end]:
            if (task.encoded is None and task.display is None) or task in kept:
                continue  # stale, or a second entry of a kept task
            if in_state(task.id) is task:
                slots[write] = task
                write += 1
                keep(task)
            else:
                task.encoded = task.display = None
        self.looked_at += end - read
        self._read, self._write = end, write
        if end == len(slots):
            self._end_pass()

    def _end_pass(self) -> None:
        """Close the gap (at the end of a finished pass, so only the tail is cut)."""
        del self._slots[self._write : self._read]
        self._kept = None
        self._admitted = 0
        self._compact_after = max(len(self._slots), MIN_COMPACTION)
