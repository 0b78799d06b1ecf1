"""disable_worker, rpc messages delivered through ping, and scheduler message responses."""

from __future__ import annotations

from collections.abc import Callable

from luigid.scheduler import Scheduler

from .support import add, status_of, work, work_id

Make = Callable[..., Scheduler]


def test_disabled_worker_gets_no_work_and_is_told_so(sched: Scheduler) -> None:
    add(sched, "A_1")
    sched.disable_worker(worker="w1")
    reply = work(sched)
    assert reply == {
        "n_pending_tasks": 0,
        "running_tasks": [],
        "task_id": None,
        "n_unique_pending": 0,
        "worker_state": "disabled",
    }
    assert sched.count_pending(worker="w1")["worker_state"] == "disabled"
    entry = next(w for w in sched.worker_list() if w["name"] == "w1")
    assert entry["state"] == "disabled"
    assert entry["num_pending"] == 0


def test_disabled_worker_cannot_add_tasks(sched: Scheduler) -> None:
    sched.disable_worker(worker="w1")
    add(sched, "A_1")
    assert status_of(sched, "A_1") is None


def test_disabled_worker_may_still_finish_its_running_task(sched: Scheduler) -> None:
    add(sched, "A_1")
    assert work_id(sched) == "A_1"
    sched.disable_worker(worker="w1")
    add(sched, "A_1", status="DONE", runnable=None)
    assert status_of(sched, "A_1") == "DONE"


def test_disabled_worker_no_longer_runs_its_tasks_but_others_can(sched: Scheduler) -> None:
    add(sched, "A_1", worker="w1")
    add(sched, "A_1", worker="w2")
    sched.disable_worker(worker="w1")
    assert sched.task_list(status="PENDING")["A_1"]["workers"] == ["w2"]
    assert work_id(sched, "w2") == "A_1"


def test_set_worker_processes_is_delivered_by_ping_once(sched: Scheduler) -> None:
    work(sched)
    sched.set_worker_processes(worker="w1", n=4)
    entry = next(w for w in sched.worker_list() if w["name"] == "w1")
    assert entry["num_unread_rpc_messages"] == 1
    assert sched.ping(worker="w1") == {"rpc_messages": [{"name": "set_worker_processes", "kwargs": {"n": 4}}]}
    assert sched.ping(worker="w1") == {"rpc_messages": []}


def test_scheduler_message_round_trip(sched: Scheduler) -> None:
    add(sched, "A_1", accepts_messages=True)
    assert work_id(sched) == "A_1"
    assert sched.task_list(status="RUNNING")["A_1"]["accepts_messages"] is True
    message_id = sched.send_scheduler_message(worker="w1", task="A_1", content="scale up")["message_id"]
    assert message_id
    (message,) = sched.ping(worker="w1")["rpc_messages"]
    assert message == {
        "name": "dispatch_scheduler_message",
        "kwargs": {"task_id": "A_1", "message_id": message_id, "content": "scale up"},
    }
    assert sched.get_scheduler_message_response(task_id="A_1", message_id=message_id) == {"response": None}
    sched.add_scheduler_message_response(task_id="A_1", message_id=message_id, response="ok")
    assert sched.get_scheduler_message_response(task_id="A_1", message_id=message_id) == {"response": "ok"}
    # a response is handed out once
    assert sched.get_scheduler_message_response(task_id="A_1", message_id=message_id) == {"response": None}


def test_message_ids_are_unique(sched: Scheduler) -> None:
    ids = {sched.send_scheduler_message(worker="w1", task="A_1", content=i)["message_id"] for i in range(5)}
    assert len(ids) == 5


def test_responses_for_unknown_tasks_are_dropped(sched: Scheduler) -> None:
    sched.add_scheduler_message_response(task_id="nope", message_id="m", response="ok")
    assert sched.get_scheduler_message_response(task_id="nope", message_id="m") == {"response": None}


def test_send_messages_off(make_scheduler: Make) -> None:
    s = make_scheduler(send_messages=False)
    add(s, "A_1", accepts_messages=True)
    assert work_id(s) == "A_1"
    assert s.send_scheduler_message(worker="w1", task="A_1", content="x") == {"message_id": None}
    assert s.ping(worker="w1") == {"rpc_messages": []}
    assert "accepts_messages" not in s.task_list(status="RUNNING")["A_1"]
