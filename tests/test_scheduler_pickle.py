"""An in-process ``Scheduler`` pickles, as luigi's does (issue #15, "drop-in fidelity").

luigi's worker puts a ``SchedulerMessage`` on a task's multiprocessing queue, and that
message keeps a reference to the scheduler; with an in-process scheduler the queue pickles
the whole scheduler, so a scheduler that does not pickle never gets a message to a task
running in its own process. What an unpickled scheduler is: a copy of the state, with the
side effects (history, metrics, e-mail, status journal) replaced by do-nothing defaults.

Every RPC's in-process reply must also be plain built-ins that both ``pickle`` and ``json``
take, as luigi's in-process callers (and luigi's own tests) expect of its scheduler.
"""

from __future__ import annotations

import json
import pickle
import queue
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import luigi
import luigi.scheduler
import luigi.worker
import pytest

from luigid.config import SchedulerConfig
from luigid.core.ports import NoAlerts, NoHistory, NoMetrics
from luigid.core.rpc import RPC_METHODS
from luigid.scheduler import Scheduler
from luigid.storage.journal import Journal

#: the bound on every wait in this file, in seconds (generous: the machine may be loaded)
WAIT = 20.0


def make_scheduler(**settings: Any) -> Scheduler:
    return Scheduler(SchedulerConfig(**settings), resources={"cpu": 4})


def add(s: Scheduler, task_id: str, worker: str = "w1", **kwargs: Any) -> None:
    """``add_task`` with what a luigi worker always sends filled in."""
    kwargs.setdefault("family", task_id.split("_")[0])
    kwargs.setdefault("params", {"name": task_id})
    s.add_task(task_id=task_id, worker=worker, **kwargs)


def populate(s: Scheduler) -> None:
    """A few tasks in each status, two workers, a batcher, a message and a prune round."""
    s.add_worker(worker="w1", info={"host": "h1", "workers": 2, "salt": "1"})
    s.add_worker(worker="w2", info={"host": "h2"})
    s.add_task_batcher(worker="w1", task_family="Batch", batched_args=["n"], max_batch_size=3)
    add(s, "Done_1", status="DONE")
    add(s, "Fail_1", status="FAILED", expl="boom")
    add(s, "Run_1", resources={"cpu": 2}, deps=["Done_1"], priority=5)
    add(s, "Pend_1", deps=["Run_1", "Fail_1"], worker="w2")
    add(s, "Dis_1", status="DISABLED")
    add(s, "Batch_1", params={"n": "1"}, batchable=True)
    add(s, "Batch_2", params={"n": "2"}, batchable=True)
    reply = s.get_work(worker="w1", host="h1", current_tasks=[])
    assert reply["task_id"] is not None
    s.set_task_status_message(task_id=reply["task_id"], status_message="half way")
    s.set_task_progress_percentage(task_id=reply["task_id"], progress_percentage=50)
    s.send_scheduler_message(worker="w1", task="Run_1", content="hello")
    s.pruner.step = 1
    s.prune_slice(1)  # leave a prune round under way (a generator: it cannot pickle)
    assert s.pruner.pruning


# ------------------------------------------------------------------ pickling


def test_a_new_scheduler_pickles() -> None:
    s = make_scheduler()
    copy = pickle.loads(pickle.dumps(s))
    assert isinstance(copy, Scheduler)
    assert copy.task_list(status="") == {}


def test_an_unpickled_scheduler_is_a_copy_of_the_state() -> None:
    s = make_scheduler()
    populate(s)
    copy = pickle.loads(pickle.dumps(s))
    for name, arguments in [
        ("task_list", {"status": ""}),
        ("graph", {}),
        ("dep_graph", {"task_id": "Pend_1"}),
        ("worker_list", {}),
        ("resource_list", {}),
        ("count_pending", {"worker": "w1"}),
        ("task_search", {"task_str": "_1"}),
        ("fetch_error", {"task_id": "Fail_1"}),
        ("is_paused", {}),
    ]:
        assert getattr(copy, name)(**arguments) == getattr(s, name)(**arguments), name
    assert copy.config == s.config
    assert copy.settings == s.settings
    assert copy.resources() == s.resources()
    assert copy.pruner.step == s.pruner.step == 1
    assert not copy.pruner.pruning, "the round under way stays with the original"
    # the copy goes on on its own: what happens on it stays there
    add(copy, "New_1", worker="w2")
    new = copy.state.get_task("New_1")
    assert new is not None and new.seq > max(t.seq for t in s.state.tasks())
    assert copy.get_work(worker="w2", host="h2")["task_id"] is not None
    assert "New_1" not in s.task_list(status="")
    assert s.get_work(worker="w2", host="h2")["task_id"] is None
    # and the copy answers a scheduler message's response, as luigi's copy does
    message = copy.send_scheduler_message(worker="w1", task="Run_1", content="again")
    copy.add_scheduler_message_response(task_id="Run_1", message_id=message["message_id"], response="ok")
    assert copy.get_scheduler_message_response(task_id="Run_1", message_id=message["message_id"]) == {
        "response": "ok"
    }


class _Threaded:
    """A collaborator holding a lock and a thread: neither pickles."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=lambda: None, daemon=True)
        self.calls: list[str] = []

    def __getattr__(self, name: str) -> Callable[..., None]:
        if name.startswith("__"):
            raise AttributeError(name)
        return lambda *args, **kwargs: self.calls.append(name)


def test_collaborators_are_left_out_and_become_do_nothing(tmp_path: Path) -> None:
    history, metrics, batcher = _Threaded(), _Threaded(), _Threaded()
    s = Scheduler(
        SchedulerConfig(state_path=str(tmp_path / "state.pickle"), batch_emails=True),
        resources={"cpu": 4},
        task_history_impl=history,
        metrics_collector=metrics,
        batch_notifier=batcher,
    )
    s.journal = Journal(s.config.state_path)
    try:
        populate(s)
        copy = pickle.loads(pickle.dumps(s))
        assert isinstance(copy.task_history, NoHistory)
        assert isinstance(copy.metrics_collector, NoMetrics)
        assert isinstance(copy.alerts, NoAlerts)
        assert copy.batch_notifier is None
        assert copy.notifier is None
        assert copy.journal is None
        # the copy's status changes reach none of the original's collaborators
        before = (list(history.calls), list(metrics.calls), list(batcher.calls))
        journal = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
        assert journal, "the original journals its status changes"
        add(copy, "Fail_2", status="FAILED", expl="again")
        add(copy, "Done_2", status="DONE")
        copy.prune()
        copy.close()
        assert (history.calls, metrics.calls, batcher.calls) == before
        assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == journal
        # the original still has them all
        add(s, "Done_3", status="DONE")
        assert history.calls != before[0]
        assert s.journal is not None
    finally:
        s.journal.close()


def test_pickling_leaves_the_original_as_it_was() -> None:
    s = make_scheduler()
    populate(s)
    before = s.task_list(status="")
    pruning = s.pruner.pruning
    pickle.dumps(s)
    assert s.task_list(status="") == before
    assert s.pruner.pruning == pruning
    add(s, "After_1")
    assert "After_1" in s.task_list(status="")


# -------------------------------------------------------------- RPC replies


def _rpc_calls() -> Iterator[tuple[str, dict[str, Any]]]:
    """Every RPC, some several ways, in an order where each finds something to work on."""
    yield "add_worker", {"worker": "w3", "info": {"host": "h3"}}
    yield "add_task_batcher", {"worker": "w3", "task_family": "Batch", "batched_args": ["n"]}
    yield "add_task", {"task_id": "Extra_1", "worker": "w3", "family": "Extra", "params": {"a": "1"}}
    yield (
        "add_task",
        {
            "task_id": "Batch_3",
            "worker": "w1",
            "family": "Batch",
            "params": {"n": "3"},
            "batchable": True,
        },
    )
    yield "ping", {"worker": "w1"}
    yield "set_worker_processes", {"worker": "w1", "n": 3}
    yield "ping", {"worker": "w1"}
    yield "count_pending", {"worker": "w1"}
    yield "count_pending", {"worker": "w2"}
    yield "get_work", {"worker": "w1", "host": "h1", "current_tasks": []}
    yield "get_work", {"worker": "w2", "host": "h2", "assistant": True}
    yield "get_work", {"worker": "w1", "host": "h1", "current_tasks": ["Run_1"]}  # a batch
    yield "get_work", {"worker": "nobody", "host": "h"}
    yield "send_scheduler_message", {"worker": "w1", "task": "Run_1", "content": "hi"}
    yield "add_scheduler_message_response", {"task_id": "Run_1", "message_id": "m1", "response": "yo"}
    yield "get_scheduler_message_response", {"task_id": "Run_1", "message_id": "m1"}
    yield "get_scheduler_message_response", {"task_id": "Run_1", "message_id": "none"}
    yield "set_task_status_message", {"task_id": "Run_1", "status_message": "working"}
    yield "get_task_status_message", {"task_id": "Run_1"}
    yield "set_task_progress_percentage", {"task_id": "Run_1", "progress_percentage": 10}
    yield "get_task_progress_percentage", {"task_id": "Run_1"}
    yield "decrease_running_task_resources", {"task_id": "Run_1", "decrease_resources": {"cpu": 1}}
    yield "get_running_task_resources", {"task_id": "Run_1"}
    yield "get_running_task_resources", {"task_id": "nothing"}
    yield "update_metrics_task_started", {"task": {"task_id": "Run_1"}}
    yield "report_task_statistics", {"task_id": "Run_1", "statistics": {"rows": 3}}
    yield "update_resources", {"gpu": 2}
    yield "update_resource", {"resource": "gpu", "amount": 1}
    yield "update_resource", {"resource": "gpu", "amount": -1}
    yield "resource_list", {}
    yield "task_list", {"status": ""}
    yield "task_list", {"status": "RUNNING"}
    yield "task_list", {"status": "PENDING", "upstream_status": "UPSTREAM_FAILED"}
    yield "task_list", {"status": "", "max_shown_tasks": 1}  # the counted form
    yield "task_list", {"status": "DONE", "search": "Done"}
    yield "graph", {}
    yield "dep_graph", {"task_id": "Pend_1"}
    yield "dep_graph", {"task_id": "Pend_1", "include_done": False}
    yield "dep_graph", {"task_id": "nothing"}
    yield "inverse_dep_graph", {"task_id": "Done_1"}
    yield "inverse_dep_graph", {"task_id": "nothing"}
    yield "task_search", {"task_str": "_1"}
    yield "worker_list", {}
    yield "worker_list", {"include_running": False}
    yield "fetch_error", {"task_id": "Fail_1"}
    yield "fetch_error", {"task_id": "nothing"}
    yield "has_task_history", {}
    yield "is_pause_enabled", {}
    yield "is_paused", {}
    yield "pause", {}
    yield "is_paused", {}
    yield "unpause", {}
    yield (
        "announce_scheduling_failure",
        {
            "task_name": "Broken(a=1)",
            "family": "Broken",
            "params": {"a": "1"},
            "expl": "no",
            "owners": ["me"],
            "worker": "w1",
        },
    )
    yield "forgive_failures", {"task_id": "Fail_1"}
    yield "forgive_failures", {"task_id": "nothing"}
    yield "add_task", {"task_id": "Fail_2", "worker": "w1", "family": "Fail", "status": "FAILED"}
    yield "re_enable_task", {"task_id": "Fail_2"}  # disabled by its failures (retry_count=1)
    yield "re_enable_task", {"task_id": "Dis_1"}
    yield "mark_as_done", {"task_id": "Pend_1"}
    yield "mark_as_done", {"task_id": "nothing"}
    yield "disable_worker", {"worker": "w3"}
    yield "prune", {}
    yield "ping", {"worker": "w1"}


PLAIN_SCALARS = (str, int, float, bool, type(None))


def not_plain(value: Any, where: str = "reply") -> list[str]:
    """Where ``value`` holds anything but dicts (with str keys), lists and plain scalars,
    exact types only (a str or tuple subclass pickles as its class, not as a built-in)."""
    kind = type(value)
    if kind in PLAIN_SCALARS:
        return []
    if kind is list:
        return [found for i, item in enumerate(value) for found in not_plain(item, f"{where}[{i}]")]
    if kind is dict:
        found = [f"{where} key {key!r}" for key in value if type(key) is not str]
        for key, item in value.items():
            found += not_plain(item, f"{where}[{key!r}]")
        return found
    return [f"{where} is a {kind.__name__}"]


def test_every_rpc_replies_with_plain_builtins_in_process() -> None:
    s = make_scheduler(retry_count=1)
    populate(s)
    called = set()
    replies: list[Any] = []
    for name, arguments in _rpc_calls():
        reply = getattr(s, name)(**arguments)
        called.add(name)
        call = f"{name}({arguments})"
        assert not_plain(reply) == [], call
        pickle.dumps(reply)
        json.dumps(reply)
        assert pickle.loads(pickle.dumps(reply)) == reply, call
        replies.append(reply)
    assert called == set(RPC_METHODS), "add the new RPC to _rpc_calls"
    # the calls reached the replies worth checking: a batch handed out, a task re-enabled
    assert any(isinstance(r, dict) and r.get("batch_task_ids") for r in replies)
    assert any(
        isinstance(r, dict) and r.get("name") == "Fail" and r.get("status") == "FAILED" for r in replies
    )
    # and the scheduler, having served them all, still pickles
    pickle.loads(pickle.dumps(s))


def test_scheduler_messages_queued_for_a_worker_are_plain() -> None:
    s = make_scheduler()
    populate(s)
    messages = s.ping(worker="w1")["rpc_messages"]
    assert [m["name"] for m in messages] == ["dispatch_scheduler_message"]
    assert not_plain(messages) == []


# ------------------------------------------- a real luigi worker, in-process


class WaitForMessage(luigi.Task):
    """Says it started, waits (bounded) for one scheduler message, answers it, and writes
    what it got to its output."""

    accepts_messages = True
    path = luigi.Parameter()
    #: the task's message queue, which luigi's worker sets while the task runs
    scheduler_messages: Any

    def output(self) -> luigi.LocalTarget:
        return luigi.LocalTarget(self.path)

    def run(self) -> None:
        Path(self.path + ".started").write_text("yes")
        try:
            message = self.scheduler_messages.get(timeout=WAIT)
        except queue.Empty:
            got = "<no message>"
        else:
            got = str(message.content)
            message.respond("pong")
        with self.output().open("w") as out:
            out.write(got)


def _send_when_started(
    scheduler: Any, worker_id: str, task: WaitForMessage, sent: dict[str, Any]
) -> threading.Thread:
    """Send the task a message once it runs (so the worker knows it as running), under
    luigi's fork lock, which its keep-alive thread holds while it pings."""
    started = Path(task.path + ".started")

    def send() -> None:
        deadline = time.monotonic() + WAIT
        while not started.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        with luigi.worker.fork_lock:
            sent.update(
                scheduler.send_scheduler_message(worker=worker_id, task=task.task_id, content="hello")
            )

    thread = threading.Thread(target=send, daemon=True)
    thread.start()
    return thread


def _luigid() -> Scheduler:
    return make_scheduler()


def _luigi() -> Any:
    return luigi.scheduler.Scheduler(send_messages=True)


@pytest.mark.parametrize("make", [_luigid, _luigi], ids=["luigid", "luigi"])
def test_a_luigi_worker_hands_a_scheduler_message_to_a_task_process(
    make: Callable[[], Any], tmp_path: Path
) -> None:
    scheduler = make()
    task = WaitForMessage(path=str(tmp_path / "got.txt"))  # type: ignore[call-arg]  # a luigi parameter
    sent: dict[str, Any] = {}
    with luigi.worker.Worker(
        scheduler=scheduler,
        worker_id="pickle-test",
        force_multiprocessing=True,
        ping_interval=0.1,
        wait_interval=0.1,
    ) as worker:
        assert worker.add(task)
        sender = _send_when_started(scheduler, "pickle-test", task, sent)
        assert worker.run()
        sender.join(WAIT)
    assert sent["message_id"]
    assert Path(task.path).read_text() == "hello"
    # The task answered on its own copy of the scheduler (the message carried it to the
    # task's process): as with luigi's scheduler, the answer stays in that process.
    reply = scheduler.get_scheduler_message_response(task_id=task.task_id, message_id=sent["message_id"])
    assert reply == {"response": None}
