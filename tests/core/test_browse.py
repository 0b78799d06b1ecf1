"""The task browser's kept scans (``luigid.core.browse``) and the garbage collector: what a
scan keeps for its view is walked by no collection, is freed with the view, and merges its
runs into the view's order."""

from __future__ import annotations

import gc
from collections.abc import Callable
from typing import Any

import pytest

from luigid.core import browse
from luigid.core.browse import Page, Scans, View
from luigid.core.model import Task
from luigid.scheduler import Scheduler

from .support import Clock, add

Make = Callable[..., Scheduler]
TASKS = 2 * browse.SCAN_STEP + 500  # three runs


@pytest.fixture
def sched(make_scheduler: Make) -> Scheduler:
    s = make_scheduler()
    for n in range(TASKS):
        # names and priorities out of id order, so that every order differs from the walk's
        add(s, f"Job_{n}", family="Job", params={"k": f"{(n * 7919) % TASKS:05d}"}, priority=n % 17)
    return s


def run(steps: browse.Steps) -> Page:
    while True:
        try:
            next(steps)
        except StopIteration as done:
            return done.value


def kept_tasks(scans: Scans) -> list[Task]:
    (scan,) = scans._scans.values()
    return scan.runs.tasks


@pytest.mark.parametrize("view", [View(sort="name", descending=False), View(search="job", sort="priority")])
def test_a_kept_scan_is_walked_by_no_collection_and_freed_with_its_view(
    collector_on: None, sched: Scheduler, view: View
) -> None:
    scans = Scans()
    run(browse.browse(sched.state, view, scans))
    kept = kept_tasks(scans)
    assert len(kept) == TASKS
    gc.collect()
    assert id(kept) not in {id(o) for o in gc.get_objects()}  # frozen: in no generation
    frozen = gc.get_freeze_count()
    del kept
    scans._scans.clear()
    assert gc.get_freeze_count() < frozen  # reference counting freed it


@pytest.mark.parametrize(
    "view, key",
    [
        (View(sort="name", descending=False), lambda t: (t.pretty_id.casefold(), t.id)),
        (View(sort="priority"), lambda t: (t.priority, t.id)),
        (View(search="job", sort="name"), lambda t: (t.pretty_id.casefold(), t.id)),
    ],
)
def test_the_runs_merge_into_the_views_order(
    sched: Scheduler, view: View, key: Callable[[Task], Any]
) -> None:
    expected = sorted(sched.state.tasks(), key=key, reverse=view.descending)
    scans = Scans()
    for offset in (0, browse.SCAN_STEP - 3, TASKS - 50):
        page = run(browse.browse(sched.state, View(**{**view.__dict__, "offset": offset}), scans))
        assert [t.id for t, _ in page.tasks] == [t.id for t in expected[offset : offset + view.limit]]
    assert len(scans._scans) == 1  # later pages came from the kept scan


def test_display_names_are_kept_as_strings_no_collection_tracks(sched: Scheduler) -> None:
    """Past the reply cache's bound every name made evicts another, so the collector's young
    count never grows and cached tuples would pile up unwalked until one collection walked
    them all at once; strings are never tracked."""
    tasks = list(sched.state.tasks())
    names = sched.state.reply_cache.names(tasks)
    assert names == [t.pretty_id for t in tasks]
    held = [t.display for t in tasks if t.display is not None]
    assert held and not any(gc.is_tracked(name) for name in held)


def test_a_scan_let_go_is_freed_a_sweep_at_a_time(
    collector_on: None, sched: Scheduler, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Freeing a million pointers at once touches a million tasks: with a snapshot's child
    alive, ~200 ms of copy-on-write in one step."""
    monkeypatch.setattr(Scans, "SWEEP", 1000)  # several sweeps for these tasks
    scans, other = Scans(), Scans()
    view = View(sort="priority")
    run(browse.browse(sched.state, view, scans))
    run(browse.browse(sched.state, view, other))
    first = kept_tasks(scans)
    scans.put(view, other._scans[Scans.key(view)])  # as a second scan of the same view does
    assert scans.to_sweep == TASKS and len(first) == TASKS
    frozen = gc.get_freeze_count()
    sweeps = 0
    while scans.to_sweep:
        before = scans.to_sweep
        scans.sweep()
        sweeps += 1
        assert before - scans.to_sweep == min(before, Scans.SWEEP)
    assert sweeps == -(-TASKS // Scans.SWEEP) and not first
    del first
    assert gc.get_freeze_count() < frozen
    assert kept_tasks(scans)  # the scan kept for the view is untouched


def test_sweeping_keeps_up_with_a_browser_polling_a_search(sched: Scheduler, clock: Clock) -> None:
    """A sweep frees no more than a step looks at (a search's pointers each touch a page of
    their own: 20,000 of them held the loop 65-88 ms right after a snapshot's fork), and as
    the handler sweeps once per step, what a poller's scans drop is freed as fast."""
    scans = Scans()
    view = View(search="job", sort="priority")
    backlog = []
    for _ in range(6):
        clock.advance(Scans.MAX_AGE + 1)  # the page refreshes: the kept scan is too old
        steps = browse.browse(sched.state, view, scans)
        while True:
            scans.sweep()  # as the handler does before each step
            try:
                next(steps)
            except StopIteration:
                break
        backlog.append(scans.to_sweep)
    assert max(backlog) <= TASKS  # never more than the one scan the last refresh let go


def test_a_scan_still_read_by_a_page_is_not_swept(sched: Scheduler, monkeypatch: pytest.MonkeyPatch) -> None:
    """A deep page is walked over several steps: the scan it reads may be let go meanwhile
    (replaced, or past its age), and must stay whole until the walk is over."""
    monkeypatch.setattr(Scans, "SWEEP", 1000)
    scans, other = Scans(), Scans()
    view = View(sort="priority")
    run(browse.browse(sched.state, view, scans))
    run(browse.browse(sched.state, view, other))
    runs = scans._scans[Scans.key(view)].runs
    reading = runs.merged(view)
    first = next(reading)
    scans.put(view, other._scans[Scans.key(view)])
    scans.sweep()
    assert scans.to_sweep == TASKS  # nothing let go while read
    rest = list(reading)
    assert [first, *rest] == sorted(runs.tasks, key=lambda t: (t.priority, t.id), reverse=True)
    scans.sweep()
    assert scans.to_sweep == TASKS - Scans.SWEEP
