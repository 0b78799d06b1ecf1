"""What the UI's task browser needs without a scan of every task: how many tasks each status
box holds, by family, and the order "newest update first" within each status.

The boxes are luigi's page's: a task counts in the box of its status, except that a PENDING
task whose upstream is failed or disabled counts in UPSTREAM_FAILED or UPSTREAM_DISABLED
instead (luigi's ``_upstream_status``, of which the boxes need only those two values).

* Counts: ``Task.counted`` is the (box, family) the counters hold the task under;
  ``recount`` moves it when either changes, in O(1). ``luigid.core.state.State`` calls it
  on every write that can change them (status, family, the upstream value, add, removal).
* Upstream: ``Task.upstream`` is the most severe of "", UPSTREAM_FAILED and
  UPSTREAM_DISABLED a PENDING task inherits from its deps (a FAILED dep passes
  UPSTREAM_FAILED, a DISABLED one UPSTREAM_DISABLED, a PENDING one its own value, anything
  else nothing). A change can reach every task downstream (a failure at the root of a
  1M-task graph), so the writes only queue work (O(1): the task, in ``stale`` or
  ``spread``) and ``settle`` does it later within a budget. Once the backlog is empty
  every value is exact on a DAG, the same value luigi's memoised walk gives; on a
  dependency cycle a value the cycle held up may stay (luigi's own answer there depends on
  the order it walks the tasks).
* Order: within a status, tasks enter ``State._by_status`` in time order, so its dict is
  ordered by ``updated`` except for the tasks loaded at start-up (file order). Those are
  sorted once at load (``restored``); ``newest_first`` merges the two.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Collection, Iterable, Iterator
from operator import attrgetter

from luigid.core.interning import SharedValues
from luigid.core.model import (
    DISABLED,
    FAILED,
    PENDING,
    UPSTREAM_DISABLED,
    UPSTREAM_FAILED,
    Task,
)
from luigid.core.pauses import Item, newest_first_merge, thinned

#: What a task that is not PENDING passes to the tasks depending on it.
_PASSED = {FAILED: UPSTREAM_FAILED, DISABLED: UPSTREAM_DISABLED}
_SEVERITY = {"": 0, UPSTREAM_FAILED: 1, UPSTREAM_DISABLED: 2}

Counted = tuple[str, str]  # (box, family)

_updated = attrgetter("updated")
_id = attrgetter("id")


def box_of(task: Task) -> str:
    status = task.status
    return (task.upstream or PENDING) if status == PENDING else status


def passed(task: Task | None) -> str:
    """The upstream value a task hands to its dependents ("" for an unknown id)."""
    if task is None:
        return ""
    status = task.status
    return task.upstream if status == PENDING else _PASSED.get(status, "")


def _ties_by_id(tasks: Iterable[Task | None]) -> Iterator[Task | None]:
    """Tasks already in ``updated`` order, newest first, with each run of equal times put in
    id order (the page's tie-break), so the result is sorted by (updated, id). A ``None``
    (``luigid.core.pauses``) is passed on at once, even inside a run."""
    run: list[Task] = []
    for task in tasks:
        if task is None:
            yield None
        elif not run or task.updated == run[0].updated:
            run.append(task)
        else:
            yield from _by_id(run)
            run = [task]
    yield from _by_id(run)


def _by_id(run: list[Task]) -> list[Task]:
    if len(run) > 1:
        run.sort(key=_id, reverse=True)
    return run


def _still_loaded(
    loaded: list[Task], status: str, live_from: int, tasks: dict[str, Task]
) -> Iterator[Task | None]:
    """The tasks loaded at start-up still in ``status`` (``loaded`` sorted by update time),
    newest first, thinned (``luigid.core.pauses``)."""
    return thinned(
        t if t.status == status and t.seq <= live_from and tasks.get(t.id) is t else None
        for t in reversed(loaded)
    )


class UiCounts:
    def __init__(
        self, tasks: dict[str, Task], dependents: Callable[[str], Collection[str]], shared: SharedValues
    ) -> None:
        self._tasks = tasks
        self._dependents = dependents
        #: one (box, family) pair object for all the tasks counted under it
        self._shared = shared
        self._reset()

    def _reset(self) -> None:
        #: box -> family -> tasks
        self.families: dict[str, dict[str, int]] = {}
        #: box -> tasks
        self.totals: dict[str, int] = {}
        #: tasks whose upstream value is to be worked out again (a dict: an ordered set)
        self.stale: dict[str, None] = {}
        #: tasks whose passed value changed: their dependents become stale
        self.spread: dict[str, None] = {}
        #: dependents of a spread task still to be marked stale
        self.fan: list[str] = []
        #: tasks with a higher ``seq`` entered their status after the load
        self.live_from = 0
        #: status -> the tasks loaded in that status, oldest update first
        self.restored: dict[str, list[Task]] = {}
        #: status -> tasks that left it since its list was last compacted (an upper bound)
        self.left: dict[str, int] = {}
        #: a compaction under way: (status, the tasks kept so far, where it has got to)
        self.compacting: tuple[str, list[Task], int] | None = None

    # ------------------------------------------------------------------ counts

    def _add(self, counted: Counted, sign: int) -> None:
        box, family = counted
        families = self.families.get(box)
        if families is None:
            families = self.families[box] = {}
        n = families.get(family, 0) + sign
        if n:
            families[family] = n
        else:
            del families[family]
        self.totals[box] = self.totals.get(box, 0) + sign

    def recount(self, task: Task) -> None:
        counted = (box_of(task), task.family)
        old = task.counted
        if old != counted:
            if old is not None:
                self._add(old, -1)
            self._add(counted, +1)
            task.counted = self._shared.get(counted)

    def forget(self, task: Task) -> None:
        """The task was removed."""
        if task.counted is not None:
            self._add(task.counted, -1)
            task.counted = None
        self.left[task.status] = self.left.get(task.status, 0) + 1
        if passed(task):
            self.spread[task.id] = None

    # ---------------------------------------------------------------- upstream

    def moved(self, task: Task, old_status: str, old_passed: str) -> None:
        """The task's status changed (or was written again): recount it, queue the work."""
        if old_status != task.status:
            self.left[old_status] = self.left.get(old_status, 0) + 1
        if task.status == PENDING:
            if old_status != PENDING:
                task.upstream = ""  # worked out again below, from its deps as they are now
            if task.deps:
                self.stale[task.id] = None
        else:
            task.upstream = ""
        if passed(task) != old_passed:
            self.spread[task.id] = None
        self.recount(task)

    def deps_changed(self, task: Task) -> None:
        if task.status == PENDING:
            self.stale[task.id] = None

    def backlog(self) -> int:
        """Tasks still to look at before every upstream value is exact."""
        return len(self.stale) + len(self.spread) + len(self.fan)

    def settle(self, budget: int) -> bool:
        """Work through the backlog: about ``budget`` task or edge visits. True while some is left."""
        tasks = self._tasks
        work = 0
        while work < budget:
            if self.fan:
                self.stale[self.fan.pop()] = None
                work += 1
            elif self.spread:
                task_id = next(iter(self.spread))
                del self.spread[task_id]
                dependents = self._dependents(task_id)
                self.fan.extend(dependents)
                work += 1 + len(dependents) // 16  # a C-speed copy
            elif self.stale:
                task_id = next(iter(self.stale))
                del self.stale[task_id]
                task = tasks.get(task_id)
                if task is None or task.status != PENDING:
                    work += 1
                    continue
                work += 1 + len(task.deps)
                value = ""
                for dep_id in task.deps:
                    got = passed(tasks.get(dep_id))
                    if got and _SEVERITY[got] > _SEVERITY[value]:
                        value = got
                        if value == UPSTREAM_DISABLED:
                            break
                if value != task.upstream:
                    task.upstream = value
                    self.recount(task)
                    self.spread[task_id] = None
            elif self._compact(budget - work):
                work = budget
            else:
                return False
        return bool(self.stale or self.spread or self.fan or self.compacting)

    # ------------------------------------------------------------------- order

    def _compact(self, budget: int) -> bool:
        """Take out of a status's loaded list, ``budget`` entries at a time, the tasks that
        have left it (so that pruned tasks are not kept alive by it): once as many have left
        as it holds, which makes the work O(1) per task leaving. False when there is none to do."""
        if self.compacting is None:
            due = [s for s, n in self.left.items() if s in self.restored and n * 2 > len(self.restored[s])]
            if not due:
                return False
            self.left[due[0]] = 0
            self.compacting = (due[0], [], 0)
        status, kept, start = self.compacting
        loaded = self.restored[status]
        end = min(len(loaded), start + max(1, budget))
        tasks, live_from = self._tasks, self.live_from
        kept.extend(
            t for t in loaded[start:end] if t.status == status and t.seq <= live_from and tasks.get(t.id) is t
        )
        if end < len(loaded):
            self.compacting = (status, kept, end)
            return True
        if kept:
            self.restored[status] = kept
        else:
            del self.restored[status]
        self.compacting = None
        return True

    def newest_first(self, status: str, live: Iterable[Task | None]) -> Iterator[Item]:
        """The tasks of ``status`` by (updated, id), newest first, with a ``Pause`` wherever
        a source skipped ``LOOK_STEP`` entries (``luigid.core.pauses``); ``live`` is the
        status index's entries from the newest back, ``None`` as such pauses."""
        live_from = self.live_from
        recent = _ties_by_id(itertools.takewhile(lambda t: t is None or t.seq > live_from, live))
        loaded = self.restored.get(status)
        if not loaded:
            return newest_first_merge(recent)
        return newest_first_merge(recent, _ties_by_id(_still_loaded(loaded, status, live_from, self._tasks)))

    # ----------------------------------------------------------------- loading

    def rebuild(self, by_status: dict[str, dict[str, Task]]) -> None:
        """After a load: count every task, queue the upstream work (only tasks downstream of
        a FAILED or DISABLED one can have a value), sort each status by update time."""
        self._reset()
        for task in self._tasks.values():
            task.upstream = ""
            task.counted = None
            self.recount(task)
        for status in (FAILED, DISABLED):
            self.spread.update(dict.fromkeys(by_status[status]))
        self.live_from = max((t.seq for t in self._tasks.values()), default=0)
        self.restored = {
            status: sorted(tasks.values(), key=_updated) for status, tasks in by_status.items() if tasks
        }
