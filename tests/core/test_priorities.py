"""Priorities: raised (never lowered), carried down to dependencies, and get_work's order."""

from __future__ import annotations

from collections.abc import Callable

from luigid.scheduler import Scheduler

from .support import Clock, add, work_id


def priority_of(s: Scheduler, task_id: str) -> float:
    return s.dep_graph(task_id=task_id)[task_id]["priority"]


def test_priority_is_propagated_to_deps(sched: Scheduler) -> None:
    add(sched, "A_1")
    add(sched, "B_1", deps=["A_1"])
    add(sched, "C_1", deps=["B_1"], priority=7)
    assert priority_of(sched, "B_1") == 7
    assert priority_of(sched, "A_1") == 7


def test_placeholder_deps_get_the_priority_of_their_dependent(sched: Scheduler) -> None:
    add(sched, "C_1", deps=["A_1"], priority=4)
    add(sched, "A_1", priority=0)
    assert priority_of(sched, "A_1") == 4


def test_priority_is_only_raised(sched: Scheduler) -> None:
    add(sched, "A_1", priority=9)
    add(sched, "B_1", deps=["A_1"], priority=3)
    assert priority_of(sched, "A_1") == 9
    add(sched, "A_1", priority=1)
    assert priority_of(sched, "A_1") == 9
    add(sched, "B_1", deps=["A_1"], priority=12)
    assert priority_of(sched, "A_1") == 12


def test_get_work_takes_highest_priority_first(sched: Scheduler, clock: Clock) -> None:
    for task_id, prio in [("low_1", 1), ("high_1", 10), ("mid_1", 5)]:
        clock.advance(1)
        add(sched, task_id, priority=prio)
    order = [work_id(sched) for _ in range(3)]
    assert order == ["high_1", "mid_1", "low_1"]


def test_equal_priority_goes_oldest_first(sched: Scheduler, clock: Clock) -> None:
    for task_id in ("first_1", "second_1", "third_1"):
        clock.advance(1)
        add(sched, task_id, priority=2)
    # re-adding does not make a task younger
    clock.advance(1)
    add(sched, "first_1", priority=2)
    assert [work_id(sched) for _ in range(3)] == ["first_1", "second_1", "third_1"]


def test_deps_of_a_high_priority_task_jump_the_queue(sched: Scheduler, clock: Clock) -> None:
    add(sched, "other_1", priority=5)
    clock.advance(1)
    add(sched, "dep_1")
    clock.advance(1)
    add(sched, "urgent_1", deps=["dep_1"], priority=50)
    assert work_id(sched) == "dep_1"


def test_priority_ranking_applies_across_resource_holders(
    make_scheduler: Callable[..., Scheduler], clock: Clock
) -> None:
    s = make_scheduler(resources={"r": 1})
    add(s, "low_1", priority=1, resources={"r": 1})
    clock.advance(1)
    add(s, "high_1", priority=3, resources={"r": 1})
    assert work_id(s) == "high_1"
    assert work_id(s) is None  # r is used up


def test_equal_rank_siblings_run_in_the_order_they_were_added(sched: Scheduler, clock: Clock) -> None:
    # the deps' placeholders are all created by this one call, so they tie on priority and age
    deps = ["s_a", "s_b", "s_c", "s_d"]
    add(sched, "parent", deps=deps)
    for dep in ("s_c", "s_a", "s_d", "s_b"):
        clock.advance(1)
        add(sched, dep)
    running: list[str] = []
    for _ in range(4):
        task_id = work_id(sched, current_tasks=running)
        assert task_id is not None
        running.append(task_id)
    assert running == ["s_c", "s_a", "s_d", "s_b"]
