"""After kill -9, a restart shows what a SIGTERM + restart shows, for every state-changing RPC.

Each case runs a sequence of calls against a real daemon on loopback. Then the files it has
on disk are copied, which is exactly what a kill -9 at that moment leaves (every record was
handed to the OS before its reply), and the daemon is stopped with SIGTERM (a final save).
A daemon started on each folder must answer the same: every task of every status,
workers, resources, the pause flag, errors, messages, progress. Timestamps are compared as
they are: the replay runs each call at the time it was recorded, so they must be equal.
The kill image is also restarted, killed with -9 for real once it answered, and restarted
again (a second crash before any snapshot).

The cases walk ``RPC_METHODS``: a state-changing RPC without a sequence fails the test.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from luigid.scheduler import RPC_METHODS
from tests.support.cli import call
from tests.support.daemon import Luigid

DAEMON_CONFIG = """\
[scheduler]
state_snapshot_interval = 3600
retry_count = 1
"""

Call = tuple[str, dict[str, Any]]

W = "w1"
BASE: list[Call] = [
    ("add_worker", {"worker": W, "info": {"workers": 2, "host": "h1"}}),
    (
        "add_task",
        {
            "worker": W,
            "task_id": "A",
            "family": "A",
            "params": {"n": "1"},
            "priority": 5,
            "resources": {"r": 2},
        },
    ),
    ("add_task", {"worker": W, "task_id": "B", "family": "B", "deps": ["A"], "priority": 1}),
    ("add_task", {"worker": W, "task_id": "C", "family": "C", "owners": ["o@x"]}),
]
RUN_A: list[Call] = [("get_work", {"worker": W, "host": "h1"})]  # A: the highest priority
FAIL_A: list[Call] = [("add_task", {"worker": W, "task_id": "A", "status": "FAILED", "expl": "boom"})]

SEQUENCES: dict[str, list[Call]] = {
    "prune": [("prune", {})],
    "add_task_batcher": [
        ("add_task_batcher", {"worker": W, "task_family": "Bt", "batched_args": ["n"], "max_batch_size": 3}),
        *[
            (
                "add_task",
                {
                    "worker": W,
                    "task_id": f"Bt{n}",
                    "family": "Bt",
                    "params": {"n": str(n)},
                    "batchable": True,
                },
            )
            for n in range(3)
        ],
        ("get_work", {"worker": W, "host": "h1"}),
    ],
    "add_worker": [("add_worker", {"worker": "w2", "info": {"workers": 4}})],
    "disable_worker": [("disable_worker", {"worker": W})],
    "set_worker_processes": [("set_worker_processes", {"worker": W, "n": 4})],
    "ping": [("ping", {"worker": "w3"})],
    "forgive_failures": [*FAIL_A, ("forgive_failures", {"task_id": "A"})],
    "mark_as_done": [*FAIL_A, ("mark_as_done", {"task_id": "A"})],
    "add_task": [("add_task", {"worker": W, "task_id": "D", "family": "D", "status": "DONE"})],
    "announce_scheduling_failure": [
        (
            "announce_scheduling_failure",
            {"task_name": "E", "family": "E", "params": {}, "expl": "x", "owners": [], "worker": W},
        )
    ],
    "re_enable_task": [*FAIL_A, *FAIL_A, *FAIL_A, ("re_enable_task", {"task_id": "A"})],
    "send_scheduler_message": [("send_scheduler_message", {"worker": W, "task": "A", "content": "hi"})],
    "add_scheduler_message_response": [
        ("add_scheduler_message_response", {"task_id": "A", "message_id": "m1", "response": "yes"})
    ],
    "get_scheduler_message_response": [
        ("add_scheduler_message_response", {"task_id": "A", "message_id": "m1", "response": "yes"}),
        ("add_scheduler_message_response", {"task_id": "A", "message_id": "m2", "response": "no"}),
        ("get_scheduler_message_response", {"task_id": "A", "message_id": "m1"}),
    ],
    "pause": [("pause", {})],
    "unpause": [("pause", {}), ("unpause", {})],
    "update_resources": [("update_resources", {"r": 5, "s": 2})],
    "update_resource": [("update_resource", {"resource": "r", "amount": 7})],
    "decrease_running_task_resources": [
        *RUN_A,
        ("decrease_running_task_resources", {"task_id": "A", "decrease_resources": {"r": 1}}),
    ],
    "count_pending": [("count_pending", {"worker": "w4"})],
    "get_work": RUN_A,
    "set_task_status_message": [
        *RUN_A,
        ("set_task_status_message", {"task_id": "A", "status_message": "half"}),
    ],
    "set_task_progress_percentage": [
        *RUN_A,
        ("set_task_progress_percentage", {"task_id": "A", "progress_percentage": 50}),
    ],
    # refused over HTTP (its argument is a task record the scheduler passes itself): nothing to log
    "update_metrics_task_started": [],
    "report_task_statistics": [("report_task_statistics", {"task_id": "A", "statistics": {"rows": 1}})],
}

TASKS = ("A", "B", "C", "D", "Bt0", "Bt1", "Bt2")


def mutating_rpcs() -> list[str]:
    return sorted(name for name, spec in RPC_METHODS.items() if spec.mutating)


def start(rundir: Path, state_from: Path | None = None) -> Luigid:
    """A daemon in ``rundir`` (its state folder first filled from ``state_from``), ready: it
    answered HEAD /, which is no RPC, so nothing of its own is recorded."""
    daemon = Luigid(rundir, DAEMON_CONFIG, state_path=rundir / "state" / "state.pickle")
    if state_from is not None:
        shutil.copytree(state_from, daemon.state_path.parent)
    else:
        daemon.state_path.parent.mkdir(parents=True)
    return daemon.start()


def view(port: int) -> dict[str, Any]:
    def get(method: str, **args: Any) -> Any:
        return call(port, method, **args)

    seen: dict[str, Any] = {
        "tasks": get("task_list", status="", upstream_status="", search=""),
        "workers": get("worker_list"),
        "resources": get("resource_list"),
        "paused": get("is_paused"),
    }
    for task in TASKS:
        seen[f"error {task}"] = get("fetch_error", task_id=task)
        seen[f"message {task}"] = get("get_task_status_message", task_id=task)
        seen[f"progress {task}"] = get("get_task_progress_percentage", task_id=task)
        seen[f"running resources {task}"] = get("get_running_task_resources", task_id=task)
    # last, as a ping changes what it reads: messages queued for the worker
    seen["messages"] = get("ping", worker=W)["rpc_messages"]
    return seen


def check_kill_equals_sigterm(tmp_path: Path, calls: list[Call]) -> None:
    live = start(tmp_path / "live")
    try:
        for method, args in calls:
            call(live.port, method, **args)
        killed_image = tmp_path / "killed-state"
        shutil.copytree(live.state_path.parent, killed_image)  # what kill -9 now leaves
    finally:
        live.stop(strict=True)  # SIGTERM: the final save (a hang would make it a kill)
    graceful = start(tmp_path / "graceful", state_from=live.state_path.parent)
    try:
        expected = view(graceful.port)
    finally:
        graceful.kill()
    crashed = start(tmp_path / "crashed", state_from=killed_image)
    try:
        assert view(crashed.port) == expected
        crashed.kill()  # kill -9 before any snapshot: the log is all there is
        crashed.start()
        second = view(crashed.port)
        # the first view's own ping is a change too (it read the worker's messages and
        # touched its last contact): only what it changed may differ
        for worker in (*second["workers"], *expected["workers"]):
            worker.pop("last_active", None)
            worker.pop("num_unread_rpc_messages", None)
        second.pop("messages")
        expected.pop("messages")
        assert second == expected
    finally:
        crashed.kill()


def test_every_state_changing_rpc_has_a_sequence() -> None:
    assert [name for name in mutating_rpcs() if name not in SEQUENCES] == []


def test_all_sequences_in_one_daemon(tmp_path: Path) -> None:
    calls = list(BASE)
    for name in mutating_rpcs():
        calls.extend(SEQUENCES[name])
    check_kill_equals_sigterm(tmp_path, calls)


@pytest.mark.slow
@pytest.mark.parametrize("rpc", mutating_rpcs())
def test_kill9_equals_sigterm(tmp_path: Path, rpc: str) -> None:
    check_kill_equals_sigterm(tmp_path, [*BASE, *SEQUENCES[rpc]])
