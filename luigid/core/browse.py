"""The UI's task browser: one view of the task list (status boxes, family, search, sort and a
page of it) answered on the server, so the page never loads every task.

Without a search, the counts come from ``luigid.core.uicounts``'s counters (O(boxes x
families)) and the default order, newest update first, walks the status index from the
newest entry: a page costs what it skips and shows. A search, or another order, looks at
the tasks concerned in steps of ``SCAN_STEP``; ``browse`` is a generator that yields None
between steps, so that the server can answer other requests, and returns the page. No step
copies more tasks than it looks at (``State.walk``): a scan shows each task that was in its
status when the scan began and still was when the scan reached it. What
such a scan finds (the order, and a search's counts) is kept for ``Scans.MAX_AGE`` seconds
per view, so that the next pages, and every browser polling the same view, cost a page's
work rather than a scan each: within that time the rows are the tasks as they are now, in
the order of the scan.
"""

from __future__ import annotations

import bisect
import heapq
import itertools
from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from luigid.core import clock, gcpause
from luigid.core.model import (
    BATCH_RUNNING,
    DISABLED,
    DONE,
    FAILED,
    PENDING,
    RUNNING,
    UNKNOWN,
    UPSTREAM_DISABLED,
    UPSTREAM_FAILED,
    Task,
)
from luigid.core.pauses import Pause, newest_first_merge
from luigid.core.state import State

#: The boxes tasks are counted in, in the page's order.
BOXES = (PENDING, RUNNING, BATCH_RUNNING, DONE, FAILED, UPSTREAM_FAILED, DISABLED, UPSTREAM_DISABLED, UNKNOWN)
#: The status each box's tasks have.
STATUS_OF_BOX = {box: PENDING if box in (UPSTREAM_FAILED, UPSTREAM_DISABLED) else box for box in BOXES}
#: Tasks looked at between two pauses: a few milliseconds, even on a busy machine.
SCAN_STEP = 2000
MAX_LIMIT = 1000


def _number(value: Any, default: float) -> float:
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else default


#: The page's sort keys; ties go by task id.
SORT_KEYS: dict[str, Callable[[Task], Any]] = {
    "updated": lambda t: t.updated,
    "started": lambda t: _number(t.time, 0),
    "priority": lambda t: _number(t.priority, 0),
    "name": lambda t: t.pretty_id.casefold(),
    "status": lambda t: t.counted[0] if t.counted else t.status,
    "progress": lambda t: _number(t.progress_percentage, -1),
}


@dataclass(frozen=True)
class View:
    boxes: tuple[str, ...] = ()  # none: every task
    family: str | None = None
    search: str = ""
    sort: str = "updated"
    descending: bool = True
    offset: int = 0
    limit: int = 100


@dataclass
class Page:
    #: box -> tasks (matching the search, when there is one); "" is every task
    counts: dict[str, int]
    #: family -> tasks in the chosen boxes (and search)
    families: dict[str, int]
    #: tasks in the chosen boxes, family and search
    total: int
    #: the page, with the box each task counts in
    tasks: list[tuple[Task, str]] = field(default_factory=list)
    #: tasks still to look at before the upstream boxes are exact (``UiCounts.backlog``)
    backlog: int = 0


class Runs:
    """A scan's sorted runs, one per step, end to end in one list that no garbage collection
    walks: held for ``Scans.MAX_AGE`` by up to ``Scans.MOST`` views, a million task pointers
    each, they would otherwise be walked by every full collection meanwhile (25-70 ms each
    at 1M tasks, run inside whatever request allocated last). Frozen when the scan starts, so
    what each step appends is never young either; reference counting frees it with the scan."""

    def __init__(self) -> None:
        self.tasks: list[Task] = gcpause.unwalked([])
        #: where each run ends in ``tasks``
        self.ends: list[int] = []
        #: pages being read from the runs (across steps): a dropped scan is not swept meanwhile
        self.readers = 0

    def add(self, run: list[Task]) -> None:
        if run:
            self.tasks += run
            self.ends.append(len(self.tasks))

    def merged(self, view: View) -> Iterator[Task]:
        """Every task of the runs, in the view's order."""
        tasks = self.tasks
        starts = [0, *self.ends[:-1]]
        if len(starts) == 1:
            return self._read(tasks)
        runs = [
            map(tasks.__getitem__, range(start, end)) for start, end in zip(starts, self.ends, strict=True)
        ]
        return self._read(heapq.merge(*runs, key=_full_key(view), reverse=view.descending))

    def _read(self, tasks: Iterable[Task]) -> Iterator[Task]:
        self.readers += 1
        try:
            yield from tasks
        finally:  # read to the end, or the page is full and the walk let go of it
            self.readers -= 1


@dataclass
class Scan:
    """What a scan of one view found: sorted runs of its tasks, and, for a search, its counts."""

    made: float
    runs: Runs
    counts: dict[str, int] | None = None
    families: dict[str, int] | None = None
    total: int = 0


class Scans:
    """The last scans, by view (without its page), each kept MAX_AGE seconds.

    A scan let go is not freed at once but a ``SWEEP`` of task pointers at a time
    (``sweep``, once per step of UI work): freeing a million pointers touches a million
    tasks, ~8 ms, and while a snapshot's forked child shares the pages, ~200 ms of
    copy-on-write in one step. No more than a scan step looks at: a search keeps few of
    the tasks it walks, so its pointers each touch a page of their own, and 20,000 of them
    held the loop 65-88 ms right after a fork (docs/performance.md, "The ninth session").
    A step adds at most as many pointers as it looks at, so sweeping as many per step
    keeps up."""

    MAX_AGE = 10.0  # the page's own refresh interval
    MOST = 16
    SWEEP = SCAN_STEP

    def __init__(self) -> None:
        self._scans: dict[tuple[Any, ...], Scan] = {}
        #: runs of scans let go, still to be freed
        self._dropped: list[Runs] = []

    def sweep(self) -> None:
        """Let go of up to ``SWEEP`` task pointers of the scans dropped and no longer read."""
        most = self.SWEEP
        dropped = self._dropped
        busy: list[Runs] = []
        while dropped and most > 0:
            runs = dropped.pop()
            if runs.readers:
                busy.append(runs)  # a page still walks it (a deep offset takes several steps)
                continue
            tasks = runs.tasks
            cut = min(most, len(tasks))
            del tasks[len(tasks) - cut :]
            most -= cut
            if tasks:
                dropped.append(runs)
        dropped.extend(busy)

    @property
    def to_sweep(self) -> int:
        """Task pointers of dropped scans not yet let go."""
        return sum(len(runs.tasks) for runs in self._dropped)

    def _drop(self, key: tuple[Any, ...]) -> None:
        self._dropped.append(self._scans.pop(key).runs)

    @staticmethod
    def key(view: View) -> tuple[Any, ...]:
        return (view.boxes, view.family, " ".join(view.search.split()).casefold(), view.sort, view.descending)

    def get(self, view: View) -> Scan | None:
        scan = self._scans.get(self.key(view))
        return scan if scan is not None and 0 <= clock.now() - scan.made < self.MAX_AGE else None

    def put(self, view: View, scan: Scan) -> None:
        now = clock.now()
        for key in [k for k, old in self._scans.items() if not 0 <= now - old.made < self.MAX_AGE]:
            self._drop(key)
        key = self.key(view)
        if key in self._scans:
            self._drop(key)  # two requests scanned the same view at once
        elif len(self._scans) >= self.MOST:
            self._drop(next(iter(self._scans)))  # the oldest
        self._scans[key] = scan


def _box(task: Task) -> str:
    counted = task.counted
    return counted[0] if counted is not None else task.status


Steps = Generator[None, None, Page]


def browse(state: State, view: View, scans: Scans | None = None) -> Steps:
    """Yields None between steps; returns the page. ``scans``: scans to reuse and keep."""
    if view.search.split():
        return (yield from _searched(state, view, scans))
    ui = state.ui
    counts = {box: ui.totals.get(box, 0) for box in BOXES}
    counts[""] = state.count()
    chosen = view.boxes or BOXES
    families: dict[str, int] = {}
    for box in chosen:
        for family, n in ui.families.get(box, {}).items():
            families[family] = families.get(family, 0) + n
    total = families.get(view.family, 0) if view.family is not None else sum(counts[b] for b in chosen)
    page = Page(counts, families, total, backlog=ui.backlog())
    wanted = _filter(view)
    if view.sort == "updated" and view.descending:
        statuses = sorted({STATUS_OF_BOX[box] for box in chosen})
        ordered = newest_first_merge(*(state.newest_first(s) for s in statuses))
        shown = yield from _walk(ordered, wanted, view.offset, view.limit)
    else:
        scan = scans.get(view) if scans is not None else None
        if scan is None:
            runs = Runs()
            for chunk in _candidates(state, view.boxes):
                if view.sort == "name":
                    state.reply_cache.names(chunk)  # kept (within the bound) for the sort key
                runs.add(_sorted_run([t for t in chunk if wanted(t)], view))
                yield None
            scan = Scan(clock.now(), runs)
            if scans is not None:
                scans.put(view, scan)
        shown = yield from _walk(scan.runs.merged(view), None, view.offset, view.limit)
    page.tasks = [(t, _box(t)) for t in shown]
    return page


def _searched(state: State, view: View, scans: Scans | None) -> Steps:
    """One pass over every task: the counts of every box and the families among the tasks
    matching the search, and sorted runs of those in view."""
    scan = scans.get(view) if scans is not None else None
    if scan is None:
        scan = yield from _search(state, view)
        if scans is not None:
            scans.put(view, scan)
    assert scan.counts is not None and scan.families is not None
    page = Page(dict(scan.counts), dict(scan.families), scan.total, backlog=state.ui.backlog())
    shown_tasks = yield from _walk(scan.runs.merged(view), None, view.offset, view.limit)
    page.tasks = [(t, _box(t)) for t in shown_tasks]
    return page


def _search(state: State, view: View) -> Generator[None, None, Scan]:
    terms = [term.casefold() for term in view.search.split()]
    counts = dict.fromkeys(BOXES, 0)
    counts[""] = 0
    families: dict[str, int] = {}
    chosen = set(view.boxes)
    runs = Runs()
    total = 0
    for chunk in state.walk(step=SCAN_STEP):
        in_view = []
        for task in _matching(chunk, terms, state.reply_cache.names(chunk)):
            box = _box(task)
            counts[box] = counts.get(box, 0) + 1
            counts[""] += 1
            if chosen and box not in chosen:
                continue
            families[task.family] = families.get(task.family, 0) + 1
            if view.family is None or task.family == view.family:
                in_view.append(task)
        total += len(in_view)
        runs.add(_sorted_run(in_view, view))
        yield None
    return Scan(clock.now(), runs, counts, families, total)


def _matching(chunk: list[Task], terms: list[str], shown: list[str]) -> list[Task]:
    """The tasks whose display name (``shown``, in order) holds every term (casefolded). The
    names are searched as one string, so the first term costs a few C-level ``find`` calls
    per step rather than a Python test per task (a search over 1M tasks: ~0.3 s of steps instead of ~3 s)."""
    names = [name.casefold() for name in shown]
    # where each name starts in the joined string; terms hold no whitespace, so none spans two names
    starts = list(itertools.accumulate((len(name) + 1 for name in names), initial=0))
    joined = "\n".join(names)
    first, rest = terms[0], terms[1:]
    found: list[Task] = []
    at = joined.find(first)
    while at >= 0:
        i = bisect.bisect_right(starts, at) - 1
        if all(term in names[i] for term in rest):
            found.append(chunk[i])
        at = joined.find(first, starts[i + 1])  # the next name: each task once
    return found


def _filter(view: View) -> Callable[[Task], bool]:
    boxes = set(view.boxes)
    family = view.family

    def wanted(task: Task) -> bool:
        if boxes and _box(task) not in boxes:
            return False
        return family is None or task.family == family

    return wanted


def _candidates(state: State, boxes: tuple[str, ...]) -> Iterable[list[Task]]:
    """The tasks the boxes draw from, a step's worth at a time."""
    if not boxes:
        return state.walk(step=SCAN_STEP)
    return state.walk(sorted({STATUS_OF_BOX[box] for box in boxes}), step=SCAN_STEP)


def _full_key(view: View) -> Callable[[Task], tuple[Any, str]]:
    key = SORT_KEYS.get(view.sort, SORT_KEYS["updated"])
    return lambda t: (key(t), t.id)


def _sorted_run(tasks: list[Task], view: View) -> list[Task]:
    tasks.sort(key=_full_key(view), reverse=view.descending)
    return tasks


def _walk(
    tasks: Iterable[Task | Pause], wanted: Callable[[Task], bool] | None, offset: int, limit: int
) -> Generator[None, None, list[Task]]:
    """The ``limit`` wanted tasks after the first ``offset``, pausing every SCAN_STEP looked at
    and at every ``Pause``."""
    out: list[Task] = []
    for seen, task in enumerate(tasks, 1):
        if seen % SCAN_STEP == 0:
            yield None
        if isinstance(task, Pause):
            yield None
            continue
        if wanted is not None and not wanted(task):
            continue
        if offset:
            offset -= 1
            continue
        out.append(task)
        if len(out) >= limit:
            break
    return out
