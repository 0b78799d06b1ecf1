"""Pruning: stakeholders and remove_delay, dead workers, and prune_on_get_work."""

from __future__ import annotations

from collections.abc import Callable

from luigid.scheduler import Scheduler

from .support import Clock, add, status_of, work, work_id

Make = Callable[..., Scheduler]


def worker_names(s: Scheduler) -> set[str]:
    return {w["name"] for w in s.worker_list()}


def test_task_is_kept_while_a_stakeholder_lives(make_scheduler: Make, clock: Clock) -> None:
    s = make_scheduler(remove_delay=100, worker_disconnect_delay=10)
    add(s, "A_1", worker="w1")
    for _ in range(30):
        clock.advance(9)
        s.ping(worker="w1")
        s.prune()
    assert status_of(s, "A_1") == "PENDING"


def test_task_is_removed_remove_delay_after_its_last_stakeholder(make_scheduler: Make, clock: Clock) -> None:
    s = make_scheduler(remove_delay=100, worker_disconnect_delay=10)
    add(s, "A_1", worker="w1")
    add(s, "A_1", worker="w2")
    add(s, "B_1", worker="w2", deps=["A_1", "X_1"])
    clock.advance(11)
    s.ping(worker="w2")
    s.prune()  # w1 is gone; w2 still wants A_1
    assert worker_names(s) == {"w2"}
    clock.advance(11)
    s.prune()  # w2 is gone too: the removal clock starts now
    assert worker_names(s) == set()
    clock.advance(99)
    s.prune()
    assert status_of(s, "A_1") == "PENDING"
    assert status_of(s, "X_1") == "UNKNOWN"  # placeholders are kept like any task
    clock.advance(2)
    s.prune()
    assert s.task_list() == {}


def test_re_adding_a_task_cancels_its_removal(make_scheduler: Make, clock: Clock) -> None:
    s = make_scheduler(remove_delay=100, worker_disconnect_delay=10)
    add(s, "A_1", worker="w1")
    clock.advance(11)
    s.prune()
    clock.advance(50)
    add(s, "A_1", worker="w2")
    clock.advance(60)
    s.ping(worker="w2")
    s.prune()
    assert status_of(s, "A_1") == "PENDING"


def test_dead_workers_running_task_fails_and_is_retried(make_scheduler: Make, clock: Clock) -> None:
    s = make_scheduler(retry_delay=30, worker_disconnect_delay=10, remove_delay=1000)
    add(s, "A_1", worker="w1")
    add(s, "A_1", worker="w2")
    assert work_id(s, "w1") == "A_1"
    clock.advance(5)
    s.ping(worker="w2")
    clock.advance(6)
    s.prune()
    assert worker_names(s) == {"w2"}
    assert status_of(s, "A_1") == "FAILED"
    assert s.task_list(status="FAILED")["A_1"]["worker_running"] is None
    clock.advance(31)
    work(s, "w2")  # keeps w2 alive, but the task is not retried before a prune
    s.prune()
    assert work_id(s, "w2") == "A_1"


def test_live_workers_running_task_is_untouched(make_scheduler: Make, clock: Clock) -> None:
    s = make_scheduler(worker_disconnect_delay=10)
    add(s, "A_1")
    assert work_id(s) == "A_1"
    for _ in range(5):
        clock.advance(9)
        s.ping(worker="w1")
        s.prune()
    assert status_of(s, "A_1") == "RUNNING"


def test_worker_list_forgets_silent_workers(make_scheduler: Make, clock: Clock) -> None:
    s = make_scheduler(worker_disconnect_delay=10)
    s.add_worker(worker="w1", info=[["host", "h1"], ["workers", 2]])
    work(s, "w1")
    clock.advance(5)
    work(s, "w2")
    listing = s.worker_list()
    assert [w["name"] for w in listing] == ["w2", "w1"]  # newest first
    assert listing[1]["host"] == "h1"
    assert listing[1]["workers"] == 2
    clock.advance(6)
    assert worker_names(s) == {"w2"}


def test_prune_on_get_work(make_scheduler: Make, clock: Clock) -> None:
    s = make_scheduler(prune_on_get_work=True, retry_delay=5, worker_disconnect_delay=10)
    add(s, "A_1", worker="w1")
    add(s, "A_1", worker="w2")
    assert work_id(s, "w1") == "A_1"
    clock.advance(11)
    add(s, "A_1", worker="w2")
    clock.advance(6)
    # this get_work prunes: w1 is dead, A_1 failed, and its retry delay has passed
    assert work_id(s, "w2") is None
    assert status_of(s, "A_1") == "FAILED"
    clock.advance(6)
    assert work_id(s, "w2") == "A_1"


def test_without_prune_on_get_work_nothing_is_pruned_by_get_work(make_scheduler: Make, clock: Clock) -> None:
    s = make_scheduler(retry_delay=5, worker_disconnect_delay=10)
    add(s, "A_1", worker="w1")
    assert work_id(s, "w1") == "A_1"
    clock.advance(100)
    work(s, "w2")
    # count_pending does not prune either: w1 is still known to run A_1
    assert s.count_pending(worker="w1")["running_tasks"] == [{"task_id": "A_1", "worker": "w1"}]
