"""The UI's counters and task browser (luigid.core.uicounts, luigid.core.browse): status
boxes with upstream failed/disabled, family counts, and pages in the order the page sorts
by, all checked against answers worked out from every task."""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable
from typing import Any

import pytest

from luigid.config import SchedulerConfig
from luigid.core.browse import SCAN_STEP, SORT_KEYS, Page, Scans, View, browse
from luigid.core.pauses import LOOK_STEP
from luigid.scheduler import Scheduler
from tests.core.support import Clock, add
from tests.support.invariants import check_invariants, check_ui_counts


def run(sched: Scheduler, view: View) -> tuple[Page, int]:
    """The page and how many times the browser paused on the way."""
    steps = browse(sched.state, view)
    pauses = 0
    while True:
        try:
            next(steps)
            pauses += 1
        except StopIteration as done:
            page: Page = done.value
            return page, pauses


def settle(sched: Scheduler) -> None:
    while sched.state.ui.settle(2):
        pass


def boxes(sched: Scheduler) -> dict[str, int]:
    settle(sched)
    page, _ = run(sched, View())
    return {box: n for box, n in page.counts.items() if n and box}


def test_upstream_boxes_follow_failures_down_the_graph(make_scheduler: Callable[..., Scheduler]) -> None:
    s = make_scheduler()
    add(s, "Root", family="Root", deps=["Mid"])
    add(s, "Mid", family="Mid", deps=["Leaf", "Other"])
    add(s, "Leaf", family="Leaf", status="FAILED")
    add(s, "Other", family="Other")
    assert boxes(s) == {"FAILED": 1, "PENDING": 1, "UPSTREAM_FAILED": 2}
    add(s, "Other", family="Other", status="DISABLED")  # disabled is the more severe
    assert boxes(s) == {"FAILED": 1, "DISABLED": 1, "UPSTREAM_DISABLED": 2}
    for task_id in ("Root", "Mid"):
        assert s.task_list("PENDING", "UPSTREAM_DISABLED")[task_id]
    add(s, "Other", family="Other", status="DONE")
    add(s, "Leaf", family="Leaf", status="PENDING")  # retried: nothing wrong upstream any more
    assert boxes(s) == {"DONE": 1, "PENDING": 3}
    add(s, "Leaf", family="Leaf", status="FAILED")
    assert boxes(s)["UPSTREAM_FAILED"] == 2
    s.state.remove_tasks(["Leaf"])  # an unknown dep passes nothing on
    assert boxes(s) == {"DONE": 1, "PENDING": 2}
    check_ui_counts(s)


def test_counts_wait_for_the_backlog_and_say_so(make_scheduler: Callable[..., Scheduler]) -> None:
    s = make_scheduler()
    add(s, "Leaf", family="Leaf")
    for i in range(50):
        add(s, f"T{i}", family="T", deps=["Leaf"])
    settle(s)
    add(s, "Leaf", family="Leaf", status="FAILED")
    page, _ = run(s, View())
    assert page.backlog > 0 and page.counts["UPSTREAM_FAILED"] == 0  # not yet worked out
    assert s.state.ui.settle(10)  # a budget smaller than the work: some is left
    settle(s)
    page, _ = run(s, View())
    assert page.backlog == 0 and page.counts["UPSTREAM_FAILED"] == 50


def test_family_counts_follow_the_boxes_chosen(make_scheduler: Callable[..., Scheduler]) -> None:
    s = make_scheduler()
    for i in range(3):
        add(s, f"A{i}", family="A")
    add(s, "B0", family="B", status="DONE")
    add(s, "C0", deps=["Placeholder"], family="C")
    page, _ = run(s, View())
    # the dep the scheduler knows only by id is an UNKNOWN task without a family, as in luigi
    assert page.families == {"A": 3, "B": 1, "C": 1, "": 1} and page.counts["UNKNOWN"] == 1
    page, _ = run(s, View(boxes=("DONE",)))
    assert page.families == {"B": 1} and page.total == 1
    page, _ = run(s, View(family="A"))
    assert page.total == 3 and {t.family for t, _ in page.tasks} == {"A"}
    add(s, "Placeholder", family="P")
    page, _ = run(s, View())
    assert page.families == {"A": 3, "B": 1, "C": 1, "P": 1} and page.counts[""] == 6


@pytest.mark.parametrize("sort", sorted(SORT_KEYS))
@pytest.mark.parametrize("descending", [True, False])
def test_pages_are_the_full_sort_cut_up(
    make_scheduler: Callable[..., Scheduler], clock: Clock, sort: str, descending: bool
) -> None:
    rng = random.Random(7)
    s = make_scheduler()
    for i in range(400):
        clock.advance(rng.choice([0, 0, 1]))  # many tasks share a time: ties go by id
        add(
            s,
            f"T{i:03d}",
            family=rng.choice("ABC"),
            params={"n": str(rng.randrange(60))},
            priority=rng.randrange(5),
            status=rng.choice(["PENDING", "PENDING", "DONE", "FAILED"]),
        )
    key = SORT_KEYS[sort]
    everything = sorted(s.state.tasks(), key=lambda t: (key(t), t.id), reverse=descending)
    for view in (
        View(sort=sort, descending=descending, offset=0, limit=50),
        View(sort=sort, descending=descending, offset=137, limit=100),
        View(boxes=("PENDING", "FAILED"), family="B", sort=sort, descending=descending, offset=5, limit=20),
        View(search="n=1", sort=sort, descending=descending, offset=3, limit=30),
    ):
        page, _ = run(s, view)
        terms = view.search.split()
        wanted = [
            t
            for t in everything
            if (not view.boxes or t.status in view.boxes)
            and (view.family is None or t.family == view.family)
            and all(term in t.pretty_id.casefold() for term in terms)
        ]
        assert page.total == len(wanted)
        assert [t.id for t, _ in page.tasks] == [t.id for t in wanted[view.offset : view.offset + view.limit]]


def test_search_counts_every_box_among_the_matches(make_scheduler: Callable[..., Scheduler]) -> None:
    s = make_scheduler()
    for i in range(30):
        add(s, f"T{i}", family="Daily", params={"day": str(i)}, status="DONE" if i % 3 == 0 else "PENDING")
    add(s, "X", family="Weekly", params={"day": "1"})
    page, _ = run(s, View(search="DAILY day=1", boxes=("PENDING",)))
    # day=1, 10-19: 11 tasks, of which 1, 10, 13, 16, 19 ... i % 3 == 0 are done (12, 15, 18)
    assert page.counts["DONE"] == 3 and page.counts["PENDING"] == 8 and page.counts[""] == 11
    assert page.total == 8 and page.families == {"Daily": 8}


def test_a_long_walk_pauses(make_scheduler: Callable[..., Scheduler]) -> None:
    s = make_scheduler()
    for i in range(3 * SCAN_STEP):
        s.add_task(worker="w", task_id=f"T{i}", family="A" if i else "Rare", status="PENDING")
    page, pauses = run(s, View(family="Rare"))  # the one Rare task is the oldest: found last
    assert [t.id for t, _ in page.tasks] == ["T0"] and pauses >= 2
    page, pauses = run(s, View(search="A("))
    assert page.total == 3 * SCAN_STEP - 1 and pauses >= 3


def _newest_removed(s: Scheduler, n: int) -> None:
    """Remove the ``n`` newest PENDING tasks: what a walk newest first meets before the rest."""
    pending = sorted(s.state.tasks_by_status("PENDING"), key=lambda t: t.updated)
    s.state.remove_tasks([t.id for t in pending[-n:]])


@pytest.mark.parametrize("reloaded", [False, True])
def test_a_walk_pauses_while_it_skips_tasks_that_left(tmp_path: Any, clock: Clock, reloaded: bool) -> None:
    # 80-90 ms in one step at 1M tasks, when a departed fleet's 200k tasks were removed
    config = SchedulerConfig(state_path=str(tmp_path / "state.pickle"))
    s = Scheduler(config)
    skipped = 2 * LOOK_STEP  # fewer than half: no compaction has taken them out yet
    for i in range(2 * skipped + 5):
        clock.advance(1)
        add(s, f"T{i:05d}", family="A")
    if reloaded:  # the tasks loaded at start-up are walked from their own sorted list
        s.dump()
        s = Scheduler(config)
        s.load()
    _newest_removed(s, skipped)
    page, pauses = run(s, View(boxes=("PENDING",), limit=5))
    assert [t.id for t, _ in page.tasks] == [f"T{i:05d}" for i in reversed(range(skipped, skipped + 5))]
    assert pauses >= 2
    check_ui_counts(s)


def test_after_a_reload_the_order_still_holds(tmp_path: Any, clock: Clock) -> None:
    config = SchedulerConfig(state_path=str(tmp_path / "state.pickle"))
    s = Scheduler(config)
    ids = [f"T{i}" for i in range(20)]
    for task_id in reversed(ids):  # added newest-id first, updated in the other order below
        add(s, task_id, family="A")
    for task_id in ids:
        clock.advance(1)
        add(s, task_id, family="A", status="FAILED")
        add(s, task_id, family="A", status="PENDING")
    s.dump()
    again = Scheduler(config)
    again.load()
    clock.advance(1)
    add(again, "T3", family="A", status="DONE")
    add(again, "New", family="A")
    page, _ = run(again, View(boxes=("PENDING",)))
    assert [t.id for t, _ in page.tasks] == ["New", *reversed([i for i in ids if i != "T3"])]
    check_ui_counts(again)


def test_tasks_leaving_a_loaded_status_are_let_go(tmp_path: Any, clock: Clock) -> None:
    config = SchedulerConfig(state_path=str(tmp_path / "state.pickle"))
    s = Scheduler(config)
    for i in range(20):
        clock.advance(1)
        add(s, f"T{i}", family="A")
    s.dump()
    again = Scheduler(config)
    again.load()
    for i in range(15):
        add(again, f"T{i}", family="A", status="DONE")
    again.state.remove_tasks(["T15"])
    settle(again)
    # the loaded PENDING list no longer holds the 16 tasks that left it
    assert [t.id for t in again.state.ui.restored["PENDING"]] == ["T16", "T17", "T18", "T19"]
    page, _ = run(again, View(boxes=("PENDING",)))
    assert [t.id for t, _ in page.tasks] == ["T19", "T18", "T17", "T16"]
    check_ui_counts(again)


def test_a_scan_serves_every_page_and_poller_for_a_while(
    make_scheduler: Callable[..., Scheduler], clock: Clock
) -> None:
    s = make_scheduler()
    for i in range(3 * SCAN_STEP):
        s.add_task(worker="w", task_id=f"T{i}", family="A", params={"n": str(i)}, status="PENDING")
    scans = Scans()

    def page(view: View) -> tuple[Page, int]:
        steps = browse(s.state, view, scans)
        pauses = 0
        while True:
            try:
                next(steps)
                pauses += 1
            except StopIteration as done:
                return done.value, pauses

    for view in (View(search="n=1"), View(sort="name")):
        first, pauses = page(view)
        assert pauses >= 3  # scanned
        again, pauses = page(dataclasses.replace(view, offset=100))
        assert pauses == 0 and again.total == first.total  # the same scan, another page
        assert [t.id for t, _ in again.tasks] == [
            t.id for t, _ in run(s, dataclasses.replace(view, offset=100))[0].tasks
        ]
    s.add_task(worker="w", task_id="New", family="A", params={"n": "1"}, status="PENDING")
    assert (
        page(View(search="n=1"))[0].counts[""] == run(s, View(search="n=1"))[0].counts[""] - 1
    )  # kept a while
    clock.advance(Scans.MAX_AGE)
    assert (
        page(View(search="n=1"))[0].counts[""] == run(s, View(search="n=1"))[0].counts[""]
    )  # then made again


def _steps(sched: Scheduler, view: View, between: Callable[[int], None]) -> Page:
    """The page, with ``between(n)`` run after the n-th step, as other requests would."""
    steps = browse(sched.state, view)
    n = 0
    while True:
        try:
            next(steps)
        except StopIteration as done:
            page: Page = done.value
            return page
        n += 1
        between(n)


@pytest.mark.parametrize("search", ["", "n="])
def test_a_scan_stays_right_while_tasks_come_go_and_move_between_its_steps(
    make_scheduler: Callable[..., Scheduler], search: str
) -> None:
    n = 3 * SCAN_STEP
    s = make_scheduler()

    def change(step: int) -> None:
        if step != 1:
            return
        # the first step looked at T00000-T01999
        add(s, "T00005", family="A", params={"n": "00005"}, status="FAILED")  # looked at: still shown
        add(s, "T02500", family="A", params={"n": "02500"}, status="FAILED")  # left before it was looked at
        s.state.remove_tasks(["T02600"])
        add(s, "T02700", family="A", params={"n": "02700"}, status="FAILED")
        add(s, "T02700", family="A", params={"n": "02700"}, status="PENDING")  # left and came back
        add(s, "New", family="A", params={"n": "00001"})  # entered after the scan began
        for i in range(3000, 3100):  # enough to resize the status index's dict
            s.state.remove_tasks([f"T{i:05d}"])
            add(s, f"T{i:05d}", family="A", params={"n": f"{i:05d}"})

    gone = {"T02500", "T02600", "T02700", *(f"T{i:05d}" for i in range(3000, 3100))}
    expected = [f"T{i:05d}" for i in range(n) if f"T{i:05d}" not in gone]
    view = View(boxes=("PENDING", "FAILED"), search=search, sort="name", descending=False, limit=1000)
    for offset in (0, 1000, 2450, len(expected) - 500):
        s = make_scheduler()
        for i in range(n):
            add(s, f"T{i:05d}", family="A", params={"n": f"{i:05d}"})
        page = _steps(s, dataclasses.replace(view, offset=offset), change)
        # without a search the counts are the counters', as the state is now
        assert page.total == (len(expected) if search else s.state.count("PENDING") + s.state.count("FAILED"))
        assert [t.id for t, _ in page.tasks] == expected[offset : offset + 1000]
        if search:
            assert page.counts[""] == len(expected)
            # each task counted in the box it was in when the scan looked at it
            assert page.counts["PENDING"] == len(expected) and page.counts["FAILED"] == 0
        check_invariants(s)


def test_the_newest_first_walk_stays_right_while_tasks_come_go_and_move_between_its_steps(
    make_scheduler: Callable[..., Scheduler], clock: Clock
) -> None:
    s = make_scheduler()
    n = 3 * SCAN_STEP
    for i in range(n):
        clock.advance(1)
        add(s, f"T{i:05d}", family="A")
    started = clock.now

    def change(step: int) -> None:
        clock.advance(1)
        add(s, f"Late{step}", family="A")  # newer than anything the walk has passed
        s.state.remove_tasks([f"T{n - 1 - 2 * SCAN_STEP - step:05d}"])  # ahead of the walk
        add(s, f"T{n - 10 - step:05d}", family="A", status="FAILED")  # behind it

    page = _steps(s, View(boxes=("PENDING",), offset=2 * SCAN_STEP, limit=100), change)
    shown = [t for t, _ in page.tasks]
    assert len(shown) == 100 and len({t.id for t in shown}) == 100
    assert all(s.state.get_task(t.id) is t and t.updated <= started for t in shown)
    assert shown == sorted(shown, key=lambda t: (t.updated, t.id), reverse=True)
    check_invariants(s)
