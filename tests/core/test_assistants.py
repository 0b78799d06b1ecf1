"""Assistant workers run any runnable task, without becoming its stakeholders."""

from __future__ import annotations

from luigid.scheduler import Scheduler

from .support import Clock, add, status_of, work, work_id


def test_assistant_runs_tasks_it_never_added(sched: Scheduler) -> None:
    add(sched, "A_1", worker="owner")
    assert work_id(sched, "helper") is None
    assert work_id(sched, "helper", assistant=True) == "A_1"
    assert sched.task_list(status="RUNNING")["A_1"]["worker_running"] == "helper"


def test_assistant_skips_tasks_nobody_can_run(sched: Scheduler) -> None:
    add(sched, "A_1", worker="owner", runnable=False)
    assert work_id(sched, "helper", assistant=True) is None


def test_assistant_flag_is_recorded_in_worker_info(sched: Scheduler) -> None:
    work(sched, "helper", assistant=True)
    entry = next(w for w in sched.worker_list() if w["name"] == "helper")
    assert entry["assistant"] is True


def test_assistant_reports_do_not_make_it_a_stakeholder(sched: Scheduler, clock: Clock) -> None:
    add(sched, "A_1", worker="owner")
    assert work_id(sched, "helper", assistant=True) == "A_1"
    add(sched, "A_1", worker="helper", status="DONE", runnable=None, assistant=True)
    assert status_of(sched, "A_1") == "DONE"
    # the owner goes away; with no stakeholder left the task is forgotten after remove_delay
    clock.advance(11)
    work(sched, "helper", assistant=True)
    sched.prune()
    clock.advance(1001)
    work(sched, "helper", assistant=True)
    sched.prune()
    assert status_of(sched, "A_1") is None


def test_running_task_of_an_assistant_survives_its_owner(sched: Scheduler, clock: Clock) -> None:
    add(sched, "A_1", worker="owner")
    assert work_id(sched, "helper", assistant=True) == "A_1"
    clock.advance(11)
    work(sched, "helper", assistant=True, current_tasks=["A_1"])
    sched.prune()  # "owner" is gone, but the assistant running A_1 is alive
    assert status_of(sched, "A_1") == "RUNNING"
