"""Task statuses as workers report them, and the upstream statuses task_list derives."""

from __future__ import annotations

import pytest

from luigid.scheduler import Scheduler

from .support import add, status_of, work_id


def listed(s: Scheduler, status: str = "", upstream_status: str = "") -> set[str]:
    return set(s.task_list(status=status, upstream_status=upstream_status))


def test_new_task_is_pending_and_runs_then_done(sched: Scheduler) -> None:
    add(sched, "A_1")
    assert status_of(sched, "A_1") == "PENDING"
    assert work_id(sched) == "A_1"
    assert status_of(sched, "A_1") == "RUNNING"
    add(sched, "A_1", status="DONE", runnable=None)
    assert status_of(sched, "A_1") == "DONE"
    assert work_id(sched) is None


@pytest.mark.parametrize("status", ["DONE", "FAILED", "DISABLED", "UNKNOWN", "RUNNING"])
def test_reported_status_is_stored(sched: Scheduler, status: str) -> None:
    add(sched, "A_1", status=status)
    assert listed(sched, status) == {"A_1"}


def test_suspended_is_stored_as_pending(sched: Scheduler) -> None:
    add(sched, "A_1", status="SUSPENDED")
    assert status_of(sched, "A_1") == "PENDING"
    assert listed(sched, "SUSPENDED") == set()
    assert work_id(sched) == "A_1"


def test_task_with_unfinished_dep_is_not_handed_out(sched: Scheduler) -> None:
    add(sched, "B_1", deps=["A_1"])
    # A_1 is only a placeholder (UNKNOWN) until someone adds it
    assert status_of(sched, "A_1") == "UNKNOWN"
    assert work_id(sched) is None
    add(sched, "A_1")
    assert work_id(sched) == "A_1"
    assert work_id(sched, current_tasks=["A_1"]) is None
    add(sched, "A_1", status="DONE", runnable=None)
    assert work_id(sched) == "B_1"


def test_only_the_running_worker_may_finish_a_running_task(sched: Scheduler) -> None:
    add(sched, "A_1", worker="w1")
    add(sched, "A_1", worker="w2")
    assert work_id(sched, "w1") == "A_1"
    add(sched, "A_1", worker="w2", status="DONE", runnable=None)
    add(sched, "A_1", worker="w2", status="PENDING")
    assert status_of(sched, "A_1") == "RUNNING"
    add(sched, "A_1", worker="w1", status="DONE", runnable=None)
    assert status_of(sched, "A_1") == "DONE"


def test_running_task_may_be_sent_new_deps_by_anyone(sched: Scheduler) -> None:
    add(sched, "A_1", worker="w1")
    assert work_id(sched, "w1") == "A_1"
    add(sched, "A_1", worker="w2", status="PENDING", new_deps=["X_1"])
    assert status_of(sched, "A_1") == "PENDING"
    assert "X_1" in sched.dep_graph(task_id="A_1")["A_1"]["deps"]


def test_batch_running_status(sched: Scheduler) -> None:
    sched.add_task_batcher(worker="w1", task_family="A", batched_args=["n"])
    for n in "12":
        add(sched, "A_" + n, params={"n": n}, batchable=True)
    reply = sched.get_work(worker="w1", host="h")
    assert reply["batch_id"]
    assert listed(sched, "BATCH_RUNNING") == {"A_1", "A_2"}


@pytest.fixture
def upstream(sched: Scheduler) -> Scheduler:
    """Chains ending in a dep of each troubling status, plus a ready task and a long chain."""
    add(sched, "run_top", deps=["run_mid"])
    add(sched, "run_mid", deps=["run_dep"])
    add(sched, "run_dep")
    assert work_id(sched) == "run_dep"
    add(sched, "miss_top", deps=["miss_dep"])
    add(sched, "miss_dep")
    add(sched, "fail_top", deps=["fail_dep"])
    add(sched, "fail_dep", status="FAILED")
    add(sched, "dis_top", deps=["dis_dep", "miss_dep", "fail_dep"])
    add(sched, "dis_dep", status="DISABLED")
    add(sched, "ready", deps=["done_dep"])
    add(sched, "done_dep", status="DONE")
    return sched


@pytest.mark.parametrize(
    ("upstream_status", "expected"),
    [
        ("UPSTREAM_RUNNING", {"run_top", "run_mid"}),
        ("UPSTREAM_MISSING_INPUT", {"miss_top", "miss_dep"}),
        ("UPSTREAM_FAILED", {"fail_top"}),
        # the most severe trouble upstream wins
        ("UPSTREAM_DISABLED", {"dis_top"}),
    ],
)
def test_upstream_status_of_pending_tasks(
    upstream: Scheduler, upstream_status: str, expected: set[str]
) -> None:
    assert listed(upstream, "PENDING", upstream_status) == expected


def test_upstream_filter_only_applies_to_pending(upstream: Scheduler) -> None:
    assert listed(upstream, "FAILED", "UPSTREAM_DISABLED") == {"fail_dep"}
    everything = listed(upstream)
    assert {"ready", "done_dep", "dis_dep", "run_dep"} <= everything
    # a pending task whose deps are done has nothing wrong upstream
    assert "ready" not in set().union(
        *(
            listed(upstream, "PENDING", u)
            for u in ("UPSTREAM_RUNNING", "UPSTREAM_MISSING_INPUT", "UPSTREAM_FAILED", "UPSTREAM_DISABLED")
        )
    )


def test_upstream_disabled_tasks_are_not_counted_pending(upstream: Scheduler) -> None:
    counts = upstream.count_pending(worker="w1")
    # dis_top is upstream-disabled; the other pending/failed tasks of w1 count
    assert counts["n_pending_tasks"] == 6
    assert counts["running_tasks"] == [{"task_id": "run_dep", "worker": "w1"}]
