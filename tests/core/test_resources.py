"""Resources: limits, the default of 1, greedy reservation for other workers, and the RPCs."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from luigid.scheduler import Scheduler

from .support import Clock, add, work, work_id

Make = Callable[..., Scheduler]


def test_configured_limit_is_never_exceeded(make_scheduler: Make, clock: Clock) -> None:
    s = make_scheduler(resources={"db": 2})
    for i in range(4):
        clock.advance(1)
        add(s, f"T_{i}", resources={"db": 1})
    assert work_id(s) == "T_0"
    assert work_id(s) == "T_1"
    assert work_id(s) is None
    add(s, "T_0", status="DONE", runnable=None)
    assert work_id(s) == "T_2"


def test_task_needing_more_than_exists_never_runs(make_scheduler: Make) -> None:
    s = make_scheduler(resources={"db": 2})
    add(s, "big_1", resources={"db": 3})
    assert work_id(s) is None


def test_unconfigured_resource_defaults_to_one(make_scheduler: Make, clock: Clock) -> None:
    s = make_scheduler()
    add(s, "A_1", resources={"gpu": 1})
    clock.advance(1)
    add(s, "A_2", resources={"gpu": 1})
    add(s, "A_3", resources={"gpu": 2})
    assert work_id(s) == "A_1"
    assert work_id(s) is None


def test_zero_amount_is_always_available(make_scheduler: Make, clock: Clock) -> None:
    s = make_scheduler(resources={"db": 0})
    add(s, "A_1", resources={"db": 0})
    assert work_id(s) == "A_1"


def test_low_priority_worker_does_not_starve_high_priority_worker(make_scheduler: Make, clock: Clock) -> None:
    """Both workers want the same resource; the low one may not take what the high one needs."""
    s = make_scheduler(resources={"r": 2})
    work(s, "high")  # both workers are active (asked for work recently)
    work(s, "low")
    for i in range(3):
        clock.advance(1)
        add(s, f"low_{i}", worker="low", priority=1, resources={"r": 1})
    clock.advance(1)
    add(s, "high_0", worker="high", priority=10, resources={"r": 2})
    # high_0 is not runnable by "low", but "high" could claim it: r is reserved for it
    assert work_id(s, "low") is None
    assert work_id(s, "high") == "high_0"


def test_reservation_only_counts_active_workers(make_scheduler: Make, clock: Clock) -> None:
    s = make_scheduler(resources={"r": 2}, worker_disconnect_delay=10)
    work(s, "high")
    clock.advance(11)  # "high" has not asked for work within worker_disconnect_delay
    add(s, "low_0", worker="low", priority=1, resources={"r": 1})
    add(s, "high_0", worker="high", priority=10, resources={"r": 2})
    assert work_id(s, "low") == "low_0"


@pytest.mark.parametrize(("processes", "low_gets"), [(1, 2), (2, 1)])
def test_reservation_respects_how_many_processes_a_worker_has(
    make_scheduler: Make, clock: Clock, processes: int, low_gets: int
) -> None:
    s = make_scheduler(resources={"r": 3})
    s.add_worker(worker="high", info=[["workers", processes]])
    work(s, "high")
    work(s, "low")
    add(s, "high_0", worker="high", priority=10, resources={"r": 1})
    clock.advance(1)
    add(s, "high_1", worker="high", priority=9, resources={"r": 1})
    for i in range(3):
        clock.advance(1)
        add(s, f"low_{i}", worker="low", priority=1, resources={"r": 1})
    # "high" can claim one r per process at a time: that much stays reserved for it
    got = [work_id(s, "low") for _ in range(3)]
    assert got == [f"low_{i}" for i in range(low_gets)] + [None] * (3 - low_gets)


def test_update_resource(make_scheduler: Make) -> None:
    s = make_scheduler(resources={"r": 1})
    add(s, "A_1", resources={"r": 2})
    assert work_id(s) is None
    assert s.update_resource(resource="r", amount=2) is True
    assert work_id(s) == "A_1"
    assert s.update_resource(resource="r", amount=-1) is False
    assert s.update_resource(resource="r", amount="3") is False
    assert [(r["name"], r["num_total"]) for r in s.resource_list()] == [("r", 2)]


def test_update_resources_adds_and_changes(make_scheduler: Make) -> None:
    s = make_scheduler(resources={"r": 1})
    s.update_resources(r=4, q=2)
    assert {r["name"]: r["num_total"] for r in s.resource_list()} == {"r": 4, "q": 2}


def test_resource_list_shows_usage_and_consumers(make_scheduler: Make, clock: Clock) -> None:
    s = make_scheduler(resources={"r": 5, "idle": 1})
    add(s, "A_1", resources={"r": 2})
    clock.advance(1)
    add(s, "B_1", resources={"r": 1})
    assert work_id(s) == "A_1"
    listing = {r["name"]: r for r in s.resource_list()}
    assert listing["r"]["num_total"] == 5
    assert listing["r"]["num_used"] == 2
    assert listing["r"]["num_consumer"] == 1
    assert set(listing["r"]["running"]) == {"A_1"}
    idle = {"name": "idle", "num_total": 1, "num_used": 0, "num_consumer": 0, "running": {}}
    assert listing["idle"] == idle


def test_decrease_running_task_resources_frees_them(make_scheduler: Make, clock: Clock) -> None:
    s = make_scheduler(resources={"r": 3})
    add(s, "A_1", resources={"r": 3})
    clock.advance(1)
    add(s, "B_1", resources={"r": 1})
    assert work_id(s) == "A_1"
    assert work_id(s) is None
    assert s.get_running_task_resources(task_id="A_1") == {"taskId": "A_1", "resources": {"r": 3}}
    s.decrease_running_task_resources(task_id="A_1", decrease_resources={"r": 1, "other": 5})
    assert s.get_running_task_resources(task_id="A_1") == {"taskId": "A_1", "resources": {"r": 2}}
    assert work_id(s) == "B_1"
    # never below zero; the declared resources are untouched
    s.decrease_running_task_resources(task_id="A_1", decrease_resources={"r": 10})
    assert s.get_running_task_resources(task_id="A_1")["resources"] == {"r": 0}
    assert s.task_list(status="RUNNING")["A_1"]["resources"] == {"r": 3}


def test_decrease_is_ignored_unless_running(make_scheduler: Make) -> None:
    s = make_scheduler(resources={"r": 3})
    add(s, "A_1", resources={"r": 3})
    s.decrease_running_task_resources(task_id="A_1", decrease_resources={"r": 1})
    s.decrease_running_task_resources(task_id="missing", decrease_resources={"r": 1})
    assert s.get_running_task_resources(task_id="A_1") == {"taskId": "A_1", "resources": None}
    assert s.get_running_task_resources(task_id="missing") == {"taskId": "missing", "resources": None}
