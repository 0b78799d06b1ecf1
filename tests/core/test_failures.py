"""Failures: retry_delay, disabling (count in window, hard timeout), re-enabling, admin fixes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from luigid.scheduler import Scheduler

from .support import Clock, add, status_of, work_id

Make = Callable[..., Scheduler]


def fail(s: Scheduler, task_id: str, **kwargs: Any) -> None:
    """Run ``task_id`` and report it failed."""
    assert work_id(s) == task_id
    add(s, task_id, status="FAILED", runnable=None, expl='"boom"', **kwargs)


def test_failed_task_is_retried_after_retry_delay(make_scheduler: Make, clock: Clock) -> None:
    s = make_scheduler(retry_delay=100, worker_disconnect_delay=1000)
    add(s, "A_1")
    fail(s, "A_1")
    assert status_of(s, "A_1") == "FAILED"
    assert work_id(s) is None
    clock.advance(99)
    s.prune()
    assert status_of(s, "A_1") == "FAILED"
    clock.advance(2)
    s.prune()
    assert status_of(s, "A_1") == "PENDING"
    assert work_id(s) == "A_1"


def test_failed_task_is_kept_failed_by_re_adding_as_failed(make_scheduler: Make) -> None:
    s = make_scheduler(retry_delay=100)
    add(s, "A_1", status="FAILED")
    # a failed task is not runnable by the worker that reported it failing
    assert s.task_list(status="FAILED")["A_1"]["workers"] == []


def test_disabled_after_retry_count_failures_in_window(make_scheduler: Make, clock: Clock) -> None:
    s = make_scheduler(retry_delay=1, retry_count=3, disable_window=100)
    add(s, "A_1")
    for _ in range(2):
        fail(s, "A_1")
        clock.advance(2)
        s.prune()
    fail(s, "A_1")
    assert status_of(s, "A_1") == "DISABLED"
    assert s.task_list(status="DISABLED")["A_1"]["re_enable_able"] is True
    clock.advance(2)
    s.prune()
    assert work_id(s) is None


def test_failures_outside_the_window_are_forgotten(make_scheduler: Make, clock: Clock) -> None:
    s = make_scheduler(retry_delay=1, retry_count=3, disable_window=100)
    add(s, "A_1")
    for _ in range(5):
        fail(s, "A_1")
        clock.advance(60)  # at most two failures ever fall within 100 s
        s.prune()
    assert status_of(s, "A_1") == "PENDING"


def test_per_task_retry_policy_overrides_config(make_scheduler: Make, clock: Clock) -> None:
    s = make_scheduler(retry_delay=1, retry_count=10, disable_window=100)
    policy = {"retry_count": 2, "disable_hard_timeout": None, "disable_window": None}
    add(s, "A_1", retry_policy_dict=policy)
    fail(s, "A_1", retry_policy_dict=policy)
    clock.advance(2)
    s.prune()
    fail(s, "A_1", retry_policy_dict=policy)
    assert status_of(s, "A_1") == "DISABLED"


def test_disable_hard_timeout_counts_from_first_failure(make_scheduler: Make, clock: Clock) -> None:
    s = make_scheduler(retry_delay=1, retry_count=100, disable_window=10, disable_hard_timeout=50)
    add(s, "A_1")
    fail(s, "A_1")
    clock.advance(30)
    s.prune()
    fail(s, "A_1")
    assert status_of(s, "A_1") == "FAILED"
    clock.advance(30)
    s.prune()
    fail(s, "A_1")  # 60 s after the first failure
    assert status_of(s, "A_1") == "DISABLED"


def test_disable_persist_ends_the_disable_via_prune(make_scheduler: Make, clock: Clock) -> None:
    s = make_scheduler(retry_delay=10, retry_count=1, disable_persist=500, worker_disconnect_delay=10000)
    add(s, "A_1")
    fail(s, "A_1")
    assert status_of(s, "A_1") == "DISABLED"
    clock.advance(499)
    s.prune()
    assert status_of(s, "A_1") == "DISABLED"
    clock.advance(2)
    s.prune()
    # back to FAILED with a clean failure record, then retried as usual
    assert status_of(s, "A_1") == "FAILED"
    clock.advance(11)
    s.prune()
    assert status_of(s, "A_1") == "PENDING"


def test_worker_cannot_lift_a_scheduler_disable(make_scheduler: Make) -> None:
    s = make_scheduler(retry_count=1)
    add(s, "A_1")
    fail(s, "A_1")
    add(s, "A_1", status="PENDING")
    assert status_of(s, "A_1") == "DISABLED"
    # but a task that turns out to be complete is done
    add(s, "A_1", status="DONE", runnable=None)
    assert status_of(s, "A_1") == "DONE"


def test_worker_disabled_task_can_be_re_added(make_scheduler: Make) -> None:
    s = make_scheduler()
    add(s, "A_1", status="DISABLED")
    assert s.task_list(status="DISABLED")["A_1"]["re_enable_able"] is False
    assert s.re_enable_task(task_id="A_1") == {}
    add(s, "A_1", status="PENDING")
    assert status_of(s, "A_1") == "PENDING"


def test_re_enable_task(make_scheduler: Make) -> None:
    s = make_scheduler(retry_count=1)
    add(s, "A_1")
    fail(s, "A_1")
    reply = s.re_enable_task(task_id="A_1")
    assert reply["status"] == "FAILED"
    assert reply["display_name"] == "A()"
    assert "re_enable_able" not in reply
    assert s.re_enable_task(task_id="A_1") == {}
    assert s.re_enable_task(task_id="missing") == {}
    # the failure history was cleared: it takes a fresh failure to disable again
    assert s.forgive_failures(task_id="A_1") == {"task_id": "A_1", "status": "PENDING"}
    fail(s, "A_1")
    assert status_of(s, "A_1") == "DISABLED"


def test_forgive_failures(make_scheduler: Make) -> None:
    s = make_scheduler()
    add(s, "A_1")
    fail(s, "A_1")
    assert s.forgive_failures(task_id="A_1") == {"task_id": "A_1", "status": "PENDING"}
    assert work_id(s) == "A_1"
    # only failures are forgiven
    assert s.forgive_failures(task_id="A_1") == {"task_id": "A_1", "status": "RUNNING"}
    assert s.forgive_failures(task_id="missing") == {"task_id": "missing", "status": None}


@pytest.mark.parametrize("before", ["RUNNING", "FAILED", "DISABLED"])
def test_mark_as_done(make_scheduler: Make, before: str) -> None:
    s = make_scheduler(retry_count=1 if before == "DISABLED" else 5)
    add(s, "A_1")
    add(s, "B_1", deps=["A_1"])
    if before == "RUNNING":
        assert work_id(s) == "A_1"
    else:
        fail(s, "A_1")
    assert status_of(s, "A_1") == before
    assert s.mark_as_done(task_id="A_1") == {"task_id": "A_1", "status": "DONE"}
    assert work_id(s) == "B_1"


def test_mark_as_done_leaves_other_statuses(make_scheduler: Make) -> None:
    s = make_scheduler()
    add(s, "A_1")
    assert s.mark_as_done(task_id="A_1") == {"task_id": "A_1", "status": "PENDING"}
    assert s.mark_as_done(task_id="missing") == {"task_id": "missing", "status": None}
