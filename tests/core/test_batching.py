"""Batching: batchers, max_batch_size, BATCH_RUNNING, and results spreading to batch members."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from luigid.scheduler import Scheduler

from .support import Clock, add, status_of, work


@pytest.fixture
def batch_sched(make_scheduler: Callable[..., Scheduler], clock: Clock) -> Scheduler:
    sched = make_scheduler(resources={"db": 10}, retry_delay=100)
    sched.add_task_batcher(worker="w1", task_family="B", batched_args=["day"], max_batch_size=3)
    for day in ("1", "2", "3", "4"):
        clock.advance(1)
        add(sched, "B_" + day, params={"day": day, "kind": "x"}, batchable=True, resources={"db": 1})
    return sched


def start_batch(s: Scheduler) -> dict[str, Any]:
    reply = work(s)
    assert reply["batch_id"]
    runner = "B_" + "_".join(reply["task_params"]["day"])
    add(s, runner, status="RUNNING", batch_id=reply["batch_id"], params={"day": "x", "kind": "x"})
    reply["runner"] = runner
    return reply


def test_get_work_hands_out_a_batch(batch_sched: Scheduler) -> None:
    reply = work(batch_sched)
    assert reply["task_id"] is None
    assert reply["task_family"] == "B"
    assert reply["batch_task_ids"] == ["B_1", "B_2", "B_3"]  # max_batch_size, oldest first
    assert reply["task_params"] == {"day": ["1", "2", "3"], "kind": "x"}
    assert len(reply["batch_id"]) == 32
    assert set(batch_sched.task_list(status="BATCH_RUNNING")) == {"B_1", "B_2", "B_3"}
    assert status_of(batch_sched, "B_4") == "PENDING"


def test_batch_needs_equal_unbatched_params_and_resources(sched: Scheduler, clock: Clock) -> None:
    sched.add_task_batcher(worker="w1", task_family="B", batched_args=["day"])
    add(sched, "B_1", params={"day": "1", "kind": "x"}, batchable=True)
    clock.advance(1)
    add(sched, "B_2", params={"day": "2", "kind": "y"}, batchable=True)
    clock.advance(1)
    add(sched, "B_3", params={"day": "3", "kind": "x"}, batchable=True, resources={"r": 1})
    clock.advance(1)
    add(sched, "B_4", params={"day": "4", "kind": "x"}, batchable=False)
    clock.advance(1)
    add(sched, "B_5", params={"day": "5", "kind": "x"}, batchable=True)
    reply = work(sched)
    assert reply["batch_task_ids"] == ["B_1", "B_5"]


def test_single_batchable_task_runs_alone(sched: Scheduler) -> None:
    sched.add_task_batcher(worker="w1", task_family="B", batched_args=["day"])
    add(sched, "B_1", params={"day": "1"}, batchable=True)
    reply = work(sched)
    assert reply["task_id"] == "B_1"
    assert "batch_id" not in reply


def test_no_batcher_means_no_batch(sched: Scheduler, clock: Clock) -> None:
    add(sched, "B_1", params={"day": "1"}, batchable=True)
    clock.advance(1)
    add(sched, "B_2", params={"day": "2"}, batchable=True)
    assert work(sched)["task_id"] == "B_1"


def test_batch_runner_takes_over_members_resources(batch_sched: Scheduler) -> None:
    reply = start_batch(batch_sched)
    assert batch_sched.get_running_task_resources(task_id=reply["runner"])["resources"] == {"db": 1}
    batch_sched.decrease_running_task_resources(task_id=reply["runner"], decrease_resources={"db": 1})
    assert batch_sched.get_running_task_resources(task_id="B_2")["resources"] == {"db": 0}


@pytest.mark.parametrize("outcome", ["DONE", "FAILED"])
def test_batch_result_spreads_to_members(batch_sched: Scheduler, outcome: str) -> None:
    reply = start_batch(batch_sched)
    batch_sched.set_task_status_message(task_id=reply["runner"], status_message="working")
    batch_sched.set_task_progress_percentage(task_id=reply["runner"], progress_percentage=40)
    assert batch_sched.get_task_status_message(task_id="B_1")["statusMessage"] == "working"
    assert batch_sched.get_task_progress_percentage(task_id="B_3")["progressPercentage"] == 40
    add(batch_sched, reply["runner"], status="RUNNING", tracking_url="http://t/1")
    assert batch_sched.task_list(status="BATCH_RUNNING")["B_2"]["tracking_url"] == "http://t/1"
    add(batch_sched, reply["runner"], status=outcome, runnable=None, expl='"why"')
    for member in ("B_1", "B_2", "B_3"):
        assert status_of(batch_sched, member) == outcome
    if outcome == "FAILED":
        assert batch_sched.fetch_error(task_id="B_2")["error"] == '"why"'
    assert status_of(batch_sched, "B_4") == "PENDING"


def test_unclaimed_batch_is_reset_by_current_tasks(batch_sched: Scheduler) -> None:
    work(batch_sched)
    # without current_tasks nothing is known about what the worker runs
    assert work(batch_sched)["task_id"] == "B_4"
    assert set(batch_sched.task_list(status="BATCH_RUNNING")) == {"B_1", "B_2", "B_3"}
    # the worker says it runs only B_4: the orphaned members go back to PENDING...
    reply = work(batch_sched, current_tasks=["B_4"])
    # ...and are handed out again
    assert reply["batch_task_ids"] == ["B_1", "B_2", "B_3"]


def test_task_the_worker_forgot_is_handed_out_again(batch_sched: Scheduler) -> None:
    start_batch(batch_sched)
    assert work(batch_sched)["task_id"] == "B_4"
    assert work(batch_sched, current_tasks=[])["task_id"] == "B_4"


def test_claimed_batch_is_not_reset(batch_sched: Scheduler) -> None:
    reply = start_batch(batch_sched)
    work(batch_sched, current_tasks=[reply["runner"]])
    assert set(batch_sched.task_list(status="BATCH_RUNNING")) == {"B_1", "B_2", "B_3"}
