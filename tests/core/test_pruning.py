"""Pruning: stakeholders and remove_delay, dead workers, and prune_on_get_work."""

from __future__ import annotations

import gc
from collections.abc import Callable
from pathlib import Path

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


# ------------------------------------------------------------ rounds in slices
# A prune round after a big fleet stops touches every task; it runs a step of
# ``pruner.step`` tasks at a time, so the daemon can hand the event loop back in between.


def fleet(s: Scheduler, tasks: int = 40) -> None:
    """Two workers sharing pipelines: w1 adds every task, w2 every other one; w1 runs one."""
    for i in range(tasks):
        add(s, f"T_{i}", worker="w1", deps=[f"T_{i - 1}"] if i % 4 else [])
        if i % 2 == 0:
            add(s, f"T_{i}", worker="w2", deps=[f"T_{i - 1}"] if i % 4 else [])
    assert work_id(s, "w1") is not None


def picture(s: Scheduler) -> dict[str, tuple[str, list[str], list[str], float | None]]:
    """What prune decides for each task: status, runners, stakeholders, removal time."""
    return {t.id: (t.status, sorted(t.workers), sorted(t.stakeholders), t.remove) for t in s.state.tasks()}


def run_round(s: Scheduler) -> int:
    """A whole round in the smallest slices; how many calls it took."""
    calls = 1
    while s.prune_slice(1):
        calls += 1
    return calls


def test_a_round_in_slices_ends_where_one_call_would(make_scheduler: Make, clock: Clock) -> None:
    settings = {"remove_delay": 100, "worker_disconnect_delay": 10, "retry_delay": 50}
    whole, sliced = make_scheduler(**settings), make_scheduler(**settings)
    sliced.pruner.step = 3
    for s in (whole, sliced):
        fleet(s)
    clock.advance(11)
    whole.ping(worker="w2")
    sliced.ping(worker="w2")
    assert not whole.prune_slice()  # one call: the round fits in one step
    assert run_round(sliced) > 10
    assert picture(sliced) == picture(whole)
    assert worker_names(sliced) == {"w2"}
    # the task w1 was running failed in the same round
    assert [t for t, (status, *_) in picture(sliced).items() if status == "FAILED"] == ["T_0"]

    clock.advance(11)  # w2 goes silent too
    whole.prune_slice()
    run_round(sliced)
    assert picture(sliced) == picture(whole)
    assert all(remove is not None for *_, remove in picture(sliced).values())
    clock.advance(101)
    whole.prune_slice()
    run_round(sliced)
    assert whole.task_list() == sliced.task_list() == {}


def test_a_gone_worker_leaves_the_list_before_its_tasks_are_settled(
    make_scheduler: Make, clock: Clock
) -> None:
    s = make_scheduler(remove_delay=100, worker_disconnect_delay=10)
    s.pruner.step = 2
    fleet(s)
    clock.advance(11)
    s.ping(worker="w2")
    assert s.prune_slice(1)  # not done after one step
    assert {w.id for w in s.state.workers()} == {"w2"}
    assert any("w1" in t.stakeholders for t in s.state.tasks())  # still being worked through
    # read calls prune too (as luigi's do): worker_list goes on with the round under way
    assert worker_names(s) == {"w2"}
    assert not any("w1" in t.stakeholders or "w1" in t.workers for t in s.state.tasks())


def test_a_worker_back_mid_round_keeps_only_what_it_adds_again(make_scheduler: Make, clock: Clock) -> None:
    s = make_scheduler(remove_delay=100, worker_disconnect_delay=10)
    s.pruner.step = 1
    for name in ("A_1", "B_1", "C_1"):
        add(s, name, worker="w1")
    clock.advance(11)
    assert s.prune_slice(1)
    add(s, "B_1", worker="w1")  # back before prune got through its tasks
    run_round(s)
    state = picture(s)
    assert state["B_1"][1:3] == (["w1"], ["w1"])
    assert state["A_1"][1:3] == state["C_1"][1:3] == ([], [])
    assert state["A_1"][3] is not None and state["B_1"][3] is None  # A and C are due for removal
    assert work_id(s, "w1") == "B_1"
    assert work_id(s, "w1") is None


def test_a_state_saved_mid_round_names_no_gone_worker(
    make_scheduler: Make, clock: Clock, tmp_path: Path
) -> None:
    path = str(tmp_path / "state.pickle")
    s = make_scheduler(remove_delay=100, worker_disconnect_delay=10, state_path=path)
    s.pruner.step = 2
    fleet(s)
    clock.advance(11)
    s.ping(worker="w2")
    assert s.prune_slice(1)
    s.dump()
    reloaded = make_scheduler(remove_delay=100, worker_disconnect_delay=10, state_path=path)
    reloaded.load()
    assert not any("w1" in t.stakeholders or "w1" in t.workers for t in reloaded.state.tasks())
    assert worker_names(reloaded) == {"w2"}


def test_a_task_run_by_a_gone_worker_fails_before_the_round_pauses(
    make_scheduler: Make, clock: Clock
) -> None:
    """Otherwise a count_pending from a worker sharing it would look its runner up
    meanwhile and bring the gone worker back."""
    s = make_scheduler(remove_delay=100, worker_disconnect_delay=10)
    s.pruner.step = 2
    fleet(s)
    clock.advance(11)
    s.ping(worker="w2")
    assert s.prune_slice(1)  # the round pauses with w1's tasks still to settle
    assert status_of(s, "T_0") == "FAILED"
    s.count_pending(worker="w2")
    run_round(s)
    assert {w.id for w in s.state.workers()} == {"w2"}


def test_a_step_takes_at_most_prune_step_timers_even_for_tasks_already_gone(
    make_scheduler: Make, clock: Clock
) -> None:
    s = make_scheduler(remove_delay=100, worker_disconnect_delay=10)
    s.pruner.step = 3
    fleet(s, tasks=12)
    state = s.state
    for task in state.tasks():
        for _ in range(4):  # stale and repeated timers, as rescheduling leaves them
            state.reschedule(task)
    clock.advance(11)
    run_round(s)  # workers gone: every task is due for removal
    clock.advance(101)
    steps = []
    while state.has_prune_work(clock()):
        work, taken = state.take_prune_work(clock(), 3)
        steps.append(taken)
        state.remove_tasks([t.id for t in work if state.may_prune(t)])
    assert steps and max(steps) <= 3
    assert len(steps) > 12 // 3  # the stale timers took steps of their own
    assert s.task_list() == {}


def test_a_slice_leaves_no_pile_in_the_young_generation(make_scheduler: Make, clock: Clock) -> None:
    """Taking a departed worker off its tasks gives each ready one a new rank key and frees
    the old, frozen one: the collector's count stays flat, so without a young collection
    after each slice the new keys piled up until one collection walked them all."""
    s = make_scheduler(remove_delay=100, worker_disconnect_delay=10)
    for i in range(3000):
        add(s, f"T_{i}", worker="w1")
    clock.advance(11)
    gc.collect()
    gc.freeze()  # as the daemon does after loading
    try:
        piles = []
        while s.prune_slice(500):
            piles.append(len(gc.get_objects(generation=0)))
        assert len(piles) > 3
        assert max(piles) < 500
    finally:
        gc.unfreeze()


def test_a_task_whose_timers_are_to_come_is_queued_again_within_the_round(
    make_scheduler: Make, clock: Clock
) -> None:
    """Not held until the round's end: after a fleet departs that would be every task."""
    s = make_scheduler(remove_delay=100, worker_disconnect_delay=10)
    s.pruner.step = 10
    for i in range(100):
        add(s, f"T_{i}", worker="w1")
    clock.advance(11)
    calls = 1
    while s.prune_slice(10):
        calls += 1
    # a step for the workers, twenty to settle the departure (each task is one the worker
    # could run and one it had a stake in), ten to mark the tasks; before, ten more at the
    # end to queue them again
    assert calls <= 31
    assert all(t.remove == clock() + 100 for t in s.state.tasks())
    clock.advance(101)
    while s.prune_slice(10):
        pass
    assert s.task_list() == {}


def test_a_due_timer_that_changes_nothing_does_not_keep_the_round_going(
    make_scheduler: Make, clock: Clock
) -> None:
    """A failed task whose retry time has come, with retrying off (a negative retry_delay):
    prune looks at it once per round, and queues it again only at the round's end."""
    s = make_scheduler(remove_delay=100, worker_disconnect_delay=10, retry_delay=-1)
    add(s, "A_1", worker="w1", status="FAILED")
    task = s.state.get_task("A_1")
    assert task is not None
    task.retry = clock() - 1
    s.state.reschedule(task)
    s.ping(worker="w1")
    assert not s.prune_slice(10)  # the round ends
    assert status_of(s, "A_1") == "FAILED"
    assert s.state.has_prune_work(clock())  # its timer is queued again for the next round
